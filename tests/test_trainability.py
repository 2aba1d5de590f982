"""The trainability study (imn.reproduce.trainability) at tiny size: every run trained and
read back, the table equal to the runs' own metrics, curves and initial logits written,
finished runs skipped when the command is repeated."""

from __future__ import annotations

import csv
import json
import statistics

import numpy as np
import pytest

from imn.cli import main
from imn.reproduce.trainability import VARIANTS, make_study, per_class_table_rows


def _read_csv(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_study_configs_differ_only_in_model_and_seed():
    study = make_study("cpu", "/data/ptb-xl")
    assert study.tasks == ("norm_vs_mi", "superdiagnostic", "synthetic")
    faithful = study.config("norm_vs_mi", "imn", 0)
    flax = study.config("norm_vs_mi", "imn_flax_init", 1)
    assert flax.model.overrides == {"init": "flax"} and faithful.model.overrides == {}
    assert (flax.seed, flax.data.root, flax.epochs) == (1, "/data/ptb-xl", faithful.epochs)
    assert study.config("synthetic", "cnn2d", 2).data.source == "synthetic"
    assert set(VARIANTS) == {"imn", "imn_flax_init", "imn_stable", "cnn2d"}
    with pytest.raises(ValueError, match="unknown variant"):
        make_study("cpu", None, variants=("imn_big",))


def test_study_tasks_can_be_restricted_and_train_seed_major(tmp_path, capsys):
    study = make_study("cpu", "/data/ptb-xl", tasks=("norm_vs_mi",), seeds=(0, 1),
                       variants=("imn", "cnn2d"))
    assert study.tasks == ("norm_vs_mi",)
    assert [(v, s) for _, v, s in study.runs()] == [("imn", 0), ("cnn2d", 0), ("imn", 1), ("cnn2d", 1)]
    with pytest.raises(ValueError, match="need --data"):
        make_study("cpu", None, tasks=("norm_vs_mi",))
    # A misspelt task is the user's to fix: one line, exit status 2, nothing trained.
    assert main(["trainability", "--tasks", "norm_vs_mj", "--out", str(tmp_path / "s")]) == 2
    assert "unknown task" in capsys.readouterr().err and not (tmp_path / "s" / "runs").exists()


def test_per_class_table_takes_every_class_any_seed_has(tmp_path):
    study = make_study("cpu", None, seeds=(0, 1), variants=("cnn2d",))
    classes = [{"A": {"auroc": 0.8, "positives": 3}, "B": {"auroc": None, "positives": 0}},
               {"A": {"auroc": 0.6, "positives": 3}, "B": {"auroc": 0.7, "positives": 2},
                "C": {"auroc": 0.9, "positives": 1}}]
    for seed, per_class in enumerate(classes):
        run = study.run_dir(tmp_path, "synthetic", "cnn2d", seed)
        run.mkdir(parents=True)
        (run / "metrics.json").write_text(json.dumps({"test": {"per_class": per_class}}))
    rows = {r["class"]: r for r in per_class_table_rows(study, tmp_path)}
    assert list(rows) == ["A", "B", "C"]
    assert (rows["A"]["seeds"], rows["A"]["test_auroc"]) == (2, f"0.700 ± {statistics.stdev([0.8, 0.6]):.3f}")
    assert (rows["B"]["seeds"], rows["B"]["test_auroc_mean"], rows["B"]["test_positives"]) == (1, 0.7, 0)
    assert (rows["C"]["seeds"], rows["C"]["test_positives"]) == (1, 1)


@pytest.mark.slow
def test_tiny_synthetic_study_writes_table_curves_and_initial_logits(tmp_path):
    out = tmp_path / "study"
    command = ["trainability", "--preset", "tiny", "--seeds", "0,1", "--variants",
               "imn_stable,cnn2d", "--out", str(out)]
    assert main(command) == 0
    rows = _read_csv(out / "table_trainability.csv")
    assert [(r["task"], r["variant"]) for r in rows] == [("synthetic", "imn_stable"), ("synthetic", "cnn2d")]
    for row in rows:
        aurocs = [json.loads((out / f"runs/synthetic/{row['variant']}/seed{s}/metrics.json").read_text())
                  ["test"]["macro_auroc"] for s in (0, 1)]
        assert float(row["test_macro_auroc_mean"]) == pytest.approx(statistics.mean(aurocs))
        assert float(row["test_macro_auroc_sd"]) == pytest.approx(statistics.stdev(aurocs))
        assert row["stopped_early"] == "0/2"  # the tiny preset has no patience
        calibrations = [json.loads((out / f"runs/synthetic/{row['variant']}/seed{s}/metrics.json")
                                   .read_text())["validation"]["calibration"] for s in (0, 1)]
        for key in ("ece", "ece_floor", "ece_prior_corrected"):
            assert float(row[f"val_{key}_mean"]) == pytest.approx(
                statistics.mean(c[key] for c in calibrations))
    # per class (the synthetic task has several): the mean over seeds of each run's own value
    per_class = _read_csv(out / "table_trainability_per_class.csv")
    classes = json.loads((out / "runs/synthetic/cnn2d/seed0/metrics.json").read_text())["test"]["per_class"]
    assert {r["class"] for r in per_class if r["variant"] == "cnn2d"} == set(classes)
    for row in per_class:
        values = [json.loads((out / f"runs/synthetic/{row['variant']}/seed{s}/metrics.json").read_text())
                  ["test"]["per_class"][row["class"]]["auroc"] for s in (0, 1)]
        values = [v for v in values if v is not None and v == v]
        if values:
            assert float(row["test_auroc_mean"]) == pytest.approx(statistics.mean(values))
    logits = _read_csv(out / "initial_logits.csv")
    assert {r["variant"] for r in logits} == {"imn_stable", "cnn2d"}
    summary = _read_csv(out / "initial_logits_summary.csv")
    for row in summary:
        values = [float(r["abs_logit"]) for r in logits if r["variant"] == row["variant"]]
        assert float(row["median_abs_logit"]) == pytest.approx(statistics.median(values))
    # Reliability: one panel per model, its seeds' validation predictions pooled.
    from imn.reproduce.trainability import reliability_panels
    from imn.train.calibration import sigmoid

    study = make_study("tiny", None, seeds=(0, 1), variants=("imn_stable", "cnn2d"))
    panels, floors = reliability_panels(study, out, "synthetic")
    assert len(panels) == 2 and set(floors) == set(panels)
    pooled = np.concatenate([np.load(out / f"runs/synthetic/cnn2d/seed{s}/predictions_validation.npz")
                             ["logits"] for s in (0, 1)])
    cnn2d = panels["2-D CNN (2 seeds)"]
    np.testing.assert_allclose(cnn2d["raw"][1], sigmoid(pooled))
    assert set(cnn2d) == {"raw", "T-scaled", "prior-corrected"}
    for stem in ("learning_curves_synthetic", "initial_logits", "reliability_synthetic"):
        assert (out / f"{stem}.png").stat().st_size > 0 and (out / f"{stem}.pdf").exists()
    # Repeating the command trains nothing again and keeps the first invocation's times.
    first = json.loads((out / "study.json").read_text())
    assert len(first["train_seconds"]) == 4
    assert main(command) == 0
    again = json.loads((out / "study.json").read_text())
    assert again["train_seconds"] == first["train_seconds"]
    assert again["total_seconds"] > first["total_seconds"]
    _check_calibration_of_runs_evaluated_before_it_was_reported(out, rows)
    _check_no_train_reports_the_finished_runs_only(out, command)


def _check_no_train_reports_the_finished_runs_only(out, command):
    """A run still training (no metrics.json yet): --no-train leaves it alone and reports
    the other seed, saying so in the seeds column."""
    run = out / "runs/synthetic/cnn2d/seed1"
    (run / "metrics.json").rename(run / "metrics.json.kept")
    before = json.loads((out / "study.json").read_text())["train_seconds"]
    assert main([*command, "--no-train"]) == 0
    assert not (run / "metrics.json").exists()
    assert json.loads((out / "study.json").read_text())["train_seconds"] == before
    rows = {r["variant"]: r for r in _read_csv(out / "table_trainability.csv")}
    assert (rows["cnn2d"]["seeds"], rows["imn_stable"]["seeds"]) == ("1", "2")
    seed0 = json.loads((out / "runs/synthetic/cnn2d/seed0/metrics.json").read_text())
    assert float(rows["cnn2d"]["test_macro_auroc_mean"]) == pytest.approx(seed0["test"]["macro_auroc"])


def _check_calibration_of_runs_evaluated_before_it_was_reported(out, rows):
    """A run folder from before the floor and the prior offset were saved: the table
    recomputes both from its predictions and its training labels, to the same numbers."""
    from imn.reproduce.trainability import table_rows

    run = out / "runs/synthetic/cnn2d/seed1"
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("ece_floor", "ece_floor_p95", "ece_prior_corrected", "logit_offset"):
        del metrics["validation"]["calibration"][key]
    (run / "metrics.json").write_text(json.dumps(metrics))
    with np.load(run / "predictions_validation.npz") as saved:
        arrays = {key: saved[key] for key in saved.files if key != "logit_offset"}
    np.savez(run / "predictions_validation.npz", **arrays)
    study = make_study("tiny", None, seeds=(0, 1), variants=("imn_stable", "cnn2d"))
    again = {r["variant"]: r for r in table_rows(study, out)}
    for row in rows:
        for key in ("val_ece_mean", "val_ece_floor_mean", "val_ece_prior_corrected_mean"):
            assert again[row["variant"]][key] == pytest.approx(float(row[key]), rel=1e-9)
