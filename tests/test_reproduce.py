"""`imn reproduce`: plans, and a tiny end-to-end reproduction on synthetic data that is
resumed, checked against its run folders, and refused when the plan changes."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest

from imn.cli import main
from imn.reproduce import make_plan
from imn.reproduce.plan import PTBXL_TASKS
from imn.reproduce.tables import training_samples_per_s


def test_plan_defaults_to_synthetic_data_without_a_folder():
    plan = make_plan("quick")
    assert plan.source == "synthetic" and plan.tasks == ("synthetic",)
    config = plan.config("imn", "synthetic")
    assert config.data.source == "synthetic" and config.data.crop_seconds is None


def test_plan_on_ptbxl_covers_the_tasks_and_trains_every_model_on_whole_records(tmp_path):
    plan = make_plan("cpu", root=str(tmp_path))
    assert plan.tasks == PTBXL_TASKS and plan.explain_task == "norm_vs_mi"
    for model in plan.models:
        config = plan.config(model, "norm_vs_cd")
        assert config.data.root == str(tmp_path) and config.data.task == "norm_vs_cd"
        # Explanations must explain the evaluated function: no crops, no windows.
        assert config.data.crop_seconds is None and config.data.eval_window_seconds is None
    assert "imn" in plan.methods_for("imn") and "gradcam" not in plan.methods_for("imn")
    assert "gradcam" in plan.methods_for("inception1d") and "imn" not in plan.methods_for("cnn2d")


def test_quick_explains_imn_and_its_twin_backbone_and_keeps_every_method():
    plan = make_plan("quick")
    assert plan.models_explained == ("imn", "cnn2d") and len(plan.models) == 4
    methods = set(plan.methods_for("imn")) | set(plan.methods_for("cnn2d"))
    assert {"imn", "gradcam", "gradcam_x_input", "kernel_shap", "gradient_shap", "random"} <= methods
    # Restricting the models keeps the preset's choice where it can, else explains them all.
    assert make_plan("quick", models=("imn", "resnet1d_wang")).models_explained == ("imn",)
    assert make_plan("quick", models=("resnet1d_wang",)).models_explained == ("resnet1d_wang",)
    assert make_plan("cpu").models_explained == make_plan("cpu").models


def test_synthetic_plans_choose_a_level_and_explain_planted_findings(tmp_path):
    quick = make_plan("quick")
    assert quick.config("imn", "synthetic").data.synthetic_level == "easy"
    cpu = make_plan("cpu", synthetic=True)
    config = cpu.config("resnet1d_wang", "synthetic")
    assert config.data.synthetic_level == "default" and config.patience is not None
    # At least 50 explained ECGs per model, each for its planted local finding; the test
    # fold (a tenth of the records) holds enough of them (about 45% carry QRSW, STE or TINV).
    assert cpu.n_explain >= 50 and cpu.faithfulness.targets == "evidence"
    assert 0.4 * config.data.synthetic_n / 10 >= cpu.n_explain
    # PTB-XL keeps its own budget; an explicit --n-explain wins everywhere.
    assert make_plan("cpu", root=str(tmp_path)).n_explain < cpu.n_explain
    assert make_plan("cpu", synthetic=True, n_explain=5).n_explain == 5


def test_cost_table_gives_training_rate_of_models_that_were_not_explained(tmp_path):
    from imn.reproduce.tables import cost_rows

    workdir = tmp_path / "resnet1d_wang"
    workdir.mkdir()
    (workdir / "metrics.jsonl").write_text(
        "\n".join(json.dumps({"epoch": e, "train_samples_per_s": r}) for e, r in enumerate([5.0, 40.0, 42.0])))
    rows = cost_rows({"resnet1d_wang": workdir}, {}, "cpu: test")
    assert len(rows) == 1 and rows[0]["method"] == "(not explained)"
    assert rows[0]["train_samples_per_s"] == 41.0 and np.isnan(rows[0]["explain_ms_per_ecg"])


@pytest.mark.parametrize("kwargs, message", [
    (dict(models=("lstm",)), "unknown model"),
    (dict(tasks=("rhythm_vs_form",)), "unknown task"),
    (dict(methods=("lime",)), "unknown method"),
    (dict(synthetic=True, root="/data"), "not both"),
])
def test_plan_rejects_unknown_names(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_plan("quick", **kwargs)


def test_unknown_preset_is_refused():
    with pytest.raises(SystemExit):
        main(["reproduce", "--preset", "huge"])


def _read_csv(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_tiny_reproduction_writes_tables_and_figures_and_resumes(tmp_path):
    out = tmp_path / "repro"
    command = ["reproduce", "--preset", "tiny", "--synthetic", "--out", str(out),
               "--models", "imn,resnet1d_wang", "--methods", "imn,gradcam,saliency,random"]
    assert main(command) == 0
    ledger = json.loads((out / "reproduce.json").read_text())
    assert ledger["finished"] and set(ledger["stage_seconds"]) == {"train", "explain", "tables", "figures"}
    assert ledger["provenance"]["git"] and ledger["provenance"]["device"]

    # Classification: one row per model, numbers equal to the run's own metrics.json.
    rows = _read_csv(out / "table_classification.csv")
    assert [r["model"] for r in rows] == ["imn", "resnet1d_wang"]
    for row in rows:
        metrics = json.loads((out / "runs/synthetic" / row["model"] / "metrics.json").read_text())
        assert float(row["test_macro_auroc"]) == pytest.approx(metrics["test"]["macro_auroc"])
        assert int(row["test_records"]) == metrics["test"]["n_records"]
        assert (out / "runs/synthetic" / row["model"] / "provenance.json").exists()

    # Faithfulness and localisation: the applicable methods of each model, every metric.
    faith = _read_csv(out / "table_faithfulness.csv")
    assert [(r["model"], r["method"]) for r in faith] == [
        ("imn", "imn"), ("imn", "saliency"), ("imn", "random"),
        ("resnet1d_wang", "gradcam"), ("resnet1d_wang", "saliency"), ("resnet1d_wang", "random")]
    for row in faith:
        assert 0.0 <= float(row["deletion_auc"]) <= 1.0 and 0.0 <= float(row["insertion_auc"]) <= 1.0
        assert np.isfinite(float(row["infidelity"])) and np.isfinite(float(row["max_sensitivity"]))
        # NaN where every map of the randomised model is constant (e.g. a dead ReLU net's
        # gradients): a rank correlation is undefined there.
        similarity = float(row["randomization_similarity"])
        assert np.isnan(similarity) or -1.0 <= similarity <= 1.0
    assert any(np.isfinite(float(row["randomization_similarity"])) for row in faith)
    localisation = _read_csv(out / "table_localisation.csv")
    assert {r["method"] for r in localisation} == {"imn", "saliency", "random", "gradcam",
                                                   "oracle", "misplaced_mask"}
    for row in localisation:
        if row["method"] == "oracle":  # the mask itself: the top of every metric's scale
            assert float(row["pointing_game"]) == 1.0
            assert float(row["mask_auroc"]) == pytest.approx(1.0, abs=1e-6)
    by_finding = _read_csv(out / "table_localisation_by_finding.csv")
    assert {r["finding"] for r in by_finding} - {"all"} <= {"QRSW", "STE", "TINV"}
    assert {(r["model"], r["method"]) for r in by_finding} == {
        (r["model"], r["method"]) for r in localisation}
    cost = {(r["model"], r["method"]): r for r in _read_csv(out / "table_cost.csv")}
    assert int(cost[("imn", "imn")]["evaluations_per_ecg"]) == 1
    assert float(cost[("resnet1d_wang", "gradcam")]["train_samples_per_s"]) == pytest.approx(
        training_samples_per_s(out / "runs/synthetic/resnet1d_wang"))
    assert (out / "table_faithfulness.md").read_text().startswith("| model | method |")

    # Figures: PDF and PNG for each, none empty.
    figures = sorted(p.name for p in (out / "figures").iterdir())
    for stem in ("imn_clinical_4x3", "imn_methods", "imn_segment_heatmap", "resnet1d_wang_top_segments",
                 "resnet1d_wang_deletion_insertion", "roc_synthetic_AFIB"):
        assert f"{stem}.pdf" in figures and f"{stem}.png" in figures
    assert all((out / "figures" / name).stat().st_size > 1000 for name in figures)

    # Resume: nothing is retrained or re-explained, the tables are rebuilt identically.
    metrics_file = out / "runs/synthetic/imn/metrics.json"
    stamp = os.stat(metrics_file).st_mtime_ns
    table = (out / "table_faithfulness.csv").read_text()
    assert main([*command, "--no-figures"]) == 0
    assert os.stat(metrics_file).st_mtime_ns == stamp
    assert (out / "table_faithfulness.csv").read_text() == table

    # New explanation settings re-explain and keep the trained runs; the figures of a model
    # whose usual method (Grad-CAM) was not explained are drawn with another one.
    assert main([*command[:-2], "--methods", "imn,random"]) == 0
    assert os.stat(metrics_file).st_mtime_ns == stamp
    assert [(r["model"], r["method"]) for r in _read_csv(out / "table_faithfulness.csv")] == [
        ("imn", "imn"), ("imn", "random"), ("resnet1d_wang", "random")]
    assert json.loads((out / "reproduce.json").read_text())["explanation_plans_replaced"]
    assert (out / "figures" / "resnet1d_wang_clinical_4x3.png").stat().st_mtime_ns > stamp

    # A folder whose trained runs follow another plan is refused rather than mixed.
    with pytest.raises(ValueError, match="different plan"):
        main([*command[:-4], "--models", "imn", "--methods", "imn,random"])
