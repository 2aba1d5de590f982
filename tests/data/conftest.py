"""Record writers for the readers' bad-input tests: CinC and CPSC 2018 records in their real
file formats, written from synthetic signals into folders the tests own, so those tests run
(and fail when the readers break) without the shared data beside the checkout.

The tests corrupt these records as each case needs; tests of real-data facts (signals equal to
wfdb's read of the shared files, PTB-XL's metadata) keep using ``cinc_root`` / ``cpsc_root``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.io

from imn.data.dataset import LEADS
from imn.data.synthetic import make_synthetic

GAIN = 1000.0  # ADC units per mV, as in the challenge's files (1 uV resolution)


def write_cinc_record(folder: Path, name: str, signal_mv: np.ndarray, *, fs: int = 500,
                      age: str = "66", sex: str = "Female", dx: Sequence[str] = ("426783006",),
                      leads: Sequence[str] = LEADS, units: str = "mV") -> Path:
    """Write ``folder/name.hea`` + ``folder/name.mat`` as the PhysioNet/CinC 2021 files are.

    ``signal_mv``: float ``(n, len(leads))`` in mV, stored as 16-bit ``val`` ``(leads, n)``
    (MATLAB v4, whose 24-byte header the header's ``16x1+24`` skips), ``GAIN`` units per mV.
    The header carries ``# Age:``, ``# Sex:`` and ``# Dx:`` comment lines. Returns the record
    path without extension.
    """
    folder.mkdir(parents=True, exist_ok=True)
    val = np.round(np.asarray(signal_mv, np.float64) * GAIN).astype(np.int16).T
    scipy.io.savemat(folder / f"{name}.mat", {"val": val}, format="4")
    lines = [f"{name} {len(leads)} {fs} {val.shape[1]}"]
    for lead, column in zip(leads, val, strict=True):
        checksum = int(column.astype(np.int64).sum()) % 65536  # WFDB: 16-bit signed sum
        checksum -= 65536 if checksum > 32767 else 0
        lines.append(f"{name}.mat 16x1+24 {GAIN:.1f}(0)/{units} 16 0 {column[0]} {checksum} 0 "
                     f"{lead}")
    lines += [f"# Age: {age}", f"# Sex: {sex}", f"# Dx: {','.join(dx)}", "# Rx: Unknown",
              "# Hx: Unknown"]
    (folder / f"{name}.hea").write_text("\n".join(lines) + "\n")
    return folder / name


def write_cpsc_record(path: Path, data: np.ndarray, sex: object = "Male", age: object = 50,
                      **extra: object) -> Path:
    """Write a CPSC 2018 ``.mat``: a struct ``ECG`` with ``sex``, ``age`` and ``data``
    (``(12, n)`` in mV as in the files, or any malformed value a test wants), plus ``extra``
    fields."""
    scipy.io.savemat(path, {"ECG": {"sex": sex, "age": age, "data": data, **extra}})
    return path


@pytest.fixture(scope="session")
def ecg_writers() -> SimpleNamespace:
    """The writers above, for test modules (conftest modules are not importable by name)."""
    return SimpleNamespace(cinc=write_cinc_record, cpsc=write_cpsc_record)


@pytest.fixture(scope="session")
def cinc_stand_ins(tmp_path_factory) -> Path:
    """Three synthetic 10 s, 500 Hz CinC records named after shared ones, with the header
    facts the bad-input tests rely on (Dx codes, units spelled "mv" in PTB-XL's headers):
    HR06004 (NSR), E07506 (NSR), E07500 (Dx 67741000119109,426177001)."""
    folder = tmp_path_factory.mktemp("cinc_stand_ins")
    signals = make_synthetic(3, sampling_rate=500, seed=16).signals
    write_cinc_record(folder, "HR06004", signals[0], age="28", sex="Male", units="mv")
    write_cinc_record(folder, "E07506", signals[1])
    write_cinc_record(folder, "E07500", signals[2], age="78", sex="Male",
                      dx=("67741000119109", "426177001"))
    return folder


@pytest.fixture(scope="session")
def cpsc_stand_ins(tmp_path_factory) -> Path:
    """Two synthetic CPSC 2018 records: A1980 (10 s at 500 Hz, age 52, male) and A1981
    (7950 samples, age 48, female); no REFERENCE.csv."""
    folder = tmp_path_factory.mktemp("cpsc_stand_ins")
    signals = make_synthetic(2, sampling_rate=500, seed=18).signals.astype(np.float64)
    write_cpsc_record(folder / "A1980.mat", signals[0].T, sex="Male", age=52)
    longer = np.concatenate([signals[1], signals[1][:2950]]).T  # (12, 7950)
    write_cpsc_record(folder / "A1981.mat", longer, sex="Female", age=48)
    return folder
