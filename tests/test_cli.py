"""The `imn` command end to end: the README's demo steps and bad-input handling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imn.cli import main
from imn.data.synthetic import load_synthetic


def test_synth_info_and_plot_round_trip(tmp_path, capsys):
    out = tmp_path / "synth"
    assert main(["data", "synth", "--out", str(out), "--n", "40", "--seed", "3"]) == 0
    assert "generated 40 synthetic ECGs" in capsys.readouterr().out
    dataset = load_synthetic(out)
    assert len(dataset) == 40 and dataset.evidence is not None

    assert main(["data", "info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "synthetic benchmark" in info
    for name, count in dataset.label_counts().items():
        assert any(line.split()[:1] == [name] and line.split()[-1] == str(count) for line in info.splitlines())

    image = tmp_path / "ecg.png"
    assert main(["data", "plot", str(out), "--index", "1", "--out", str(image)]) == 0
    from matplotlib.image import imread

    pixels = imread(image)
    assert pixels.shape[0] > 1000 and pixels.shape[1] > 2000  # 300 dpi, clinical scale
    assert np.std(pixels) > 0.05  # not a blank canvas


def test_synth_writes_the_chosen_level(tmp_path):
    from imn.data.synthetic import make_synthetic

    out = tmp_path / "hard"
    assert main(["data", "synth", "--out", str(out), "--n", "6", "--seed", "2", "--level", "hard"]) == 0
    written = load_synthetic(out).signals
    np.testing.assert_array_equal(written, make_synthetic(6, 100, seed=2, difficulty="hard").signals)
    assert not np.array_equal(written, make_synthetic(6, 100, seed=2).signals)
    with pytest.raises(SystemExit):
        main(["data", "synth", "--out", str(tmp_path / "x"), "--level", "medium"])


def test_info_on_the_real_slice_lists_every_task(ptbxl_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IMN_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["data", "info", str(ptbxl_root), "--task", "superdiagnostic", "--task", "norm_vs_mi"]) == 0
    out = capsys.readouterr().out
    assert "PTB-XL layout" in out and "100 Hz, 500 Hz" in out
    # 12 of the 500 records carry no diagnostic statement and are dropped, as in the benchmark.
    assert "task superdiagnostic: 488 records" in out
    norm_line = next(line for line in out.splitlines() if line.split()[:1] == ["NORM"])
    assert norm_line.split()[-1] == "297"
    assert "task norm_vs_mi" in out


def test_bad_input_is_a_one_line_error_not_a_traceback(tmp_path, capsys):
    assert main(["data", "info", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("imn: error:") and "missing" in err
    with pytest.raises(SystemExit):
        main(["data", "plot"])  # argparse: the folder is required


def test_an_unknown_model_name_in_a_config_is_a_one_line_error(tmp_path, capsys):
    config = f"{Path(__file__).resolve().parents[1] / 'configs/imn.py'}:tiny"
    assert main(["train", "--config", config, "--workdir", str(tmp_path / "run"),
                 "--set", "data.source=synthetic", "--set", "model.name=imnx"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("imn: error: unknown model 'imnx'") and "Traceback" not in err
