"""Run folders that refuse to be silently wrong: recorded data identity, format version, and
one-line CLI errors (``imn: error: ...``, exit 2) with nothing written before validation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from imn.cli import main
from imn.data.dataset import EcgDataset
from imn.data.synthetic import make_synthetic, write_synthetic
from imn.errors import RunFolderError
from imn.explain import run as explain_module
from imn.explain.run import FaithfulnessSettings, faithfulness_run
from imn.train.config import load_config
from imn.train.run_folder import RUN_FORMAT, check_data_identity
from imn.train.trainer import evaluate_workdir, train_and_evaluate

REPO = Path(__file__).resolve().parents[2]
TINY = f"{REPO / 'configs/imn.py'}:tiny"


@pytest.fixture(scope="module")
def synth_folder(tmp_path_factory) -> Path:
    """An ``imn data synth`` folder (PTB-XL layout) of 160 records."""
    return write_synthetic(make_synthetic(160, sampling_rate=100, seed=0), tmp_path_factory.mktemp("data") / "synth")


@pytest.fixture(scope="module")
def run(tmp_path_factory, synth_folder) -> Path:
    """A finished tiny run trained on ``synth_folder``."""
    workdir = tmp_path_factory.mktemp("runs") / "imn"
    train_and_evaluate(load_config(TINY, ["data.source=synthetic", f"data.root={synth_folder}"]), workdir)
    return workdir


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("imn: error: ") and err.count("\n") == 1, err
    return err


# ------------------------------------------------------------------ item 1: data identity
def test_the_run_records_what_it_was_trained_on(run, synth_folder):
    record = json.loads((run / "provenance.json").read_text())
    assert record["run_format"] == RUN_FORMAT
    data = record["data"]
    assert data["source"] == "synthetic" and Path(data["root"]).resolve() == synth_folder.resolve()
    assert len(data["label_file_sha256"]) == 64
    assert data["classes"] == record["model"]["classes"] and data["records"] == 160


def test_other_data_is_refused_naming_both(run, tmp_path, capsys):
    """Generated synthetic data (what a run falls back to when its folder is not given) in
    place of the folder the run was trained on."""
    assert main(["evaluate", "--workdir", str(run), "--data", "synthetic"]) == 2
    err = one_line_error(capsys)
    assert str(run) in err and "generated" in err and "synth" in err


def test_a_moved_folder_needs_the_flag_and_the_same_contents(run, synth_folder, tmp_path, capsys):
    moved = tmp_path / "moved"
    shutil.copytree(synth_folder, moved)
    assert main(["evaluate", "--workdir", str(run), "--data", f"synthetic:{moved}"]) == 2
    err = one_line_error(capsys)
    assert str(moved) in err and str(synth_folder) in err and "--allow-data-move" in err
    before = json.loads((run / "metrics.json").read_text())["test"]["macro_auroc"]
    again = evaluate_workdir(run, "test", data=f"synthetic:{moved}", allow_data_move=True)
    assert again["test"]["macro_auroc"] == pytest.approx(before, abs=1e-6)
    # Changed labels are refused even when the move is allowed.
    labels = moved / "ptbxl_database.csv"
    labels.write_text(labels.read_text().replace("'STE'", "'TINV'", 3))
    with pytest.raises(RunFolderError, match="label_file_sha256"):
        evaluate_workdir(run, "test", data=f"synthetic:{moved}", allow_data_move=True)


def test_identity_fields_compared():
    recorded = {"source": "ptbxl", "root": "/a", "records": 10, "classes": ["MI"]}
    check_data_identity("w", recorded, dict(recorded))
    with pytest.raises(RunFolderError, match="classes"):
        check_data_identity("w", recorded, {**recorded, "classes": ["STTC"]}, allow_data_move=True)
    with pytest.raises(RunFolderError, match="ptbxl data at /a.*synthetic data at generated"):
        check_data_identity("w", recorded, {"source": "synthetic", "root": None, "records": 10})


# ------------------------------------------------------------------ item 6: CLI errors
@pytest.mark.parametrize("command", [["evaluate"], ["explain", "--method", "imn"],
                                     ["faithfulness", "--methods", "imn"]])
def test_a_missing_workdir_is_a_one_line_error(command, tmp_path, capsys):
    missing = tmp_path / "no-such-run"
    assert main([command[0], "--workdir", str(missing), *command[1:]]) == 2
    assert str(missing) in one_line_error(capsys)


def test_an_unknown_method_is_refused_before_the_run_is_restored(run, monkeypatch, capsys):
    def restored(*args, **kwargs):
        raise AssertionError("the run was restored before the method names were checked")

    monkeypatch.setattr(explain_module, "open_run", restored)
    assert main(["explain", "--workdir", str(run), "--method", "lime"]) == 2
    assert "'lime'" in one_line_error(capsys)
    assert main(["faithfulness", "--workdir", str(run), "--methods", "imn,lime"]) == 2
    assert "'lime'" in one_line_error(capsys)


def test_a_bad_data_path_writes_nothing(tmp_path, capsys):
    workdir = tmp_path / "run"
    assert main(["train", "--config", TINY, "--workdir", str(workdir),
                 "--data", f"ptbxl:{tmp_path / 'missing'}"]) == 2
    assert "missing" in one_line_error(capsys)
    assert not workdir.exists(), "config.json written before the data was validated"


def test_unknown_config_field_and_newer_format_name_the_file(run, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("checkpoints"))
    config = json.loads((copy / "config.json").read_text())
    config["optim"]["momentum"] = 0.9
    (copy / "config.json").write_text(json.dumps(config))
    assert main(["evaluate", "--workdir", str(copy)]) == 2
    err = one_line_error(capsys)
    assert "OptimConfig.momentum" in err and str(copy / "config.json") in err
    record = json.loads((copy / "provenance.json").read_text())
    (copy / "provenance.json").write_text(json.dumps({**record, "run_format": RUN_FORMAT + 1}))
    assert main(["evaluate", "--workdir", str(copy)]) == 2
    assert "run format" in one_line_error(capsys)


def test_faithfulness_keeps_each_finished_method_on_disk(run, tmp_path, monkeypatch):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    real_explain = explain_module.explain

    def failing_second(explained, method, options=None):
        if method == "saliency":
            raise RuntimeError("out of memory in saliency")
        return real_explain(explained, method, options)

    monkeypatch.setattr(explain_module, "explain", failing_second)
    settings = FaithfulnessSettings(steps=3, correlation_runs=4, infidelity_perturbations=2,
                                    sensitivity_samples=0, randomization=False)
    with pytest.raises(RuntimeError, match="saliency"):
        faithfulness_run(copy, ["imn", "saliency"], "test", 2, settings=settings)
    saved = json.loads((copy / "faithfulness_test.json").read_text())
    assert [row["method"] for row in saved["rows"]] == ["imn"]
    assert saved["finished"] is False and saved["methods_pending"] == ["saliency"]
    assert "imn_deletion" in np.load(copy / "faithfulness_curves_test.npz")


# ------------------------------------------------------------------ help texts
def test_help_opens_with_what_the_tool_does(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "Train ECG-IMN" in out and "``" not in out and "`" not in out
    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    assert "for a GPU" in capsys.readouterr().out


def test_one_class_is_singular():
    n = 4
    dataset = EcgDataset(signals=np.zeros((n, 8, 12), np.float32), labels=np.ones((n, 1), np.float32),
                         classes=("MI",), ecg_ids=np.arange(n), patient_ids=np.arange(n),
                         folds=np.array([1, 9, 10, 1]), age=np.zeros(n, np.float32),
                         sex=np.zeros(n, np.int8), sampling_rate=100, task="t")
    assert "1 class" in dataset.summary() and "1 classes" not in dataset.summary()


def test_reproduce_refuses_a_finished_run_trained_on_other_data(run, tmp_path):
    """A finished run is skipped by ``imn reproduce`` without reloading its data; the folder
    and kind it recorded are still checked against the plan's."""
    from imn.reproduce.plan import make_plan
    from imn.reproduce.runner import run_dir, train_stage

    plan = make_plan("tiny", synthetic=True, models=("imn",))
    out = tmp_path / "out"
    target = run_dir(out, plan.tasks[0], "imn")
    shutil.copytree(run, target, ignore=shutil.ignore_patterns("checkpoints"))
    with pytest.raises(RunFolderError, match="generated"):
        train_stage(plan, out)
