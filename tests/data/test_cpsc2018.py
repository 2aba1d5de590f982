"""The CPSC 2018 reader on the shared 10-record sample (A1980-A1989, no labels file: the
tests write one into tmp_path), and on bad records built in tmp_path with scipy.io.savemat
from synthetic stand-ins (``cpsc_stand_ins`` in conftest.py), so the bad-input tests run
without the shared data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from imn.data.conform import Conform, conform_signal, stable_fold
from imn.data.cpsc2018 import (
    CPSC_CLASSES,
    CPSC_LEADS,
    load_cpsc2018,
    read_mat,
    read_reference,
    record_name,
)
from imn.data.dataset import LEADS, EcgDataError

I, II, III, AVR = (LEADS.index(lead) for lead in ("I", "II", "III", "aVR"))
NAMES = [f"A{n}" for n in range(1980, 1990)]
# Labels for the test (the sample ships without REFERENCE.csv, so these are made up; the
# reader's job here is to join them to the right records). Numbers as in REFERENCE.csv.
REFERENCE = {
    "A1980": (1,), "A1981": (2, 6), "A1982": (5,), "A1983": (1,), "A1984": (4, 8, 9),
    "A1985": (7,), "A1986": (3,), "A1987": (1,), "A1988": (2,), "A1989": (6,),
}
# From each file's ECG struct: sample counts at 500 Hz, age and sex (0 male, 1 female).
LENGTHS = {"A1980": 5000, "A1981": 7950, "A1984": 9500, "A1986": 21500, "A1988": 27157}
AGE_SEX = {"A1980": (52, 0), "A1981": (48, 1), "A1982": (89, 0), "A1989": (34, 1)}


def write_reference(path: Path, rows: dict[str, tuple[int, ...]]) -> Path:
    lines = ["Recording,First_label,Second_label,Third_label"]
    for name, labels in rows.items():
        cells = [str(n) for n in labels] + [""] * (3 - len(labels))
        lines.append(",".join([name, *cells]))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    return write_reference(tmp_path_factory.mktemp("cpsc") / "REFERENCE.csv", REFERENCE)


@pytest.fixture(scope="module")
def cpsc500(cpsc_root: Path, reference: Path):
    return load_cpsc2018(cpsc_root, 500, reference=reference)


def _raw(cpsc_root: Path, name: str) -> np.ndarray:
    return scipy.io.loadmat(cpsc_root / f"{name}.mat")["ECG"][0, 0]["data"]


def test_label_numbers_follow_the_challenge():
    assert CPSC_CLASSES == {1: "Normal", 2: "AF", 3: "I-AVB", 4: "LBBB", 5: "RBBB",
                            6: "PAC", 7: "PVC", 8: "STD", 9: "STE"}
    assert CPSC_LEADS == ("I", "II", "III", "aVR", "aVL", "aVF",
                          "V1", "V2", "V3", "V4", "V5", "V6")


def test_shapes_labels_ids_demographics(cpsc500):
    ds = cpsc500
    assert ds.signals.shape == (10, 5000, 12) and ds.signals.dtype == np.float32
    assert ds.sampling_rate == 500 and ds.labels.dtype == np.float32
    assert [record_name(i) for i in ds.ecg_ids] == NAMES and ds.ecg_ids.dtype == np.int64
    assert ds.classes == tuple(sorted(CPSC_CLASSES.values()))  # all nine occur here
    for row, name in enumerate(NAMES):
        present = {c for c, flag in zip(ds.classes, ds.labels[row]) if flag}
        assert present == {CPSC_CLASSES[n] for n in REFERENCE[name]}, name
    assert ds.label_counts() == {"AF": 2, "I-AVB": 1, "LBBB": 1, "Normal": 3, "PAC": 2,
                                 "PVC": 1, "RBBB": 1, "STD": 1, "STE": 1}
    for name, (age, sex) in AGE_SEX.items():
        row = NAMES.index(name)
        assert (ds.age[row], ds.sex[row]) == (age, sex)
    assert ds.folds.tolist() == [stable_fold(n) for n in NAMES]
    assert np.all(ds.patient_ids == -1) and ds.skipped == ()


def test_signals_are_the_files_data_center_cropped(cpsc500, cpsc_root: Path):
    for name, n in LENGTHS.items():
        raw = _raw(cpsc_root, name)
        assert raw.shape == (12, n)
        start = (n - 5000) // 2
        expected = raw[:, start:start + 5000].T.astype(np.float32)
        np.testing.assert_array_equal(cpsc500.signals[NAMES.index(name)], expected)


def test_lead_order_and_units_are_physiological(cpsc500):
    x = cpsc500.signals.astype(np.float64)
    # Einthoven's law holds to rounding only if columns 0-2 really are I, II, III.
    assert np.abs(x[..., III] - (x[..., II] - x[..., I])).max() < 1e-5
    assert np.abs(x[..., AVR] + (x[..., I] + x[..., II]) / 2).max() < 0.005
    p2p = np.ptp(x[..., II], axis=1)  # QRS amplitude of order 1 mV: the data are in mV
    assert 0.5 < np.median(p2p) < 3.0 and p2p.max() < 10


def test_resampled_100_hz_crop_and_pad(cpsc_root: Path, reference: Path, cpsc500):
    ds = load_cpsc2018(cpsc_root, reference=reference)  # default 100 Hz
    assert ds.signals.shape == (10, 1000, 12) and ds.sampling_rate == 100
    for name in ("A1981", "A1986"):  # the whole file resampled, then centre-cropped
        data, _, _ = read_mat(cpsc_root / f"{name}.mat")
        expected = conform_signal(data, 500, CPSC_LEADS, Conform(100), name)
        np.testing.assert_allclose(ds.signals[NAMES.index(name)], expected, atol=1e-6)
    # Resampling keeps the waveform: lead II close to the 500 Hz signal taken every 5th sample
    # (not equal: the 500 Hz data hold noise above 50 Hz that resampling filters out).
    coarse = cpsc500.signals[:, ::5].astype(np.float64)
    corr = [np.corrcoef(a[:, II], b[:, II])[0, 1] for a, b in zip(ds.signals, coarse)]
    assert np.median(corr) > 0.98 and min(corr) > 0.85
    start = load_cpsc2018(cpsc_root, 500, reference=reference, crop="start")
    row = NAMES.index("A1988")
    np.testing.assert_array_equal(start.signals[row], _raw(cpsc_root, "A1988")[:, :5000].T
                                  .astype(np.float32))
    # A1980 is exactly 10 s: 12 s requested pads 1 s of zeros, or fails without padding.
    long = load_cpsc2018(cpsc_root, 500, reference=reference, seconds=12)
    assert long.length == 6000 and np.all(long.signals[0, 5000:] == 0)
    with pytest.raises(EcgDataError, match="A1980.*padding is off"):
        load_cpsc2018(cpsc_root, 500, reference=reference, seconds=12, pad=False)


# ----------------------------------------------------------------------------- bad input
@pytest.fixture(scope="module")
def bad_root(cpsc_stand_ins: Path, ecg_writers, tmp_path_factory) -> Path:
    write = ecg_writers.cpsc
    root = tmp_path_factory.mktemp("cpsc_bad")
    (root / "TrainingSet1").mkdir()
    for name in ("A1980", "A1981"):  # good, in a subfolder as in the download
        (root / "TrainingSet1" / f"{name}.mat").symlink_to(cpsc_stand_ins / f"{name}.mat")
    good = _raw(cpsc_stand_ins, "A1980")
    nan = good.copy()
    nan[3, 200:205] = np.nan
    write(root / "A9001.mat", nan)                       # NaN samples
    write(root / "A9002.mat", good[:11])                # 11 leads: wrong shape
    scipy.io.savemat(root / "A9003.mat", {"val": good})  # no ECG struct
    (root / "A9004.mat").write_bytes(b"MATLAB 5.0 MAT-file, truncated")  # corrupt file
    write(root / "A9005.mat", good, sex="Female", age=np.nan)  # good, unknown age
    write(root / "A9006.mat", good)                      # no REFERENCE.csv row
    rows = {n: (1,) for n in ("A1980", "A9001", "A9002", "A9003", "A9004", "A9005")}
    rows.update({"A1981": (2,), "A9999": (3,)})  # A9999: a row without a record (logged only)
    write_reference(root / "REFERENCE.csv", rows)
    return root


BAD = {"A9001": "NaN", "A9002": "shape (11, 5000)", "A9003": "struct 'ECG'",
       "A9004": "cannot read", "A9006": "no row in"}


def test_bad_records_raise_one_error_naming_each(bad_root: Path):
    with pytest.raises(EcgDataError) as info:
        load_cpsc2018(bad_root)  # REFERENCE.csv beside the data is the default
    message = str(info.value)
    assert f"{len(BAD)} CPSC 2018 record(s)" in message
    lines = message.splitlines()
    for name, reason in BAD.items():
        line = next((x for x in lines if f"record {name}" in x), None)
        assert line is not None and reason in line, (name, line)
    assert "A9005" not in message and "A9999" not in message


def test_skip_leaves_bad_records_out_and_lists_them(bad_root: Path):
    ds = load_cpsc2018(bad_root, 500, on_error="skip")
    assert [record_name(i) for i in ds.ecg_ids] == ["A1980", "A1981", "A9005"]
    assert set(ds.skipped) == {int(n[1:]) for n in BAD}
    assert ds.classes == ("AF", "Normal")
    assert ds.labels.tolist() == [[0, 1], [1, 0], [0, 1]]
    np.testing.assert_array_equal(ds.signals[2], ds.signals[0])
    assert math.isnan(ds.age[2]) and ds.sex[2] == 1
    assert ds.age[0] == 52 and ds.sex[0] == 0


def test_reference_file_errors(tmp_path: Path, cpsc_stand_ins: Path):
    with pytest.raises(EcgDataError, match="labels file .*missing"):
        load_cpsc2018(cpsc_stand_ins)  # records without a REFERENCE.csv beside them
    bad = write_reference(tmp_path / "bad.csv", {"A1980": (10,)})
    with pytest.raises(EcgDataError, match=r"line 2: record A1980 has label '10'"):
        read_reference(bad)
    (tmp_path / "dup.csv").write_text("Recording,First_label\nA1980,1\nA1980,2\n")
    with pytest.raises(EcgDataError, match="listed twice"):
        read_reference(tmp_path / "dup.csv")
    (tmp_path / "cols.csv").write_text("Record,Label\nA1980,1\n")
    with pytest.raises(EcgDataError, match="lacks the column"):
        read_reference(tmp_path / "cols.csv")
    (tmp_path / "none.csv").write_text("Recording,First_label,Second_label\nA1980,,\n")
    with pytest.raises(EcgDataError, match="A1980 has no label"):
        read_reference(tmp_path / "none.csv")
    assert read_reference(write_reference(tmp_path / "ok.csv", {"A1984": (4, 8, 9)})) == {
        "A1984": frozenset({"LBBB", "STD", "STE"})}


def test_read_mat_of_a_shared_record(cpsc_root: Path):
    data, age, sex = read_mat(cpsc_root / "A1981.mat")
    assert data.shape == (7950, 12) and (age, sex) == (48, 1)


def test_read_mat_and_argument_errors(tmp_path: Path, cpsc_stand_ins: Path, reference: Path,
                                      ecg_writers):
    data, age, sex = read_mat(cpsc_stand_ins / "A1981.mat")  # written (12, 7950), 48, Female
    assert data.shape == (7950, 12) and (age, sex) == (48, 1)
    np.testing.assert_array_equal(data.T, _raw(cpsc_stand_ins, "A1981"))
    with pytest.raises(EcgDataError, match="A0001.*file missing"):
        read_mat(tmp_path / "A0001.mat")
    ecg_writers.cpsc(tmp_path / "A0002.mat", _raw(cpsc_stand_ins, "A1980"), sex="X")
    with pytest.raises(EcgDataError, match="A0002.*sex"):
        read_mat(tmp_path / "A0002.mat")
    with pytest.raises(EcgDataError, match="does not exist"):
        load_cpsc2018(tmp_path / "absent", reference=reference)
    with pytest.raises(EcgDataError, match=r"no CPSC 2018 records \(\*\.mat\)"):
        load_cpsc2018(_empty(tmp_path), reference=reference)
    with pytest.raises(ValueError, match="on_error"):
        load_cpsc2018(cpsc_stand_ins, reference=reference, on_error="ignore")


def _empty(tmp_path: Path) -> Path:
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder
