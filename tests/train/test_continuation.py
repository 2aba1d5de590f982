"""Raising a finished run's epoch cap continues it exactly as a fresh run with that cap goes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from imn.errors import ConfigError
from imn.train.config import apply_overrides, load_config
from imn.train.continuation import follow_config
from imn.train.trainer import train_and_evaluate

REPO = Path(__file__).resolve().parents[2]


def tiny(*overrides: str):
    # A step schedule that drops the learning rate after every epoch, so that a continuation
    # which restarted the schedule (or the batch order) would not match the fresh run.
    return load_config(f"{REPO / 'configs/imn.py'}:tiny",
                       ["data.source=synthetic", "optim.step_epochs=1", *overrides])


def _losses(workdir: Path) -> list[float]:
    return [json.loads(line)["train_loss"] for line in (workdir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def two_epoch_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("capped") / "run"
    train_and_evaluate(tiny("epochs=2"), workdir)
    return workdir


def test_a_raised_cap_continues_as_a_fresh_run_would(two_epoch_run, tmp_path):
    fresh = tmp_path / "fresh"
    train_and_evaluate(tiny("epochs=3"), fresh)
    continued = tmp_path / "continued"
    shutil.copytree(two_epoch_run, continued)
    # What evaluation and explanation of the old model leave behind (imn evaluate, imn explain).
    for name in ("faithfulness_settings.json", "metrics_test.json", "attributions_saliency_test.npz"):
        (continued / name).write_text("{}")

    assert follow_config(continued, tiny("epochs=3")) == "continues"
    assert not (continued / "metrics.json").exists()
    assert (continued / "metrics.jsonl").exists(), "the history it resumes from stays"
    for name in ("faithfulness_settings.json", "metrics_test.json", "attributions_saliency_test.npz"):
        assert not (continued / name).exists(), name
    train_and_evaluate(tiny("epochs=3"), continued)

    assert len(_losses(continued)) == 3
    np.testing.assert_allclose(_losses(continued), _losses(fresh), rtol=1e-6)
    for split in ("validation", "test"):
        ours = np.load(continued / f"predictions_{split}.npz")
        theirs = np.load(fresh / f"predictions_{split}.npz")
        np.testing.assert_allclose(ours["scores"], theirs["scores"], rtol=1e-5, atol=1e-6)
    record = json.loads((continued / "provenance.json").read_text())
    assert [(c["from_epochs"], c["to_epochs"], c["finished_before"]) for c in record["continued"]] == [(2, 3, True)]
    assert json.loads((continued / "config.json").read_text())["epochs"] == 3


def test_the_same_config_changes_nothing(two_epoch_run, tmp_path):
    run = shutil.copytree(two_epoch_run, tmp_path / "run")
    assert follow_config(run, tiny("epochs=2")) == "same"
    assert (run / "metrics.json").exists()
    assert follow_config(tmp_path / "absent", tiny("epochs=2")) == "same"


def test_a_run_stopped_early_is_relabelled_only(two_epoch_run, tmp_path):
    run = shutil.copytree(two_epoch_run, tmp_path / "run")
    summary = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({**summary, "stopped_early": True}))
    assert follow_config(run, tiny("epochs=5")) == "relabelled"
    assert (run / "metrics.json").exists() and (run / "predictions_test.npz").exists()
    assert json.loads((run / "config.json").read_text())["epochs"] == 5
    record = json.loads((run / "provenance.json").read_text())
    assert "continued" not in record and record["relabelled"][0]["reason"] == "early stopping ended it"


def test_a_lower_cap_is_followed_while_the_run_has_not_passed_it(tmp_path):
    run = tmp_path / "run"
    train_and_evaluate(tiny("epochs=3", "patience=1"), run)  # patience ends it after 2 epochs
    assert follow_config(run, tiny("epochs=2", "patience=1")) == "relabelled"
    assert json.loads((run / "config.json").read_text())["epochs"] == 2


def test_a_model_without_epochs_is_relabelled_whatever_its_schedule(two_epoch_run, tmp_path):
    run = shutil.copytree(two_epoch_run, tmp_path / "run")
    config = apply_overrides(tiny("epochs=9"), ["optim.schedule=cosine"])
    (run / "config.json").write_text(apply_overrides(tiny("epochs=2"), ["optim.schedule=cosine"]).to_json())
    assert follow_config(run, config, epoch_free=True) == "relabelled"
    assert (run / "metrics.json").exists()


def test_patience_carries_over_a_continuation(tmp_path):
    """Early stopping's counters are in the checkpoint: a continued run stops where a fresh
    one with the higher cap stops, and says why the same way. (On the tiny run the best
    validation AUROC is epoch 1's, so patience 2 stops the fresh run after epoch 3, and the
    run capped at 2 epochs continues with one bad epoch already counted.)"""
    fresh, continued = tmp_path / "fresh", tmp_path / "continued"
    train_and_evaluate(tiny("epochs=5", "patience=2"), fresh)
    train_and_evaluate(tiny("epochs=2", "patience=2"), continued)
    assert follow_config(continued, tiny("epochs=5", "patience=2")) == "continues"
    train_and_evaluate(tiny("epochs=5", "patience=2"), continued)
    np.testing.assert_allclose(_losses(continued), _losses(fresh), rtol=1e-6)
    ours = json.loads((continued / "metrics.json").read_text())
    theirs = json.loads((fresh / "metrics.json").read_text())
    assert theirs["stopped_early"] and theirs["epochs_run"] < 5, "the case this test is about"
    for key in ("best_epoch", "epochs_run", "stopped_early"):
        assert ours[key] == theirs[key], key


def test_patience_running_out_on_the_caps_own_epoch_counts_as_early_stopping(tmp_path):
    # patience 1 on the tiny run: no new best at epoch 2, so it stops there, which is also the cap.
    run = tmp_path / "run"
    summary = train_and_evaluate(tiny("epochs=2", "patience=1"), run)
    assert summary["stopped_early"] and summary["epochs_run"] == 2
    assert follow_config(run, tiny("epochs=5", "patience=1")) == "relabelled"


@pytest.mark.parametrize("overrides, message", [
    (("epochs=3", "optim.learning_rate=0.01"), "optim.learning_rate 0.001 then, 0.01 now"),
    (("epochs=1",), "already ran 2 epochs, more than the new cap of 1"),
    (("epochs=2", "data.synthetic_n=200"), "data.synthetic_n"),
])
def test_other_changes_are_refused_with_the_difference_named(two_epoch_run, tmp_path, overrides, message):
    run = shutil.copytree(two_epoch_run, tmp_path / "run")
    before = (run / "config.json").read_text()
    with pytest.raises(ConfigError, match=message):
        follow_config(run, tiny(*overrides))
    assert (run / "metrics.json").exists(), "a refused change leaves the run as it was"
    assert (run / "config.json").read_text() == before


def test_a_schedule_that_depends_on_the_cap_is_not_continued(two_epoch_run, tmp_path):
    run = shutil.copytree(two_epoch_run, tmp_path / "run")
    config = json.loads((run / "config.json").read_text())
    config["optim"]["schedule"] = "cosine"
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="'cosine' schedule depends on the epoch cap"):
        follow_config(run, apply_overrides(tiny("epochs=3"), ["optim.schedule=cosine"]))


def test_missing_checkpoints_are_named(two_epoch_run, tmp_path):
    run = shutil.copytree(two_epoch_run, tmp_path / "run")
    shutil.rmtree(run / "checkpoints")
    with pytest.raises(ConfigError, match="no checkpoints/last"):
        follow_config(run, tiny("epochs=3"))
