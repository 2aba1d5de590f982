"""The paper's recipe under both protocols (imn.reproduce.paper_recipe): the plan's configs,
and a tiny run on the real PTB-XL slice read back into its table."""

from __future__ import annotations

import csv
import json

import pytest

from imn.cli import main
from imn.reproduce.paper_recipe import PAPER_AUROC, make_plan, table_rows
from imn.train.data import PROTOCOL_LABELS


def _read_csv(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_plan_is_the_papers_recipe_under_each_protocol():
    plan = make_plan("paper", "/data/ptb-xl")
    assert [(p, m) for p, m, _ in plan.runs()] == [
        ("separate", "imn_softmax"), ("separate", "cnn2d"),
        ("merged_9_10", "imn_softmax"), ("merged_9_10", "cnn2d")]
    separate = plan.config("separate", "imn_softmax", 0)
    merged = plan.config("merged_9_10", "imn_softmax", 0)
    assert (separate.data.protocol, merged.data.protocol) == ("separate", "merged_9_10")
    assert (separate.batch_size, separate.epochs, separate.patience) == (64, 100, 10)
    assert (separate.optim.learning_rate, separate.optim.step_epochs) == (1e-3, 10)
    assert (separate.data.task, separate.data.root, separate.data.sampling_rate) == (
        "norm_vs_mi", "/data/ptb-xl", 100)
    assert make_plan("paper500", "/d").config("separate", "cnn2d", 0).data.sampling_rate == 500
    # only the protocol differs between the two runs of a model
    assert separate.to_dict() | {"data": None} == merged.to_dict() | {"data": None}
    assert set(PAPER_AUROC) == {"imn_softmax", "cnn2d"}
    with pytest.raises(ValueError, match="unknown protocol"):
        make_plan("paper", "/d", protocols=("merged",))
    with pytest.raises(ValueError, match="unknown model"):
        make_plan("paper", "/d", models=("imn",))


def test_cli_refuses_an_unknown_protocol_before_training(tmp_path, capsys):
    out = tmp_path / "recipe"
    assert main(["paper-recipe", "--data", "ptbxl:/nowhere", "--protocols", "merged9",
                 "--out", str(out)]) == 2
    assert "unknown protocol" in capsys.readouterr().err and not (out / "runs").exists()


def test_cli_refuses_bad_seeds_and_a_non_ptbxl_source_with_status_2(tmp_path, capsys):
    out = tmp_path / "recipe"
    assert main(["paper-recipe", "--data", "ptbxl:/nowhere", "--seeds", "0,a", "--out", str(out)]) == 2
    assert "--seeds must be comma-separated integers" in capsys.readouterr().err
    assert main(["paper-recipe", "--data", "synthetic", "--out", str(out)]) == 2
    assert "must be ptbxl:DIR" in capsys.readouterr().err and not (out / "runs").exists()


def test_table_reads_an_undefined_auroc_as_nan(tmp_path):
    """metrics.json writes an AUROC without a defined value (one label, no bootstrap) as null."""
    plan = make_plan("paper", "/d", models=("cnn2d",), protocols=("separate",))
    run = plan.run_dir(tmp_path, "separate", "cnn2d", 0)
    run.mkdir(parents=True)
    (run / "config.json").write_text(plan.config("separate", "cnn2d", 0).to_json())
    (run / "metrics.json").write_text(json.dumps({
        "best_val_macro_auroc": 0.9, "best_epoch": 2, "epochs_run": 5, "stopped_early": True,
        "test": {"macro_auroc": 0.8, "macro_auroc_ci_low": None, "macro_auroc_ci_high": None,
                 "n_records": 10}}))
    (run / "metrics.jsonl").write_text(json.dumps({"epoch": 0, "epoch_seconds": 30.0}) + "\n")
    [row] = table_rows(plan, tmp_path)
    assert row["reported"] == "0.800 [nan, nan]" and row["device"] == "unknown"
    assert row["training_ended"] == "patience, epoch 5 (best 3)" and row["train_time"] == "0.5"


@pytest.mark.slow
def test_tiny_runs_on_the_slice_fill_the_table_from_their_own_metrics(tmp_path, ptbxl_root, capsys):
    out = tmp_path / "recipe"
    command = ["paper-recipe", "--preset", "tiny", "--data", f"ptbxl:{ptbxl_root}",
               "--models", "cnn2d", "--out", str(out)]
    assert main(command) == 0
    rows = _read_csv(out / "table_paper_recipe.csv")
    assert [r["protocol"] for r in rows] == ["separate", "merged_9_10"]
    for row in rows:
        run = out / "runs" / row["protocol"] / "cnn2d" / "seed0"
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["protocol"] == row["protocol"]
        assert float(row["reported_auroc"]) == pytest.approx(metrics["test"]["macro_auroc"], nan_ok=True)
        assert float(row["selection_auroc"]) == pytest.approx(metrics["best_val_macro_auroc"], nan_ok=True)
        assert row["protocol_label"] == PROTOCOL_LABELS[row["protocol"]]
        assert row["device"].startswith("cpu (") and row["paper_auroc"] == "0.9699"
        history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert float(row["train_minutes"]) == pytest.approx(
            sum(h["epoch_seconds"] for h in history) / 60)
    # The merged protocol reports on the records it selected on: folds 9 + 10 together.
    separate, merged = rows
    merged_metrics = json.loads((out / "runs/merged_9_10/cnn2d/seed0/metrics.json").read_text())
    assert merged_metrics["test"]["n_records"] == merged_metrics["validation"]["n_records"]
    assert "merged" in (out / "table_paper_recipe.md").read_text()
    for protocol in ("separate", "merged_9_10"):
        assert (out / f"curves_{protocol}.png").stat().st_size > 0
    # Repeating the command trains nothing again.
    first = json.loads((out / "paper_recipe.json").read_text())
    assert len(first["train_seconds"]) == 2
    assert main(command) == 0
    assert json.loads((out / "paper_recipe.json").read_text())["train_seconds"] == first["train_seconds"]
    # Another recipe into the same folder is refused, not mixed with the finished runs.
    assert main([*command, "--set", "epochs=3"]) == 2
    assert "trained with another config (epochs 2 then, 3 now)" in capsys.readouterr().err
