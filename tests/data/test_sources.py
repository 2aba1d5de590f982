"""One data option for every command: ``--data KIND:DIR`` (imn.data.sources)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from imn.cli import main
from imn.data.dataset import EcgDataError
from imn.data.sources import KINDS, default_task, load_source, parse_data_spec
from imn.reproduce import make_plan
from imn.train.config import TrainConfig

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("spec, expected", [
    ("cinc:/data/cinc", ("cinc", "/data/cinc")),
    ("mimic:relative/dir", ("mimic", "relative/dir")),
    ("tfds:/data/tfds", ("tfds", "/data/tfds")),
    ("synthetic", ("synthetic", None)),
    ("/data/ptb-xl", ("ptbxl", "/data/ptb-xl")),
    ("./odd:name", ("ptbxl", "./odd:name")),
])
def test_data_spec_is_a_kind_and_a_folder(spec, expected):
    assert parse_data_spec(spec) == expected


@pytest.mark.parametrize("spec, message", [
    ("physionet:/data", "unknown data source 'physionet'"),
    ("cinc:", "names no folder"),
])
def test_bad_data_spec_says_what_is_wrong(spec, message):
    with pytest.raises(EcgDataError, match=message):
        parse_data_spec(spec)


def test_every_kind_is_a_training_source():
    for kind in KINDS:
        config = TrainConfig()
        data = type(config.data)(source=kind, root=None if kind == "synthetic" else "/x")
        assert data.resolved_source()[0] == kind
    with pytest.raises(ValueError, match="needs data.root"):
        type(config.data)(source="cinc").resolved_source()


def test_unknown_task_of_a_source_lists_its_tasks(cinc_root):
    with pytest.raises(EcgDataError, match="valid tasks: scored"):
        load_source("cinc", cinc_root, "norm_vs_mi")


def test_reproduce_plan_on_another_source_uses_its_task(cinc_root):
    plan = make_plan("quick", root=str(cinc_root), source="cinc")
    assert plan.source == "cinc" and plan.tasks == ("scored",) == (default_task("cinc"),)
    assert plan.config("imn", "scored").data.source == "cinc"
    with pytest.raises(ValueError, match="unknown task"):
        make_plan("quick", root=str(cinc_root), source="cinc", tasks=("norm_vs_mi",))


def test_info_train_and_explain_on_cinc_records(cinc_root, tmp_path, capsys):
    assert main(["data", "info", f"cinc:{cinc_root}"]) == 0
    assert "task scored: 50 records x 1000 samples" in capsys.readouterr().out

    workdir = tmp_path / "run"
    assert main(["train", "--config", f"{REPO / 'configs/imn.py'}:tiny", "--workdir", str(workdir),
                 "--data", f"cinc:{cinc_root}", "--set", "epochs=1"]) == 0
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert metrics["task"] == "scored" and "STach" in metrics["classes"]
    provenance = json.loads((workdir / "provenance.json").read_text())
    assert provenance["data"]["source"] == "cinc" and provenance["data"]["records"] == 50

    # The run's data found in another folder (a link to it), then the wrong kind refused.
    moved = tmp_path / "moved"
    moved.symlink_to(cinc_root, target_is_directory=True)
    assert main(["explain", "--workdir", str(workdir), "--method", "imn", "--n", "2",
                 "--data", f"cinc:{moved}"]) == 0
    saved = np.load(workdir / "attributions_imn_test.npz")
    assert saved["attribution"].shape == (2, 1000, 12)
    assert main(["explain", "--workdir", str(workdir), "--method", "imn", "--n", "2",
                 "--data", f"ptbxl:{moved}"]) == 2
    assert "trained on cinc data" in capsys.readouterr().err


def test_tfds_build_command_and_info(ptbxl_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IMN_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "tfds"
    assert main(["data", "tfds", "--ptbxl", str(ptbxl_root), "--out", str(out), "--task", "norm_vs_mi"]) == 0
    assert "--data tfds:" in capsys.readouterr().out
    assert main(["data", "info", f"tfds:{out}", "--task", "norm_vs_mi"]) == 0
    from imn.data.ptbxl import load_ptbxl

    expected = len(load_ptbxl(ptbxl_root, "norm_vs_mi"))
    assert f"task norm_vs_mi: {expected} records" in capsys.readouterr().out


def test_plot_a_cinc_record_with_its_default_task(cinc_root, tmp_path, capsys):
    image = tmp_path / "cinc.png"
    assert main(["data", "plot", f"cinc:{cinc_root}", "--index", "0", "--out", str(image)]) == 0
    from matplotlib.image import imread

    pixels = imread(image)
    assert pixels.shape[0] > 1000 and np.std(pixels) > 0.05  # a rendered ECG, not a blank page


@pytest.mark.parametrize("rate", [100.5, 0, -100, True])
def test_the_shared_grid_refuses_a_rate_that_is_not_a_positive_integer(rate):
    from imn.data.conform import Conform

    with pytest.raises(EcgDataError, match="sampling_rate must be a positive integer"):
        Conform(sampling_rate=rate)
    assert isinstance(Conform(sampling_rate=100.0).sampling_rate, int)
