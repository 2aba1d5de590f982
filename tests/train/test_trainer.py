"""End-to-end training on tiny synthetic data: smoke run, determinism, sharding, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from imn.train.config import load_config
from imn.errors import ConfigError
from imn.train.config import TrainConfig
from imn.train.trainer import (TrainingDivergedError, evaluate_workdir, is_new_best,
                               train_and_evaluate)

REPO = Path(__file__).resolve().parents[2]
IMN_CONFIG = f"{REPO / 'configs/imn.py'}:tiny"


def tiny(*overrides: str):
    return load_config(IMN_CONFIG, ["data.source=synthetic", *overrides])


def history(workdir: Path) -> list[dict]:
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def test_tiny_run_writes_config_metrics_checkpoints_and_predictions(tmp_path):
    summary = train_and_evaluate(tiny(), tmp_path)
    assert (tmp_path / "config.json").is_file()
    provenance = json.loads((tmp_path / "provenance.json").read_text())
    assert provenance["data"]["source"] == "synthetic"
    assert provenance["device"]["platform"] == "cpu"
    lines = history(tmp_path)
    assert [line["epoch"] for line in lines] == [0, 1]
    assert all(np.isfinite(line["train_loss"]) for line in lines)
    assert any((tmp_path / "checkpoints/last").iterdir())
    test = summary["test"]
    assert 0.0 <= test["macro_auroc"] <= 1.0
    assert test["macro_auroc_ci_low"] <= test["macro_auroc"] <= test["macro_auroc_ci_high"]
    predictions = np.load(tmp_path / "predictions_test.npz")
    assert predictions["scores"].shape == predictions["labels"].shape
    assert ((predictions["scores"] >= 0) & (predictions["scores"] <= 1)).all()
    # Re-evaluating the saved best checkpoint reproduces the same test predictions.
    again = evaluate_workdir(tmp_path, "test")
    assert again["test"]["macro_auroc"] == pytest.approx(test["macro_auroc"], abs=1e-6)
    _check_calibration_protocol_and_tensorboard(tmp_path, summary)


def test_same_config_and_seed_give_identical_metrics(tmp_path):
    first = train_and_evaluate(tiny(), tmp_path / "a")
    second = train_and_evaluate(tiny(), tmp_path / "b")
    assert [l["train_loss"] for l in history(tmp_path / "a")] == [l["train_loss"] for l in history(tmp_path / "b")]
    assert first["test"]["macro_auroc"] == second["test"]["macro_auroc"]


def test_one_and_four_devices_give_the_same_losses(tmp_path):
    assert jax.device_count() >= 4, "conftest should fake 4 CPU devices"
    train_and_evaluate(tiny(), tmp_path / "one", devices=jax.devices()[:1])
    train_and_evaluate(tiny(), tmp_path / "four", devices=jax.devices()[:4])
    one = [l["train_loss"] for l in history(tmp_path / "one")]
    four = [l["train_loss"] for l in history(tmp_path / "four")]
    np.testing.assert_allclose(one, four, rtol=1e-4)


def test_a_workdir_refuses_a_different_config(tmp_path):
    train_and_evaluate(tiny(), tmp_path)
    with pytest.raises(ValueError, match="different config"):
        train_and_evaluate(tiny("optim.learning_rate=0.5"), tmp_path)


def test_nan_loss_is_a_clear_error(tmp_path):
    with pytest.raises(TrainingDivergedError, match="loss became"):
        train_and_evaluate(tiny("optim.learning_rate=1e30", "optim.schedule=constant"), tmp_path)


def test_a_new_best_must_beat_the_old_one_by_the_margin():
    assert is_new_best(0.5, -np.inf) and is_new_best(0.5, -np.inf, 1e-3)
    assert is_new_best(0.8005, 0.8) and not is_new_best(0.8005, 0.8, 1e-3)
    assert is_new_best(0.802, 0.8, 1e-3)
    assert not is_new_best(float("nan"), -np.inf) and not is_new_best(0.8, 0.8)


def test_a_margin_no_epoch_can_beat_stops_the_run_after_patience_epochs(tmp_path):
    summary = train_and_evaluate(tiny("epochs=5", "patience=2", "min_improvement=0.99"), tmp_path)
    lines = history(tmp_path)
    assert len(lines) == 3 and summary["stopped_early"] and summary["best_epoch"] == 0
    assert {line["best_val_macro_auroc"] for line in lines} == {lines[0]["val_macro_auroc"]}
    with pytest.raises(ConfigError, match=r"min_improvement must be in \[0, 1\)"):
        train_and_evaluate(tiny("min_improvement=-0.1"), tmp_path / "negative")


def test_a_config_written_before_min_improvement_existed_reads_as_no_margin():
    recorded = json.loads(TrainConfig().to_json())
    del recorded["min_improvement"]
    assert TrainConfig.from_dict(recorded).min_improvement == 0.0


def _train_command(workdir: Path, *overrides: str) -> list[str]:
    command = [sys.executable, "-m", "imn.cli", "train", "--config", IMN_CONFIG, "--workdir", str(workdir),
               "--set", "data.source=synthetic"]
    for item in overrides:
        command += ["--set", item]
    return command


@pytest.mark.slow
def test_a_run_killed_mid_training_resumes_and_ends_like_an_uninterrupted_one(tmp_path):
    overrides = ("epochs=5",)
    reference = train_and_evaluate(tiny(*overrides), tmp_path / "reference")

    workdir = tmp_path / "killed"
    env = dict(os.environ)
    process = subprocess.Popen(_train_command(workdir, *overrides), env=env, cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Kill (SIGKILL: no clean-up) once at least two epochs are checkpointed and logged.
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        path = workdir / "metrics.jsonl"
        if path.exists() and len(path.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run finished before it could be killed; make it longer"
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_after = len(history(workdir))
    assert 2 <= killed_after < 5

    resumed = subprocess.run(_train_command(workdir, *overrides), env=env, cwd=REPO,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming" in resumed.stderr
    resumed_summary = json.loads((workdir / "metrics.json").read_text())
    ref_lines, res_lines = history(tmp_path / "reference"), history(workdir)
    assert [l["epoch"] for l in res_lines] == [0, 1, 2, 3, 4]
    for key in ("train_loss", "val_macro_auroc", "step"):
        assert [l[key] for l in res_lines] == pytest.approx([l[key] for l in ref_lines], rel=1e-6)
    assert resumed_summary["test"]["macro_auroc"] == pytest.approx(reference["test"]["macro_auroc"], abs=1e-6)


def _check_calibration_protocol_and_tensorboard(tmp_path, summary):
    """Part of the tiny-run test (one training run for both)."""
    from imn.train import calibration

    assert summary["protocol"] == "separate"
    # Epochs run come from the epoch log (not the best checkpoint's epoch); no patience here.
    assert summary["epochs_run"] == len(history(tmp_path)) == 2 and not summary["stopped_early"]
    test = summary["test"]
    predictions = np.load(tmp_path / "predictions_test.npz")
    val_predictions = np.load(tmp_path / "predictions_validation.npz")
    # The temperature is the one fitted on the validation logits, never on test.
    temperature = calibration.fit_temperature(val_predictions["labels"], val_predictions["logits"])
    assert test["calibration"]["temperature"] == pytest.approx(temperature, rel=1e-12)
    assert float(predictions["temperature"]) == pytest.approx(temperature, rel=1e-12)
    # The saved logits are the scores' logits (float32 sigmoid of them gives the scores).
    np.testing.assert_allclose(calibration.sigmoid(predictions["logits"]), predictions["scores"],
                               rtol=1e-4, atol=1e-6)
    from imn.train.metrics import macro_auroc
    assert test["macro_auroc_scaled"] == macro_auroc(predictions["labels"], predictions["logits"])
    for key in ("ece", "ece_scaled", "brier", "brier_scaled", "ece_prior_corrected", "ece_floor"):
        assert 0.0 <= test["calibration"][key] <= 1.0
    # The prior correction undoes the BCE pos_weight of the training split: log(n_neg / n_pos).
    from imn.train.config import TrainConfig
    from imn.train.data import prepare_task_data

    config = TrainConfig.from_json((tmp_path / "config.json").read_text())
    train_labels = prepare_task_data(config.data, seed=config.seed).train.labels
    positives = train_labels.sum(axis=0)
    expected_offset = np.log((len(train_labels) - positives) / positives)
    np.testing.assert_allclose(test["calibration"]["logit_offset"], expected_offset, rtol=1e-6)
    np.testing.assert_allclose(predictions["logit_offset"], expected_offset, rtol=1e-6)
    corrected = calibration.sigmoid(predictions["logits"] - predictions["logit_offset"])
    assert test["calibration"]["ece_prior_corrected"] == pytest.approx(float(np.mean(
        calibration.expected_calibration_error(predictions["labels"], corrected))))
    # TensorBoard: one scalar per epoch per curve, readable by the protobuf reader.
    files = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert files
    tags = _event_scalars(files)
    assert sorted(tags["train/loss"]) == [1, 2]
    assert tags["train/loss"][2] == pytest.approx(history(tmp_path)[1]["train_loss"], rel=1e-6)
    assert sorted(tags["validation/macro_auroc"]) == [1, 2]


def _event_scalars(files) -> dict[str, dict[int, float]]:
    """``tag -> {step: value}`` read back from TFRecord event files (length-prefixed
    protobuf records), without TensorFlow or TensorBoard."""
    import struct

    from tensorboardX.proto import event_pb2

    scalars: dict[str, dict[int, float]] = {}
    for path in files:
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset:offset + 8])
            payload = data[offset + 12: offset + 12 + length]
            offset += 12 + length + 4
            event = event_pb2.Event.FromString(payload)
            for value in event.summary.value:
                scalars.setdefault(value.tag, {})[event.step] = value.simple_value
    return scalars


def test_merged_9_10_protocol_selects_and_reports_on_the_same_records(tmp_path):
    from imn.train.data import prepare_task_data

    config = tiny("data.protocol=merged_9_10", "data.max_records=1000")
    data = prepare_task_data(config.data, seed=config.seed)
    assert data.test is data.validation
    assert set(np.unique(data.test.folds)) == {9, 10}
    separate = prepare_task_data(tiny("data.max_records=1000").data, seed=config.seed)
    assert len(data.test) == len(separate.validation) + len(separate.test)
    with pytest.raises(ValueError, match="protocol"):
        prepare_task_data(tiny("data.protocol=folds_9_10").data)
