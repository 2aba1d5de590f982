"""`imn reproduce`: plans, and a tiny end-to-end reproduction on synthetic data that is
resumed, checked against its run folders, and refused when the plan changes."""

from __future__ import annotations

import csv
import dataclasses
import json
import os

import numpy as np
import pytest

from imn.cli import main
from imn.errors import ConfigError
from imn.reproduce import make_plan, reproduce
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


def test_xecgnet_before_and_after_fine_tuning_and_resnet34_are_opt_in_models(tmp_path):
    assert make_plan("quick").models == ("imn", "cnn2d", "inception1d", "resnet1d_wang")
    plan = make_plan("quick", models=("imn", "resnet34_1d", "xecgnet", "xecgnet_ft"))
    assert plan.models_explained == ("imn", "xecgnet", "xecgnet_ft")
    assert plan.methods_for("xecgnet")[:2] == ("attention", "gradcam")
    assert make_plan("quick", models=("xecgnet",), methods=("attention",)).methods_for("xecgnet") == ("attention",)
    assert "attention" not in plan.methods_for("resnet34_1d") and "gradcam" in plan.methods_for("resnet34_1d")
    stage_one = plan.config("xecgnet", "synthetic")
    assert stage_one.model.name == "xecgnet" and stage_one.attention.stage == 1
    fine_tuned = plan.config("xecgnet_ft", "synthetic", stage_one_dir=str(tmp_path / "xecgnet"))
    assert fine_tuned.model.name == "xecgnet" and fine_tuned.attention.stage == 2
    assert fine_tuned.attention.init_from == str(tmp_path / "xecgnet")
    # every other choice is the stage-1 run's: same recipe, data and budget
    assert fine_tuned.optim == stage_one.optim and fine_tuned.data == stage_one.data
    with pytest.raises(ValueError, match="give its folder"):
        plan.config("xecgnet_ft", "synthetic")
    with pytest.raises(ValueError, match="list 'xecgnet' before it"):
        make_plan("quick", models=("xecgnet_ft", "xecgnet"))
    with pytest.raises(ValueError, match="list 'xecgnet' before it"):
        make_plan("quick", models=("imn", "xecgnet_ft"))


def test_classification_tables_give_subset_accuracy_and_per_class_f1(tmp_path):
    from imn.reproduce.tables import classification_rows, per_class_rows
    from imn.train.metrics import choose_thresholds, summarize

    rng = np.random.default_rng(0)
    labels = (rng.random((60, 3)) < 0.4).astype(float)
    scores = labels * 0.5 + rng.random((60, 3))
    thresholds = choose_thresholds(labels[:30], scores[:30])
    test = summarize(labels[30:], scores[30:], thresholds=thresholds, n_boot=50,
                     class_names=["AF", "PAC", "STE"])
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "metrics.json").write_text(json.dumps(
        {"test": test, "best_val_macro_auroc": 0.7, "best_epoch": 1, "epochs_run": 2, "stopped_early": False}))
    (row,) = classification_rows({("cpsc2018", "xecgnet"): workdir})
    assert row["test_subset_accuracy"] == pytest.approx(test["subset_accuracy"])
    assert row["test_subset_accuracy_ci_low"] <= row["test_subset_accuracy"] <= row["test_subset_accuracy_ci_high"]
    assert row["test_f1"] == pytest.approx(test["f1"])
    assert row["training_ended"] == "cap of 2 epochs (best 2)"
    (workdir / "metrics.json").write_text(json.dumps(
        {"test": test, "best_val_macro_auroc": 0.7, "best_epoch": 1, "epochs_run": 6, "stopped_early": True}))
    assert classification_rows({("cpsc2018", "xecgnet"): workdir})[0]["training_ended"] == "patience, epoch 6 (best 2)"
    rows = per_class_rows({("cpsc2018", "xecgnet"): workdir})
    assert [r["class"] for r in rows] == ["AF", "PAC", "STE"]
    assert [r["threshold"] for r in rows] == pytest.approx(thresholds.tolist())
    assert np.mean([r["test_f1"] for r in rows]) == pytest.approx(test["f1"])


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


def test_cpu_preset_trains_until_early_stopping_on_each_source(tmp_path):
    """Committed runs end by patience, not by the cap: each source's epochs and patience win
    over the preset's base overrides."""
    ptbxl = make_plan("cpu", root=str(tmp_path)).config("imn", "norm_vs_mi")
    synthetic = make_plan("cpu", synthetic=True).config("imn", "synthetic")
    assert (ptbxl.epochs, ptbxl.patience, ptbxl.batch_size) == (25, 5, 32)
    assert (synthetic.epochs, synthetic.patience, synthetic.batch_size) == (30, 4, 32)
    # On synthetic data a new best must beat the old by a margin (flat curves at lr 1e-5).
    assert synthetic.min_improvement > 0 and ptbxl.min_improvement == 0
    assert ptbxl.patience < ptbxl.epochs // 2 and synthetic.patience < synthetic.epochs // 2


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
def test_tiny_reproduction_writes_tables_and_figures_and_resumes(tmp_path, capsys):
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
        # Calibration beside the raw model; the T-scaled AUROC is the logits' AUROC.
        calibration = metrics["test"]["calibration"]
        assert float(row["test_ece"]) == pytest.approx(calibration["ece"])
        assert float(row["test_ece_scaled"]) == pytest.approx(calibration["ece_scaled"])
        assert float(row["test_ece_floor"]) == pytest.approx(calibration["ece_floor"])
        assert float(row["test_ece_prior_corrected"]) == pytest.approx(calibration["ece_prior_corrected"])
        assert float(row["temperature"]) == pytest.approx(calibration["temperature"])
        assert float(row["test_macro_auroc_scaled"]) == pytest.approx(metrics["test"]["macro_auroc_scaled"])
        assert row["protocol"] == "val 9 / test 10"
        # Per-class AUROC of a multi-class task, one row per class, from the same summary.
        per_class = [r for r in _read_csv(out / "table_per_class.csv") if r["model"] == row["model"]]
        assert [r["class"] for r in per_class] == metrics["classes"]
        for r in per_class:
            expected = metrics["test"]["per_class"][r["class"]]["auroc"]
            assert (float(r["test_auroc"]) == pytest.approx(expected)) if expected is not None else r["test_auroc"] == "nan"

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
    markdown = (out / "table_faithfulness.md").read_text().splitlines()
    assert markdown[0].startswith("Task synthetic, test split, n = ") and "bootstrap" in markdown[0]
    assert markdown[2].startswith("| model | method |") and "closer to 0" in markdown[2]

    # Figures: PDF and PNG for each, none empty.
    figures = sorted(p.name for p in (out / "figures").iterdir())
    for stem in ("imn_clinical_4x3", "imn_methods", "imn_segment_heatmap", "resnet1d_wang_top_segments",
                 "resnet1d_wang_deletion_insertion", "roc_pr_synthetic", "imn_localisation",
                 "deletion_auc_per_ecg", "cost_vs_faithfulness", "training_curves_synthetic",
                 "sanity_randomisation_imn", "sanity_randomisation_resnet1d_wang",
                 "beat_average_imn", "imn_weights", "reliability_synthetic"):
        assert f"{stem}.pdf" in figures and f"{stem}.png" in figures
    assert all((out / "figures" / name).stat().st_size > 1000 for name in figures)
    # The interactive viewer beside them, holding both explained models.
    report = (out / "report.html").read_text()
    assert '"model":"imn"' in report and '"model":"resnet1d_wang"' in report
    assert "report.html" in ledger["outputs"]

    # Resume: nothing is retrained or re-explained, the tables are rebuilt identically.
    metrics_file = out / "runs/synthetic/imn/metrics.json"
    stamp = os.stat(metrics_file).st_mtime_ns
    table = (out / "table_faithfulness.csv").read_text()
    assert main([*command, "--no-figures"]) == 0
    assert os.stat(metrics_file).st_mtime_ns == stamp
    assert (out / "table_faithfulness.csv").read_text() == table

    # --tables-only rebuilds the tables from the run folders and touches no run or figure;
    # the ledger lists it; another plan's tables are refused, naming the difference.
    classification = (out / "table_classification.csv").read_text()
    outputs = json.loads((out / "reproduce.json").read_text())["outputs"]
    figure = next((out / "figures").glob("*.png"))
    figure_stamp = os.stat(figure).st_mtime_ns
    (out / "table_classification.csv").unlink()
    assert main([*command, "--tables-only"]) == 0
    assert (out / "table_classification.csv").read_text() == classification
    assert os.stat(metrics_file).st_mtime_ns == stamp and os.stat(figure).st_mtime_ns == figure_stamp
    ledger = json.loads((out / "reproduce.json").read_text())
    assert ledger["invocations"][-1]["tables_only"] and ledger["finished"]
    assert ledger["wall_seconds_total"] == pytest.approx(sum(ledger["stage_seconds"].values()), abs=0.2)
    assert ledger["outputs"] == outputs  # the same tables, rewritten
    assert main([*command[:-2], "--methods", "imn,random", "--tables-only"]) == 2
    assert "explanation settings" in capsys.readouterr().err
    assert main(["reproduce", "--preset", "tiny", "--synthetic", "--out", str(tmp_path / "none"),
                 "--tables-only"]) == 2

    # New explanation settings re-explain and keep the trained runs; the figures of a model
    # whose usual method (Grad-CAM) was not explained are drawn with another one.
    assert main([*command[:-2], "--methods", "imn,random"]) == 0
    assert os.stat(metrics_file).st_mtime_ns == stamp
    assert [(r["model"], r["method"]) for r in _read_csv(out / "table_faithfulness.csv")] == [
        ("imn", "imn"), ("imn", "random"), ("resnet1d_wang", "random")]
    assert json.loads((out / "reproduce.json").read_text())["explanation_plans_replaced"]
    assert (out / "figures" / "resnet1d_wang_clinical_4x3.png").stat().st_mtime_ns > stamp

    # A raised epoch cap continues both runs from their last checkpoints (imn.train.continuation)
    # and explains them again.
    plan = make_plan("tiny", synthetic=True, models=("imn", "resnet1d_wang"), methods=("imn", "random"))
    raised = dataclasses.replace(plan, train_overrides=(*plan.train_overrides, "epochs=3"))
    explained = {model: os.stat(out / "runs/synthetic" / model / "faithfulness_test.json").st_mtime_ns
                 for model in ("imn", "resnet1d_wang")}
    reproduce(raised, out, figures=False)
    for model in ("imn", "resnet1d_wang"):
        run = out / "runs/synthetic" / model
        assert len((run / "metrics.jsonl").read_text().splitlines()) == 3
        assert json.loads((run / "metrics.json").read_text())["epochs_run"] == 3
        assert json.loads((run / "provenance.json").read_text())["continued"][0]["from_epochs"] == 2
        assert (run / "faithfulness_test.json").stat().st_mtime_ns > explained[model]
    ledger = json.loads((out / "reproduce.json").read_text())
    assert ledger["training_plans_replaced"] and len(ledger["explanation_plans_replaced"]) == 1

    # Any other change to a trained run is refused, naming the run, before any run or the
    # ledger changes: the previous command still resumes the folder as it was.
    before = {path: path.read_bytes() for path in out.rglob("*.json")}
    changed = dataclasses.replace(raised, train_overrides=(*raised.train_overrides, "epochs=4",
                                                           "optim.learning_rate=0.5"))
    with pytest.raises(ConfigError, match=r"runs/synthetic/imn was trained with another config \(optim.learning_rate"):
        reproduce(changed, out, figures=False)
    assert {path: path.read_bytes() for path in out.rglob("*.json")} == before
    # Every invocation that ran is listed with its commit and command (five here, one of them
    # tables only; the refused ones changed nothing).
    invocations = json.loads((out / "reproduce.json").read_text())["invocations"]
    assert len(invocations) == 5 and all(i["git"] and i["created"] and i["command"] for i in invocations)


def test_a_continued_stage_one_run_retrains_its_fine_tuned_run_even_after_a_kill(tmp_path, monkeypatch):
    """xecgnet_ft starts from xecgnet's best checkpoint: when a raised cap continues xecgnet,
    the fine-tuned run is deleted before xecgnet trains on, so a kill cannot leave one
    fine-tuned from the old model behind, and it is trained again from the new one."""
    import imn.train.trainer as trainer
    from imn.reproduce.runner import train_stage

    out = tmp_path / "repro"
    plan = make_plan("tiny", synthetic=True, models=("xecgnet", "xecgnet_ft"))
    train_stage(plan, out)
    raised = dataclasses.replace(plan, train_overrides=(*plan.train_overrides, "epochs=3"))

    def killed(config, workdir, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "train_and_evaluate", killed)
    with pytest.raises(KeyboardInterrupt):
        train_stage(raised, out)
    assert not (out / "runs/synthetic/xecgnet_ft").exists()
    monkeypatch.undo()

    train_stage(raised, out)  # resumed: xecgnet now reads as unchanged, xecgnet_ft is new
    stage_one = json.loads((out / "runs/synthetic/xecgnet/provenance.json").read_text())
    assert stage_one["continued"][0]["finished_before"]
    fine_tuned = out / "runs/synthetic/xecgnet_ft"
    assert "continued" not in json.loads((fine_tuned / "provenance.json").read_text())
    assert len((fine_tuned / "metrics.jsonl").read_text().splitlines()) == 3


def _faithfulness_run(folder, rows, curves, skip=(), **settings):
    """A run folder holding a faithfulness table and its curves, as the explain stage writes."""
    folder.mkdir(parents=True)
    (folder / "faithfulness_test.json").write_text(json.dumps(
        {"rows": rows, "sensitivity_skip": list(skip), **settings}))
    np.savez(folder / "faithfulness_curves_test.npz", ecg_ids=np.arange(3), **curves)
    return folder


def _row(method, **values):
    from imn.reproduce.tables import FAITHFULNESS_METRICS

    row = {"method": method, "n": 3, "explain_ms_per_ecg": 1.0}
    for key, _ in FAITHFULNESS_METRICS[:-1] + (("randomization_similarity", ""),):
        value, low, high = values.get(key, (0.5, 0.4, 0.6))
        row.update({key: value, key + "_ci_low": low, key + "_ci_high": high})
    return row


def test_degenerate_faithfulness_cells_are_na_with_a_footnote(tmp_path):
    """Flat insertion curves (a saturated output), a metric equal on every ECG, the random
    control's by-construction values and a skipped metric are printed n/a with their reason;
    informative cells keep their numbers."""
    from imn.report import NOTE_SUFFIX, write_table
    from imn.reproduce import tables

    rising = np.tile(np.linspace(0.2, 0.9, 5), (3, 1))
    flat = np.full((3, 5), 0.99999)
    folder = _faithfulness_run(tmp_path / "imn", [
        _row("imn", infidelity=(0.0, 0.0, 0.0), max_sensitivity=(float("nan"),) * 3),
        _row("random", randomization_similarity=(1.0, 1.0, 1.0)),
    ], {"imn_deletion": rising, "imn_insertion": flat, "random_deletion": rising,
        "random_insertion": rising}, skip=("imn",))
    rows = tables.faithfulness_rows({"imn": folder})
    notes = {(row["method"], key[: -len(NOTE_SUFFIX)]): value for row in rows
             for key, value in row.items() if key.endswith(NOTE_SUFFIX)}
    assert notes == {("imn", "insertion_auc"): "flat", ("imn", "infidelity"): "constant",
                     ("imn", "max_sensitivity"): "skipped",
                     ("random", "max_sensitivity"): "control",
                     ("random", "randomization_abs"): "control"}
    written = write_table(rows, tmp_path / "table", tables.metric_columns(tables.FAITHFULNESS_METRICS),
                          caption="caption line", footnotes=tables.footnotes(rows),
                          one_format_per_column=True)
    text = written[1].read_text()
    assert text.startswith("caption line\n")
    assert "n/a (flat)" in text and "(flat) every curve" in text and "(undefined)" not in text
    assert "| imn | imn | 3 | 0.500 [0.400, 0.600] |" in text  # deletion AUC kept


def test_aopc_shares_the_deletion_curves_verdict_and_map_metrics_keep_their_constant_values(tmp_path):
    """AOPC comes from the same deletions as the deletion curve: flat deletion curves make it
    n/a too. rho = 1 on every ECG (randomisation) or one defined ECG is a value, not a
    saturated output. Metrics a budget switched off say so."""
    from imn.report import NOTE_SUFFIX
    from imn.reproduce import tables

    flat, rising = np.full((3, 5), 0.99999), np.tile(np.linspace(0.2, 0.9, 5), (3, 1))
    one_defined = _row("imn", faithfulness_correlation=(0.7, 0.7, 0.7),
                       randomization_similarity=(1.0, 1.0, 1.0))
    one_defined["faithfulness_correlation_n_defined"] = 1
    folder = _faithfulness_run(tmp_path / "imn", [one_defined],
                               {"imn_deletion": flat, "imn_insertion": rising},
                               sensitivity_samples=0, randomization=True)
    rows = tables.faithfulness_rows({"imn": folder})
    notes = {key[: -len(NOTE_SUFFIX)]: value for key, value in rows[0].items()
             if key.endswith(NOTE_SUFFIX)}
    assert notes == {"deletion_auc": "flat", "aopc_morf": "flat", "aopc_lerf": "flat",
                     "max_sensitivity": "budget"}
    assert "budget" in tables.footnotes(rows)


def test_a_metric_undefined_on_some_ecgs_says_on_how_many_its_mean_is(tmp_path):
    """A correlation with a constant map is undefined (NaN) on that ECG: the cell keeps the
    mean over the others and says "(k of n)", and the caption explains it."""
    from imn.explain.run import method_row
    from imn.report import write_table
    from imn.reproduce import tables

    values = np.array([0.2, np.nan, 0.4])
    source = method_row("gradcam", 3, 0.1, {key: np.full(3, 0.5) for key, _ in
                                            tables.FAITHFULNESS_METRICS[:-1]}
                        | {"randomization_similarity": values})
    assert source["randomization_similarity_n_defined"] == 2 and source["deletion_auc_n_defined"] == 3
    np.testing.assert_allclose(source["randomization_similarity"], 0.3)
    folder = _faithfulness_run(tmp_path / "cnn2d", [source], {})
    rows = tables.faithfulness_rows({"cnn2d": folder})
    written = write_table(rows, tmp_path / "table", tables.metric_columns(tables.FAITHFULNESS_METRICS),
                          caption=tables.faithfulness_caption("t", {"cnn2d": folder}, "predicted", rows))
    text = written[1].read_text()
    assert "0.300 [0.200, 0.400] (2 of 3)" in text and "(k of n)" in text
    assert "0.500 [0.500, 0.500] (" not in text, "a fully defined cell has no count"


def test_randomisation_column_is_the_absolute_correlation_with_its_interval():
    from imn.reproduce.tables import abs_interval

    assert abs_interval(-0.23, -0.38, -0.09) == (0.23, 0.09, 0.38)
    assert abs_interval(0.1, -0.05, 0.3) == (0.1, 0.0, 0.3)  # the interval reaches 0
    assert np.isnan(abs_interval(float("nan"), 0.0, 1.0)[0])


def test_one_number_format_per_column():
    """A column mixing 1.03e-04 and 0.001 is printed in one notation; correlations whose CI
    touches 0 stay in decimals."""
    from imn.report import column_format, format_cell

    rows = [{"x": 1.03e-04, "x_ci_low": 5e-5, "x_ci_high": 2e-4},
            {"x": 0.0012, "x_ci_low": 3e-4, "x_ci_high": 0.002}]
    assert column_format(rows, "x") == ".2e"
    assert [format_cell(r, "x", ".2e").split(" ")[0] for r in rows] == ["1.03e-04", "1.20e-03"]
    assert column_format([{"r": 0.5, "r_ci_low": -2e-4, "r_ci_high": 0.9}], "r") == ".3f"


def test_the_drawn_ecg_is_a_true_abnormal_finding_and_its_title_gives_truth_and_p():
    """Binary task (kept attributions in the two-class view, predictions with one column): the
    first kept ECG whose explained class is a true MI is drawn, p is that of the explained
    side; with evidence masks the first local one is drawn."""
    from imn.reproduce.figures import choose_ecg, kept_labels

    saved = {"classes": np.array(["NORM", "MI"]), "ecg_ids": np.array([5, 7, 9]),
             "targets": np.array([0, 1, 1])}
    predictions = {"classes": np.array(["MI"]), "ecg_ids": np.array([9, 7, 5]),
                   "labels": np.array([[1.0], [0.0], [0.0]]), "scores": np.array([[0.9], [0.8], [0.3]])}
    labels = kept_labels(saved, predictions)
    assert labels[0] == {"true": ["NORM"], "explained": "NORM", "p": pytest.approx(0.7)}
    assert labels[1]["true"] == ["NORM"] and labels[1]["explained"] == "MI"  # a false positive
    assert labels[2] == {"true": ["MI"], "explained": "MI", "p": pytest.approx(0.9)}
    assert choose_ecg(saved, labels) == 2
    evidence = np.zeros((3, 10, 12), bool)
    evidence[1, 2:4] = True
    # With masks: a local one, even where the explained class is not true (no better one).
    assert choose_ecg({**saved, "evidence": evidence}, labels) == 1
    evidence[2, 5:7] = True  # a local mask on the correctly predicted MI: drawn instead
    assert choose_ecg({**saved, "evidence": evidence}, labels) == 2
    # A true finding predicted below 0.5 gives way to a later one predicted above it.
    missed = [{"true": ["MI"], "explained": "MI", "p": 0.2}, {"true": ["MI"], "explained": "MI", "p": 0.8}]
    assert choose_ecg({"evidence": evidence[1:]}, missed) == 1
    assert choose_ecg({"evidence": evidence[1:]}, missed[:1]) == 0


def test_feature_route_models_are_opt_in_trained_and_never_explained(tmp_path):
    assert "xgboost" not in make_plan("cpu").models
    plan = make_plan("cpu", root=str(tmp_path), models=("imn", "xgboost", "random_forest"))
    assert plan.models == ("imn", "xgboost", "random_forest")
    assert plan.models_explained == ("imn",)
    config = plan.config("xgboost", "norm_vs_mi")
    assert config.model.name == "xgboost" and config.data.normalization == "none"
    assert config.data.root == str(tmp_path) and config.data.task == "norm_vs_mi"
    assert plan.config("imn", "norm_vs_mi").data.normalization == "zscore"


@pytest.mark.slow
def test_tree_shap_is_scored_on_the_networks_explained_ecgs(tmp_path):
    """On synthetic data XGBoost's tree SHAP joins the faithfulness and localisation tables
    (same ECGs as the networks, references and random beside it); models without an exact
    tree SHAP are trained and tabled only."""
    assert make_plan("cpu", root=str(tmp_path), models=("imn", "xgboost")).models_explained_by_tree_shap == ()
    out = tmp_path / "repro"
    command = ["reproduce", "--preset", "tiny", "--synthetic", "--out", str(out),
               "--models", "resnet1d_wang,xgboost,logistic_l2", "--methods", "gradcam,random", "--no-figures"]
    assert main(command) == 0
    rows = _read_csv(out / "table_localisation.csv")
    tree = {r["method"]: r for r in rows if r["model"] == "xgboost"}
    assert set(tree) == {"tree_shap", "random", "oracle", "misplaced_mask"}
    assert float(tree["oracle"]["mask_auroc"]) == pytest.approx(1.0)
    assert 0.0 <= float(tree["tree_shap"]["mask_auroc"]) <= 1.0
    assert not any(r["model"] == "logistic_l2" for r in rows)  # no exact tree SHAP
    network = json.loads((out / "runs/synthetic/resnet1d_wang/faithfulness_test.json").read_text())
    features = json.loads((out / "runs/synthetic/xgboost/faithfulness_test.json").read_text())
    assert tree["tree_shap"]["n"] == str(network["rows"][0]["n_with_evidence"])
    curves = np.load(out / "runs/synthetic/resnet1d_wang/faithfulness_curves_test.npz")
    assert features["ecg_ids"] == curves["ecg_ids"].tolist()  # the very same ECGs
    faithfulness = {(r["model"], r["method"]): r for r in _read_csv(out / "table_faithfulness.csv")}
    assert {m for m, _ in faithfulness} == {"resnet1d_wang", "xgboost"}
    row = faithfulness[("xgboost", "tree_shap")]
    assert 0.0 <= float(row["deletion_auc"]) <= 1.0 and 0.0 <= float(row["insertion_auc"]) <= 1.0
    assert row["max_sensitivity_note"] == row["randomization_abs_note"] == "not_computed"
    # The trees' curves start at their own probability of the explained class.
    tree_curves = np.load(out / "runs/synthetic/xgboost/faithfulness_curves_test.npz")
    predictions = np.load(out / "runs/synthetic/xgboost/predictions_test.npz")
    position = {int(e): i for i, e in enumerate(predictions["ecg_ids"])}
    first = [predictions["scores"][position[int(e)], k]
             for e, k in zip(tree_curves["ecg_ids"], tree_curves["targets"])]
    np.testing.assert_allclose(tree_curves["tree_shap_deletion"][:, 0], first, atol=1e-5)
    by_finding = _read_csv(out / "table_localisation_by_finding.csv")
    assert {r["finding"] for r in by_finding if r["model"] == "xgboost"} >= {"all"}
    # A second invocation finds the tree SHAP stage done.
    assert main(command) == 0
