"""The PhysioNet/CinC Challenge 2020/2021 reader on the shared 50-record sample, and on bad
records built in tmp_path from synthetic stand-ins the tests write (``cinc_stand_ins`` in
conftest.py; headers edited, signal files linked or written with scipy.io.savemat in the
challenge's MATLAB v4 layout), so the bad-input tests run without the shared data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import wfdb

from imn.data.cinc import (
    CLASS_OF_CODE,
    EQUIVALENT_CODES,
    OTHER,
    SCORED_CLASSES,
    SCORED_CODES,
    DxCounts,
    dx_counts,
    load_cinc,
    read_header,
    record_id,
    record_name,
)
from imn.data.conform import Conform, conform_signal, stable_fold
from imn.data.dataset import LEADS, EcgDataError

I, II, III, AVR = (LEADS.index(lead) for lead in ("I", "II", "III", "aVR"))


@pytest.fixture(scope="module")
def cinc500(cinc_root: Path):
    """All 50 shared records at their own rate (500 Hz, 10 s): no resampling or cropping."""
    return load_cinc(cinc_root, sampling_rate=500)


def _row(dataset, name: str) -> int:
    return int(np.flatnonzero(dataset.ecg_ids == record_id(name))[0])


def _label_set(dataset, name: str) -> set[str]:
    row = dataset.labels[_row(dataset, name)]
    return {c for c, flag in zip(dataset.classes, row) if flag}


# ----------------------------------------------------------------------------- the code table
def test_scored_table_has_the_challenge_2021_codes_and_merges():
    assert len(SCORED_CODES) == 30
    assert len(SCORED_CLASSES) == 26  # 30 codes, 4 equivalence pairs merged
    assert SCORED_CODES["164889003"] == "AF"
    assert SCORED_CODES["426783006"] == "NSR"
    assert SCORED_CODES["270492004"] == "IAVB"
    assert SCORED_CODES["164934002"] == "TAb"
    for a, b, merged in [("713427006", "59118001", "RBBB"), ("733534002", "164909002", "LBBB"),
                         ("284470004", "63593006", "PAC"), ("427172004", "17338001", "PVC")]:
        assert CLASS_OF_CODE[a] == CLASS_OF_CODE[b] == merged
    assert set(EQUIVALENT_CODES) == {"713427006", "733534002", "63593006", "17338001"}
    assert not {"CRBBB", "CLBBB", "SVPB", "VPB"} & set(SCORED_CLASSES)
    assert all("|" not in c and "/" not in c for c in SCORED_CLASSES)


def test_record_ids_are_reversible():
    assert record_id("HR06000") == 50_006_000
    assert record_id("E07500") == 60_007_500
    assert record_id("JS20000") == 70_020_000
    assert record_id("A0001") == 10_000_001
    for name in ("HR06000", "E07519", "JS20019", "A6877", "Q3581", "I0075", "S0549", "HR21837"):
        assert record_name(record_id(name)) == name
    for bad in ("X1", "HR6000", "hr06000", "E07500a"):
        with pytest.raises(EcgDataError, match="integer id"):
            record_id(bad)


# ----------------------------------------------------------------------------- the shared sample
def test_shapes_ids_folds_demographics(cinc500, cinc_root: Path):
    ds = cinc500
    assert ds.signals.shape == (50, 5000, 12) and ds.signals.dtype == np.float32
    assert ds.labels.dtype == np.float32 and ds.labels.shape == (50, len(ds.classes))
    assert ds.ecg_ids.dtype == np.int64 and np.all(np.diff(ds.ecg_ids) > 0)
    names = [record_name(i) for i in ds.ecg_ids]
    assert names[:3] == ["HR06000", "HR06001", "HR06002"] and names[-1] == "JS20019"
    assert sorted(names) == sorted(p.stem for p in cinc_root.glob("*.hea"))
    assert ds.folds.tolist() == [stable_fold(n) for n in names]
    assert set(ds.folds.tolist()) <= set(range(1, 11)) and len(set(ds.folds.tolist())) > 5
    assert np.all(ds.patient_ids == -1)
    row = _row(ds, "HR06000")
    assert ds.age[row] == 59 and ds.sex[row] == 1  # "# Age: 59", "# Sex: Female"
    row = _row(ds, "E07500")
    assert ds.age[row] == 78 and ds.sex[row] == 0
    assert ds.sex.dtype == np.int8 and ds.age.dtype == np.float32
    assert ds.skipped == ()
    assert len(ds.split("train")) + len(ds.split("validation")) + len(ds.split("test")) == 50


def test_labels_are_the_headers_scored_codes(cinc500):
    ds = cinc500
    assert list(ds.classes) == sorted(ds.classes)
    assert set(ds.classes) <= set(SCORED_CLASSES)
    # HR06002  Dx: 426177001,426783006,713426002
    assert _label_set(ds, "HR06002") == {"SB", "NSR", "IRBBB"}
    # JS20000  Dx: 284470004,427084000,698252002,55930002 (the last is unscored)
    assert _label_set(ds, "JS20000") == {"PAC", "STach", "NSIVCB"}
    # E07509   Dx: 59118001,426177001 (RBBB, merged with CRBBB)
    assert _label_set(ds, "E07509") == {"RBBB", "SB"}
    # JS20003  Dx: ...,427172004 (PVC) and 55827005 (unscored)
    assert _label_set(ds, "JS20003") == {"PAC", "STach", "TAb", "PVC"}
    # E07505   Dx: 164873001 (LVH, unscored only): kept, all-zero label row
    assert _label_set(ds, "E07505") == set()
    assert ds.label_counts()["NSR"] == 15 and ds.label_counts()["PAC"] == 20


def test_signals_equal_wfdb_physical_values(cinc500, cinc_root: Path):
    for name in ("HR06000", "E07500", "JS20005"):
        record = wfdb.rdrecord(str(cinc_root / name))
        assert record.fs == 500 and record.sig_name == list(LEADS)
        expected = record.p_signal.astype(np.float32)  # units mV (HR headers spell it "mv")
        np.testing.assert_array_equal(cinc500.signals[_row(cinc500, name)], expected)


def test_lead_order_and_units_are_physiological(cinc500):
    x = cinc500.signals.astype(np.float64)
    # Einthoven: III = II - I and aVR = -(I + II) / 2, to the 1 uV resolution of the files.
    assert np.abs(x[..., III] - (x[..., II] - x[..., I])).max() < 0.0025
    assert np.abs(x[..., AVR] + (x[..., I] + x[..., II]) / 2).max() < 0.005
    # Lead II QRS amplitude of order 1 mV (not uV, not V).
    p2p = np.ptp(x[..., II], axis=1)
    assert 0.5 < np.median(p2p) < 3.0 and p2p.max() < 10


def test_resampled_to_100_hz_matches_conform_of_wfdb_read(cinc_root: Path, tmp_path: Path):
    for name in ("HR06003", "E07512", "JS20007"):
        for ext in (".hea", ".mat"):
            (tmp_path / f"{name}{ext}").symlink_to(cinc_root / f"{name}{ext}")
    ds = load_cinc(tmp_path)  # default 100 Hz, 10 s
    assert ds.signals.shape == (3, 1000, 12) and ds.sampling_rate == 100
    for name in ("HR06003", "E07512", "JS20007"):
        record = wfdb.rdrecord(str(cinc_root / name))
        expected = conform_signal(record.p_signal, 500, record.sig_name, Conform(100), name)
        np.testing.assert_allclose(ds.signals[_row(ds, name)], expected, atol=1e-6)
    # 20 s requested from 10 s records: zero-padded at the end, or an error without padding.
    ds20 = load_cinc(tmp_path, sampling_rate=100, seconds=20)
    assert ds20.length == 2000 and np.all(ds20.signals[:, 1000:] == 0)
    np.testing.assert_allclose(ds20.signals[:, :1000], ds.signals, atol=1e-6)
    with pytest.raises(EcgDataError, match="padding is off"):
        load_cinc(tmp_path, seconds=20, pad=False)


# PTB-XL facts for ecg_id 6000-6009: scp_codes keys (likelihoods dropped), age, sex (1 female),
# from PTB-XL's ptbxl_database.csv (Wagner et al. 2020, PhysioNet, CC BY 4.0), read from the copy
# committed in github.com/co-de1/iniciacao-cientifica (commit 3ef837b, ptbxl_database.csv).
PTBXL_6000_6009 = {
    6000: ({"NORM", "NT_", "SR"}, 59, 1),
    6001: ({"NST_", "SR"}, 78, 1),
    6002: ({"NORM", "IRBBB", "SBRAD"}, 29, 0),
    6003: ({"NORM", "STACH"}, 46, 1),
    6004: ({"NORM", "SR"}, 28, 0),
    6005: ({"NORM", "SR"}, 72, 1),
    6006: ({"NORM", "SR"}, 54, 1),
    6007: ({"NORM", "SR"}, 19, 0),
    6008: ({"NORM", "SR"}, 47, 1),
    6009: ({"NORM", "SR"}, 61, 1),
}
# SCP statement -> SNOMED CT code, for the statements above. The challenge did not publish the
# table it used to convert PTB-XL (PTB-XL+'s ptbxlToSNOMED.csv maps to OMOP concept ids, not
# these codes), so this is matched by name: each SCP description (scp_statements.csv) against
# the Dx names in evaluation-2021's dx_mapping_scored.csv / dx_mapping_unscored.csv:
# SR "sinus rhythm" = 426783006 "sinus rhythm"; SBRAD "sinus bradycardia" = 426177001;
# STACH "sinus tachycardia" = 427084000; IRBBB = 713426002 "incomplete right bundle branch
# block"; NT_ "non-specific T-wave changes" = 164934002 "t wave abnormal"; NST_ "non-specific
# ST changes" = 55930002 "s t changes" (unscored). NORM "normal ECG" has no code of its own in
# the challenge's tables; mapping it to sinus rhythm is an inference (record 6002 has NORM and
# SBRAD but no SR, and HR06002 carries 426783006), stated here rather than hidden.
SCP_TO_SNOMED = {
    "SR": "426783006", "NORM": "426783006", "SBRAD": "426177001", "STACH": "427084000",
    "IRBBB": "713426002", "NT_": "164934002", "NST_": "55930002",
}


def test_hr0600x_equal_ptbxl_6000_6009(cinc500, cinc_root: Path):
    for ecg_id, (scp, age, sex) in PTBXL_6000_6009.items():
        name = f"HR{ecg_id:05d}"
        codes = {SCP_TO_SNOMED[s] for s in scp}
        header = read_header(cinc_root / name)
        assert set(header.dx) == codes, name
        expected = {CLASS_OF_CODE[c] for c in codes if c in CLASS_OF_CODE}
        assert _label_set(cinc500, name) == expected, name
        row = _row(cinc500, name)
        assert (cinc500.age[row], cinc500.sex[row]) == (age, sex), name
        # PTB-XL's 500 Hz records: 10 s at 500 Hz.
        assert wfdb.rdheader(str(cinc_root / name)).sig_len == 5000


def test_dx_counts_count_the_other_bucket(cinc_root: Path):
    counts = dx_counts(cinc_root)
    assert counts.records == 50
    # 55930002 (ST changes, unscored): HR06001, JS20000, JS20009, JS20014, JS20015.
    assert counts.other["55930002"] == 5
    assert counts.other["164873001"] == 3  # LVH: E07505, E07519, JS20014
    assert counts.unlabelled == 2  # E07505, E07519
    assert counts.other_records == 21
    assert counts.scored["PAC"] == 20 and not set(counts.other) & set(SCORED_CODES)
    assert OTHER in counts.summary()


# ----------------------------------------------------------------------------- bad input
def _clone(src: Path, folder: Path, name: str, *, edit=None, val: np.ndarray | None = None,
           mat: bool = True) -> Path:
    """Copy record ``src`` as ``folder/name``: header text renamed (and ``edit``-ed),
    signal linked, or ``val`` written in the challenge's MATLAB v4 layout, or absent."""
    folder.mkdir(parents=True, exist_ok=True)
    text = src.with_suffix(".hea").read_text().replace(src.name, name)
    (folder / f"{name}.hea").write_text(edit(text) if edit else text)
    if val is not None:
        scipy.io.savemat(folder / f"{name}.mat", {"val": val}, format="4")
    elif mat:
        (folder / f"{name}.mat").symlink_to(src.with_suffix(".mat"))
    return folder / name


def _val(src: Path) -> np.ndarray:
    return scipy.io.loadmat(src.with_suffix(".mat"))["val"]


@pytest.fixture(scope="module")
def bad_root(cinc_stand_ins: Path, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cinc_bad")
    georgia = cinc_stand_ins / "E07506"
    _clone(cinc_stand_ins / "HR06004", root / "ptbxl", "HR06004")  # good, in a subfolder
    _clone(georgia, root / "georgia", "E07506")  # good
    _clone(georgia, root / "georgia", "E99001", mat=False)  # missing signal file
    (root / "georgia" / "E99002.hea").write_text("E99002 twelve leads\nnot a signal line\n")
    _clone(georgia, root / "georgia", "E99003", edit=lambda t: t.replace(" V6\n", " V7\n"))
    nan = _val(georgia).copy()
    nan[4, 100:110] = -32768  # the 16-bit format's invalid sample: NaN in wfdb's p_signal
    _clone(georgia, root / "georgia", "E99004", val=nan)
    _clone(georgia, root / "georgia", "E99005",
           edit=lambda t: t.replace("# Dx: 426783006", "# Dx: 999999999,426783006"))
    _clone(georgia, root / "georgia", "E99006", val=_val(georgia)[:, :4000].copy())  # short file
    _clone(georgia, root / "georgia", "E99007",
           edit=lambda t: "\n".join(x for x in t.splitlines() if not x.startswith("# Dx")))
    _clone(georgia, root / "other", "X1")  # a name outside the challenge's scheme
    return root


BAD = {"E99001": "missing", "E99002": "cannot", "E99003": "V7", "E99004": "NaN",
       "E99006": "holds 4000 samples per lead", "E99007": "Dx", "X1": "integer id"}


def test_bad_records_raise_one_error_naming_each(bad_root: Path):
    with pytest.raises(EcgDataError) as info:
        load_cinc(bad_root)
    message = str(info.value)
    assert f"{len(BAD)} CinC record(s)" in message
    lines = message.splitlines()
    for name, reason in BAD.items():
        line = next((x for x in lines if f"record {name}" in x), None)
        assert line is not None and reason in line, (name, line)
    assert "E99005" not in message and "E07506" not in message


def test_skip_leaves_bad_records_out_and_lists_them(bad_root: Path):
    ds = load_cinc(bad_root, sampling_rate=500, on_error="skip")
    assert [record_name(i) for i in ds.ecg_ids] == ["HR06004", "E07506", "E99005"]
    assert set(ds.skipped) == {record_id(n) for n in BAD if n != "X1"} | {-1}
    assert ds.signals.shape == (3, 5000, 12)
    # E99005 is E07506 (NSR) plus an unknown code: same signal, same scored label.
    np.testing.assert_array_equal(ds.signals[2], ds.signals[1])
    assert _label_set(ds, "E99005") == {"NSR"} and OTHER not in ds.classes
    other = load_cinc(bad_root, task="scored_other", on_error="skip")
    assert other.classes[-1] == OTHER
    assert other.labels[:, -1].tolist() == [0.0, 0.0, 1.0]


def test_unknown_code_is_counted_as_other(bad_root: Path):
    counts = DxCounts.of([read_header(bad_root / "georgia" / n) for n in ("E07506", "E99005")])
    assert counts.other == {"999999999": 1} and counts.other_records == 1
    assert counts.scored == {"NSR": 2} and counts.unlabelled == 0
    with pytest.raises(EcgDataError, match="E99002"):
        dx_counts(bad_root)  # the corrupt header is named


def test_lead_names_units_and_equivalent_codes_from_the_header(cinc_stand_ins: Path,
                                                                tmp_path: Path):
    src = cinc_stand_ins / "E07500"

    def swap_i_ii(text: str) -> str:  # the header now says column 0 is II and column 1 is I
        text = text.replace(" 0 I\n", " 0 @\n").replace(" 0 II\n", " 0 I\n")
        return text.replace(" 0 @\n", " 0 II\n")

    _clone(src, tmp_path, "E98001")
    _clone(src, tmp_path, "E98002", edit=swap_i_ii)
    _clone(src, tmp_path, "E98003", edit=lambda t: t.replace("/mV", "/uV"))
    _clone(src, tmp_path, "E98004", edit=lambda t: t.replace("# Dx: 67741000119109,426177001",
                                                              "# Dx: 63593006,17338001"))
    ds = load_cinc(tmp_path, sampling_rate=500)
    base = ds.signals[_row(ds, "E98001")]
    swapped = ds.signals[_row(ds, "E98002")]
    np.testing.assert_array_equal(swapped[:, I], base[:, II])
    np.testing.assert_array_equal(swapped[:, II], base[:, I])
    np.testing.assert_array_equal(swapped[:, 2:], base[:, 2:])
    np.testing.assert_allclose(ds.signals[_row(ds, "E98003")], base / 1000, rtol=1e-6)
    assert _label_set(ds, "E98004") == {"PAC", "PVC"}  # SVPB and VPB merged into PAC and PVC
    assert "SVPB" not in ds.classes and "VPB" not in ds.classes


def test_argument_errors(cinc_stand_ins: Path, tmp_path: Path):
    with pytest.raises(EcgDataError, match="unknown CinC task"):
        load_cinc(cinc_stand_ins, task="superdiagnostic")
    with pytest.raises(EcgDataError, match="no WFDB headers"):
        load_cinc(tmp_path)
    with pytest.raises(EcgDataError, match="does not exist"):
        load_cinc(tmp_path / "absent")
    with pytest.raises(ValueError, match="on_error"):
        load_cinc(cinc_stand_ins, on_error="ignore")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in ("a", "b"):
        _clone(cinc_stand_ins / "E07506", tmp_path / folder, "E07506")
    with pytest.raises(EcgDataError, match="occurs twice"):
        load_cinc(tmp_path)


def test_unknown_age_and_sex(cinc_stand_ins: Path, tmp_path: Path):
    def unknown(text: str) -> str:
        lines = [x for x in text.splitlines() if not x.startswith(("# Age", "# Sex"))]
        return "\n".join(lines + ["# Age: Unknown", "# Sex: Unknown"]) + "\n"

    header = read_header(_clone(cinc_stand_ins / "E07506", tmp_path, "E97001", edit=unknown))
    assert math.isnan(header.age) and header.sex == -1
    header = read_header(_clone(cinc_stand_ins / "E07506", tmp_path, "E97002",
                                edit=lambda t: unknown(t).replace("Age: Unknown", "Age: NaN")))
    assert math.isnan(header.age)
    bad = _clone(cinc_stand_ins / "E07506", tmp_path, "E97003",
                 edit=lambda t: unknown(t).replace("Sex: Unknown", "Sex: 7"))
    with pytest.raises(EcgDataError, match="E97003.*Sex"):
        read_header(bad)
