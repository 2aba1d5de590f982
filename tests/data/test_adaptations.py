"""Readers never adapt a record silently: every resampling, crop, pad and assumption is counted,
reported by ``imn data info``, logged once per load, and refused under ``strict``."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from imn.cli import main
from imn.data.cinc import load_cinc
from imn.data.conform import Conform, conform_signal
from imn.data.cpsc2018 import load_cpsc2018
from imn.data.dataset import LEADS, EcgDataError


def _record(seconds: float, rate: float) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(int(seconds * rate), 12))


def test_each_adaptation_is_counted():
    grid = Conform(sampling_rate=100)
    conform_signal(_record(12, 257), 257, LEADS, grid, "rec A")   # resampled and cropped
    conform_signal(_record(6, 100), 100, LEADS, grid, "rec B")    # padded
    conform_signal(_record(10, 100), 100, LEADS, grid, "rec C")   # already on the grid
    assert dict(grid.adaptations) == {"resampled from 257 Hz": 1,
                                      "cropped (center) from longer records": 1,
                                      "zero-padded at the end from shorter records": 1}


def test_strict_refuses_an_adapted_record_naming_it():
    strict = Conform(sampling_rate=100, strict=True)
    assert conform_signal(_record(10, 100), 100, LEADS, strict, "rec C").shape == (1000, 12)
    with pytest.raises(EcgDataError, match="rec A: resampled from 257 Hz; strict"):
        conform_signal(_record(10, 257), 257, LEADS, strict, "rec A")
    with pytest.raises(EcgDataError, match="rec B: zero-padded"):
        conform_signal(_record(6, 100), 100, LEADS, strict, "rec B")


def test_cinc_load_reports_and_logs_its_adaptations_once(cinc_root: Path, caplog):
    with caplog.at_level(logging.WARNING, logger="imn"):
        dataset = load_cinc(cinc_root, sampling_rate=100)
    assert sum(n for key, n in dataset.adaptations.items() if key.startswith("resampled")) == len(dataset)
    assert len([r for r in caplog.records if "records adapted" in r.getMessage()]) == 1
    assert "adapted" in dataset.summary() and "resampled from 500 Hz" in dataset.summary()
    # Subsets keep the record of what the load did.
    assert dataset.split("train").adaptations == dataset.adaptations
    with pytest.raises(EcgDataError, match="strict loading refuses"):
        load_cinc(cinc_root, sampling_rate=100, strict=True)


def test_cpsc_assumptions_are_counted_and_strict_refuses_them(cpsc_root: Path, tmp_path):
    # The sample ships without labels; any label per record will do here.
    reference = tmp_path / "REFERENCE.csv"
    names = sorted(path.stem for path in cpsc_root.glob("A*.mat"))
    reference.write_text("Recording,First_label,Second_label,Third_label\n"
                         + "".join(f"{name},1,,\n" for name in names))
    dataset = load_cpsc2018(cpsc_root, sampling_rate=500, reference=reference)
    assumed = [n for key, n in dataset.adaptations.items() if key.startswith("assumed 500 Hz")]
    assert assumed == [len(dataset)] and len(dataset) == len(names)
    # The sample's records longer than 10 s (8 of 10) are cropped, and counted.
    assert dataset.adaptations["cropped (center) from longer records"] > 0
    with pytest.raises(EcgDataError, match="assumed 500 Hz"):
        load_cpsc2018(cpsc_root, sampling_rate=500, reference=reference, strict=True)


def test_data_info_reports_adaptations_and_strict_fails(cinc_root: Path, capsys):
    assert main(["data", "info", f"cinc:{cinc_root}"]) == 0
    assert "adapted" in capsys.readouterr().out
    assert main(["data", "info", f"cinc:{cinc_root}", "--strict"]) == 2
    assert "strict loading refuses" in capsys.readouterr().err
