"""Runs that survive a kill or a damaged disk: atomic done markers, corrupt checkpoints."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from imn import atomic
from imn.train.checkpoint import CheckpointError
from imn.train.config import load_config
from imn.train.trainer import evaluate_workdir, train_and_evaluate

REPO = Path(__file__).resolve().parents[2]


def tiny():
    return load_config(f"{REPO / 'configs/imn.py'}:tiny", ["data.source=synthetic"])


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> tuple[Path, dict]:
    """A finished 2-epoch tiny run (trained once for the module) and its metrics.json."""
    workdir = tmp_path_factory.mktemp("finished") / "run"
    summary = train_and_evaluate(tiny(), workdir)
    return workdir, json.loads(json.dumps(summary, default=float))


def copy_of(run: Path, tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(run, target)
    return target


def _steps(folder: Path) -> list[int]:
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())


def _corrupt(step_folder: Path) -> None:
    """Overwrite every stored array chunk and the JSON bookkeeping with garbage."""
    for path in step_folder.rglob("*"):
        if path.is_file() and ("/d/" in path.as_posix() or path.parent.name == "meta"):
            path.write_bytes(b"\x00garbage\xff" * 3)


def test_atomic_write_leaves_the_old_file_or_none(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    atomic.write_json(target, {"done": 1})

    def broken_replace(src, dst):
        raise OSError("disk went away")

    monkeypatch.setattr(atomic.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk went away"):
        atomic.write_json(target, {"done": 2})
    assert json.loads(target.read_text()) == {"done": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"], "no temporary file left behind"


def test_metrics_json_the_done_marker_is_written_atomically(finished_run, tmp_path, monkeypatch):
    """A kill while metrics.json is written must not leave a (partial) metrics.json, which
    ``imn reproduce`` would take for a finished run."""
    run = copy_of(finished_run[0], tmp_path)
    (run / "metrics.json").unlink()
    real_replace = atomic.os.replace

    def killed_on_the_marker(src, dst):
        if Path(dst).name == "metrics.json":
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", killed_on_the_marker)
    with pytest.raises(KeyboardInterrupt):
        train_and_evaluate(tiny(), run)
    assert not (run / "metrics.json").exists()
    monkeypatch.setattr(atomic.os, "replace", real_replace)
    assert train_and_evaluate(tiny(), run)["test"]["macro_auroc"] == finished_run[1]["test"]["macro_auroc"]


def test_two_checkpoints_are_kept(finished_run):
    run = finished_run[0]
    assert len(_steps(run / "checkpoints/last")) == 2


def test_a_corrupt_newest_checkpoint_falls_back_to_the_older_one(finished_run, tmp_path, caplog):
    """Resume after the newest 'last' checkpoint is damaged: the warning names its folder,
    the epoch after the older checkpoint is trained again, and the run ends as before."""
    run = copy_of(finished_run[0], tmp_path)
    newest = _steps(run / "checkpoints/last")[-1]
    corrupt = run / "checkpoints/last" / str(newest)
    _corrupt(corrupt)
    (run / "metrics.json").unlink()
    with caplog.at_level(logging.WARNING, logger="imn"):
        summary = train_and_evaluate(tiny(), run)
    assert str(corrupt) in caplog.text
    assert "unreadable" in caplog.text
    assert any((run / "checkpoints/corrupt").iterdir()), "the corrupt folder is moved aside"
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [0, 1]
    assert summary["test"]["macro_auroc"] == pytest.approx(finished_run[1]["test"]["macro_auroc"], abs=1e-6)


def test_no_readable_checkpoint_is_an_error_naming_the_run(finished_run, tmp_path):
    run = copy_of(finished_run[0], tmp_path)
    for kind in ("best", "last"):
        for step in _steps(run / "checkpoints" / kind):
            _corrupt(run / "checkpoints" / kind / str(step))
    with pytest.raises(CheckpointError, match="no readable best checkpoint") as error:
        evaluate_workdir(run, "test")
    assert str(run.absolute()) in str(error.value)
