"""Tests of the PTB-XL reader: labels, folds, signals, cache, bad input.

Real-slice tests read the 500-record slice in ../shared/data/ptb-xl (read-only); tests that
break files do so in a 20-record copy under ``tmp_path``. Every cache lives in ``tmp_path``.
"""

from __future__ import annotations

import ast
import csv
import json
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import wfdb
from sklearn.preprocessing import MultiLabelBinarizer

from imn.data import ptbxl
from imn.data.dataset import LEADS, EcgDataError
from imn.data.ptbxl import TASKS, cache_folder, load_ptbxl

# Published facts about the slice (../shared/data/README.md).
SUPERCLASS_COUNTS = {"NORM": 297, "STTC": 96, "CD": 78, "MI": 73, "HYP": 40}
FOLD_SIZES = [58, 51, 34, 42, 47, 33, 44, 44, 81, 66]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Even a default-location cache goes to tmp_path, never to ~/.cache."""
    monkeypatch.setenv("IMN_CACHE_DIR", str(tmp_path / "default-cache"))


@pytest.fixture(scope="session")
def slice_cache(tmp_path_factory, ptbxl_root) -> Path:
    """A 100 Hz cache of the whole slice, built once for the session."""
    base = tmp_path_factory.mktemp("ptbxl-cache")
    load_ptbxl(ptbxl_root, "all", 100, cache_dir=base)
    return base


def bits(array: np.ndarray) -> np.ndarray:
    """float32 as raw bits: equality of these is bit-exact equality (NaN, -0.0 included)."""
    return np.ascontiguousarray(array, dtype=np.float32).view(np.uint32)


# ============================================================ an independent label reference
def reference_labels(root: Path) -> dict[str, dict[int, set[str] | bool]]:
    """Labels per task written independently of the module: csv + ast, no pandas.

    Multi-label tasks: ecg_id -> set of classes (only records with at least one).
    Binary tasks: ecg_id -> label, only for records the task keeps.
    """
    with open(root / "scp_statements.csv", newline="") as f:
        statements = {row[""]: row for row in csv.DictReader(f)}

    def flag(code: str, column: str) -> bool:
        row = statements.get(code)
        return row is not None and row[column] != "" and float(row[column]) == 1.0

    out: dict[str, dict] = {task: {} for task in TASKS}
    with open(root / "ptbxl_database.csv", newline="") as f:
        for row in csv.DictReader(f):
            ecg_id = int(row["ecg_id"])
            codes = list(ast.literal_eval(row["scp_codes"]))
            diagnostic = [c for c in codes if flag(c, "diagnostic")]
            sets = {
                "all": set(codes),
                "diagnostic": set(diagnostic),
                "subdiagnostic": {statements[c]["diagnostic_subclass"] for c in diagnostic}
                - {""},
                "superdiagnostic": {statements[c]["diagnostic_class"] for c in diagnostic} - {""},
                "form": {c for c in codes if flag(c, "form")},
                "rhythm": {c for c in codes if flag(c, "rhythm")},
            }
            for task, labels in sets.items():
                if labels:
                    out[task][ecg_id] = labels
            supers = sets["superdiagnostic"]
            for x in ("MI", "STTC", "CD", "HYP"):
                if ("NORM" in supers) ^ (x in supers):
                    out[f"norm_vs_{x.lower()}"][ecg_id] = x in supers
    return out


@pytest.fixture(scope="session")
def reference(ptbxl_root):
    return reference_labels(ptbxl_root)


# ============================================================ real slice: labels and folds
def test_slice_shapes_and_types(ptbxl_root, slice_cache):
    data = load_ptbxl(ptbxl_root, "all", 100, cache_dir=slice_cache)
    assert len(data) == 500
    assert data.signals.shape == (500, 1000, 12) and data.signals.dtype == np.float32
    assert data.labels.dtype == np.float32 and set(np.unique(data.labels)) <= {0.0, 1.0}
    np.testing.assert_array_equal(data.ecg_ids, np.arange(1, 501))
    assert data.ecg_ids.dtype == np.int64 and data.patient_ids.dtype == np.int64
    assert data.age.dtype == np.float32 and data.sex.dtype == np.int8
    assert data.sampling_rate == 100 and data.task == "all" and data.skipped == ()
    assert list(data.classes) == sorted(data.classes)
    # Signals are physical (mV): typical ECG amplitudes, not raw ADC counts.
    assert 0.05 < np.abs(data.signals).mean() < 1.0


def test_superdiagnostic_counts_match_published(ptbxl_root, slice_cache):
    data = load_ptbxl(ptbxl_root, "superdiagnostic", 100, cache_dir=slice_cache)
    assert data.classes == ("CD", "HYP", "MI", "NORM", "STTC")
    assert data.label_counts() == SUPERCLASS_COUNTS
    assert np.all(data.labels.sum(axis=1) >= 1)


@pytest.mark.parametrize("task", TASKS)
def test_labels_match_independent_reference(ptbxl_root, slice_cache, reference, task):
    data = load_ptbxl(ptbxl_root, task, 100, cache_dir=slice_cache)
    expected = reference[task]
    assert data.ecg_ids.tolist() == sorted(expected)
    if task.startswith("norm_vs_"):
        assert data.classes == (task.removeprefix("norm_vs_").upper(),)
        np.testing.assert_array_equal(data.labels[:, 0], [expected[i] for i in data.ecg_ids])
        # Both groups present, so the binary task is not degenerate on the slice.
        assert 0 < data.labels.sum() < len(data)
    else:
        binarizer = MultiLabelBinarizer().fit([expected[i] for i in data.ecg_ids])
        assert data.classes == tuple(binarizer.classes_)
        np.testing.assert_array_equal(
            data.labels, binarizer.transform([expected[i] for i in data.ecg_ids])
        )


@pytest.mark.parametrize("target", ["MI", "STTC", "CD", "HYP"])
def test_binary_task_rule_on_superclasses(ptbxl_root, slice_cache, target):
    """norm_vs_X keeps exactly-one-of NORM and X; other superclasses may be present."""
    supers = load_ptbxl(ptbxl_root, "superdiagnostic", 100, cache_dir=slice_cache)
    binary = load_ptbxl(ptbxl_root, f"norm_vs_{target.lower()}", 100, cache_dir=slice_cache)
    col = {c: k for k, c in enumerate(supers.classes)}
    norm, x = supers.labels[:, col["NORM"]], supers.labels[:, col[target]]
    keep = norm != x
    np.testing.assert_array_equal(binary.ecg_ids, supers.ecg_ids[keep])
    np.testing.assert_array_equal(binary.labels[:, 0], x[keep])
    # Records with X plus another superclass (e.g. MI + STTC) are kept, labelled 1.
    others = [k for c, k in col.items() if c not in ("NORM", target)]
    assert np.any(keep & (x == 1) & (supers.labels[:, others].sum(axis=1) > 0))


def test_binary_task_rule_on_hand_made_records(ptbxl_root):
    statements = ptbxl.read_statements(ptbxl_root)
    # IMI -> MI, NDT -> STTC, NORM -> NORM, SR is a rhythm statement (no superclass).
    records = [
        {"NORM": 100.0, "SR": 0.0},  # NORM only: kept, 0
        {"IMI": 50.0, "SR": 0.0},  # MI only: kept, 1
        {"IMI": 15.0, "NDT": 100.0},  # MI and STTC: kept, 1
        {"NORM": 80.0, "IMI": 20.0},  # both NORM and MI: dropped
        {"NDT": 100.0},  # STTC only: dropped
        {"SR": 0.0},  # no superclass: dropped
    ]
    members = ptbxl.binary_task_members(records, statements, "norm_vs_mi")
    assert members.tolist() == [True, True, True, False, False, False]
    labels = ptbxl.task_label_sets(records, statements, "norm_vs_mi")
    assert [bool(s) for s in labels[:3]] == [False, True, True]
    supers = ptbxl.task_label_sets(records, statements, "superdiagnostic")
    assert supers[2] == {"MI", "STTC"} and supers[5] == frozenset()


def test_min_count_drops_rare_classes(ptbxl_root, slice_cache, reference):
    data = load_ptbxl(ptbxl_root, "all", 100, cache_dir=slice_cache, min_count=20)
    counts: dict[str, int] = {}
    for labels in reference["all"].values():
        for name in labels:
            counts[name] = counts.get(name, 0) + 1
    frequent = sorted(c for c, n in counts.items() if n >= 20)
    assert list(data.classes) == frequent and len(frequent) < len(counts)
    keep = sorted(i for i, s in reference["all"].items() if s & set(frequent))
    assert data.ecg_ids.tolist() == keep
    assert np.all(data.labels.sum(axis=1) >= 1)
    assert all(n >= 20 for n in data.label_counts().values())


def test_folds_and_splits(ptbxl_root, slice_cache):
    data = load_ptbxl(ptbxl_root, "all", 100, cache_dir=slice_cache)
    assert np.bincount(data.folds, minlength=11)[1:].tolist() == FOLD_SIZES
    train, validation, test = (data.split(s) for s in ("train", "validation", "test"))
    assert (len(train), len(validation), len(test)) == (sum(FOLD_SIZES[:8]), 81, 66)
    assert set(train.folds) == set(range(1, 9))
    assert set(validation.folds) == {9} and set(test.folds) == {10}
    # Rows stay aligned through the split.
    row = np.flatnonzero(data.folds == 10)[3]
    np.testing.assert_array_equal(test.signals[3], data.signals[row])
    assert test.ecg_ids[3] == data.ecg_ids[row]


def test_metadata_columns(ptbxl_root, slice_cache):
    data = load_ptbxl(ptbxl_root, "all", 100, cache_dir=slice_cache)
    with open(ptbxl_root / "ptbxl_database.csv", newline="") as f:
        rows = {int(r["ecg_id"]): r for r in csv.DictReader(f)}
    for k, ecg_id in enumerate(data.ecg_ids):
        row = rows[int(ecg_id)]
        assert data.folds[k] == int(row["strat_fold"])
        assert data.patient_ids[k] == (int(float(row["patient_id"])) if row["patient_id"] else -1)
        assert data.sex[k] == (int(row["sex"]) if row["sex"] else -1)
        if row["age"]:
            assert data.age[k] == np.float32(row["age"])
        else:
            assert np.isnan(data.age[k])


# ============================================================ real slice: signals
def test_signals_equal_wfdb_at_100hz(ptbxl_root, slice_cache):
    data = load_ptbxl(ptbxl_root, "all", 100, cache_dir=slice_cache)
    for ecg_id in (1, 2, 137, 321, 500):
        record = wfdb.rdrecord(str(ptbxl_root / "records100" / "00000" / f"{ecg_id:05d}_lr"))
        assert [n.upper() for n in record.sig_name] == [n.upper() for n in LEADS]
        row = int(np.flatnonzero(data.ecg_ids == ecg_id)[0])
        np.testing.assert_array_equal(bits(data.signals[row]), bits(record.p_signal))


def test_all_signals_equal_raw_dat_files(ptbxl_root, slice_cache):
    """Every cached record equals the .dat read by hand: int16 LE interleaved, / 1000 mV."""
    data = load_ptbxl(ptbxl_root, "all", 100, cache_dir=slice_cache)
    for k, ecg_id in enumerate(data.ecg_ids):
        path = ptbxl_root / "records100" / "00000" / f"{ecg_id:05d}_lr.dat"
        raw = np.fromfile(path, dtype="<i2").reshape(1000, 12)
        np.testing.assert_array_equal(bits(data.signals[k]), bits(raw / 1000.0))


def test_signals_equal_wfdb_at_500hz(ptbxl_root):
    ids = [3, 77, 250, 499]
    data = load_ptbxl(ptbxl_root, "all", 500, use_cache=False, ecg_ids=ids)
    assert data.signals.shape == (4, 5000, 12)
    for k, ecg_id in enumerate(ids):
        record = wfdb.rdrecord(str(ptbxl_root / "records500" / "00000" / f"{ecg_id:05d}_hr"))
        np.testing.assert_array_equal(bits(data.signals[k]), bits(record.p_signal))


def test_cached_equals_uncached(ptbxl_root, slice_cache):
    ids = list(range(1, 501, 9))
    cached = load_ptbxl(ptbxl_root, "superdiagnostic", 100, cache_dir=slice_cache)
    direct = load_ptbxl(ptbxl_root, "superdiagnostic", 100, use_cache=False, ecg_ids=ids)
    rows = np.searchsorted(cached.ecg_ids, direct.ecg_ids)
    np.testing.assert_array_equal(cached.ecg_ids[rows], direct.ecg_ids)
    np.testing.assert_array_equal(bits(cached.signals[rows]), bits(direct.signals))
    # Labels of a subset use the subset's classes; the rows agree on those classes.
    columns = [cached.classes.index(c) for c in direct.classes]
    np.testing.assert_array_equal(cached.labels[rows][:, columns], direct.labels)
    # A subset read through an existing cache matches too.
    via_cache = load_ptbxl(ptbxl_root, "superdiagnostic", 100, cache_dir=slice_cache,
                           ecg_ids=ids)
    np.testing.assert_array_equal(bits(via_cache.signals), bits(direct.signals))


def test_cache_is_compact_int16(ptbxl_root, slice_cache):
    folder = cache_folder(ptbxl_root, 100, slice_cache)
    digital = np.load(folder / "digital.npy", mmap_mode="r")
    assert isinstance(digital, np.memmap)
    assert digital.dtype == np.int16 and digital.shape == (500, 1000, 12)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["records"] == 500 and manifest["unreadable"] == 0


# ============================================================ a writable 20-record copy
def make_copy(src: Path, dst: Path, ids=range(1, 21), rates=(100,)) -> Path:
    """Copy the CSVs (rows ``ids`` only) and those records at ``rates``."""
    ids = set(ids)
    dst.mkdir(parents=True)
    shutil.copy(src / "scp_statements.csv", dst / "scp_statements.csv")
    with open(src / "ptbxl_database.csv", newline="") as fin, \
            open(dst / "ptbxl_database.csv", "w", newline="") as fout:
        reader, writer = csv.reader(fin), csv.writer(fout)
        writer.writerow(next(reader))
        writer.writerows(r for r in reader if int(r[0]) in ids)
    for ecg_id in ids:
        for rate in rates:
            folder, suffix = ("records100", "lr") if rate == 100 else ("records500", "hr")
            (dst / folder / "00000").mkdir(parents=True, exist_ok=True)
            for ext in ("hea", "dat"):
                name = f"{folder}/00000/{ecg_id:05d}_{suffix}.{ext}"
                shutil.copyfile(src / name, dst / name)  # copyfile: writable copies
    return dst


@pytest.fixture
def small_root(ptbxl_root, tmp_path) -> Path:
    return make_copy(ptbxl_root, tmp_path / "ptbxl-small")


def record_file(root: Path, ecg_id: int, ext: str, rate: int = 100) -> Path:
    folder, suffix = ("records100", "lr") if rate == 100 else ("records500", "hr")
    return root / folder / "00000" / f"{ecg_id:05d}_{suffix}.{ext}"


def test_second_load_reads_only_the_cache(small_root, tmp_path, monkeypatch):
    first = load_ptbxl(small_root, "all", 100, cache_dir=tmp_path / "c")
    assert len(first) == 20

    def no_wfdb(*args, **kwargs):
        raise AssertionError("wfdb was called although the cache exists")

    monkeypatch.setattr(wfdb, "rdrecord", no_wfdb)
    for task in ("all", "superdiagnostic", "norm_vs_cd"):
        again = load_ptbxl(small_root, task, 100, cache_dir=tmp_path / "c")
        rows = np.searchsorted(first.ecg_ids, again.ecg_ids)
        np.testing.assert_array_equal(bits(again.signals), bits(first.signals[rows]))


def test_cache_round_trip_at_500hz(ptbxl_root, tmp_path, capsys):
    small_root = make_copy(ptbxl_root, tmp_path / "ptbxl-small", rates=(500,))
    cached = load_ptbxl(small_root, "all", 500, cache_dir=tmp_path / "c", progress=True)
    assert "PTB-XL 500 Hz" in capsys.readouterr().err  # the tqdm bar
    warm = load_ptbxl(small_root, "all", 500, cache_dir=tmp_path / "c")
    direct = load_ptbxl(small_root, "all", 500, use_cache=False)
    assert cached.signals.shape == (20, 5000, 12)
    for other in (warm, direct):
        np.testing.assert_array_equal(bits(cached.signals), bits(other.signals))
        np.testing.assert_array_equal(cached.labels, other.labels)
    record = wfdb.rdrecord(str(record_file(small_root, 7, "dat", 500).with_suffix("")))
    np.testing.assert_array_equal(bits(cached.signals[6]), bits(record.p_signal))
    # One folder per rate.
    assert cache_folder(small_root, 500, tmp_path / "c").is_dir()
    assert not cache_folder(small_root, 100, tmp_path / "c").exists()


def test_default_cache_location(small_root, tmp_path, monkeypatch):
    monkeypatch.setenv("IMN_CACHE_DIR", str(tmp_path / "env-cache"))
    load_ptbxl(small_root, "superdiagnostic", 100)
    folder = cache_folder(small_root, 100)
    assert folder.is_relative_to(tmp_path / "env-cache") and (folder / "manifest.json").is_file()
    monkeypatch.delenv("IMN_CACHE_DIR")
    assert cache_folder(small_root, 100).is_relative_to(Path.home() / ".cache" / "imn")
    # Keyed by the absolute root: the same data elsewhere gets its own cache.
    assert cache_folder(small_root, 100, "c") != cache_folder(tmp_path / "other", 100, "c")
    assert cache_folder(small_root, 100, "c") != cache_folder(small_root, 500, "c")


def test_cache_rebuilt_when_database_changes(small_root, tmp_path):
    base = tmp_path / "c"
    assert len(load_ptbxl(small_root, "all", 100, cache_dir=base)) == 20
    # Rewrite the metadata with five rows fewer (a new database version).
    make_copy(small_root, tmp_path / "fewer", ids=range(1, 16))
    shutil.copyfile(tmp_path / "fewer" / "ptbxl_database.csv", small_root / "ptbxl_database.csv")
    reread = load_ptbxl(small_root, "all", 100, cache_dir=base)
    assert reread.ecg_ids.tolist() == list(range(1, 16))
    manifest = json.loads((cache_folder(small_root, 100, base) / "manifest.json").read_text())
    assert manifest["records"] == 15
    # The build's lock file stays (removing it would race with a waiting builder).
    leftovers = [p.name for p in cache_folder(small_root, 100, base).parent.iterdir()
                 if not p.name.endswith(".lock")]
    assert leftovers == [cache_folder(small_root, 100, base).name]


def test_interrupted_build_leaves_no_cache(small_root, tmp_path, monkeypatch):
    base = tmp_path / "c"
    real_read = ptbxl._read_record
    calls = []

    def dies_midway(*args):
        calls.append(args)
        if len(calls) == 10:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-conversion
        return real_read(*args)

    monkeypatch.setattr(ptbxl, "_read_record", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        load_ptbxl(small_root, "all", 100, cache_dir=base)
    parent = cache_folder(small_root, 100, base).parent
    # Neither a cache nor a half-written scratch folder (only the build's lock file).
    assert [p for p in parent.iterdir() if not p.name.endswith(".lock")] == []
    monkeypatch.setattr(ptbxl, "_read_record", real_read)
    data = load_ptbxl(small_root, "all", 100, cache_dir=base)
    assert len(data) == 20 and np.abs(data.signals[10:]).sum() > 0


def test_worker_processes_match_serial_read(small_root, monkeypatch):
    monkeypatch.setattr(ptbxl, "_MIN_RECORDS_FOR_PROCESSES", 1)
    monkeypatch.setattr(ptbxl, "_CHUNK", 6)  # several chunks, so their order matters
    record_file(small_root, 8, "dat").write_bytes(b"")  # errors must come back too
    serial = load_ptbxl(small_root, "all", 100, use_cache=False, on_error="skip")
    pooled = load_ptbxl(small_root, "all", 100, use_cache=False, on_error="skip", workers=2)
    np.testing.assert_array_equal(bits(serial.signals), bits(pooled.signals))
    np.testing.assert_array_equal(serial.ecg_ids, pooled.ecg_ids)
    assert serial.skipped == pooled.skipped == (8,)


# ============================================================ bad input
def test_unknown_task_lists_valid_ones(small_root):
    with pytest.raises(EcgDataError, match="unknown PTB-XL task 'superdiag'") as info:
        load_ptbxl(small_root, "superdiag")
    assert all(task in str(info.value) for task in TASKS)


def test_unsupported_sampling_rate(small_root):
    with pytest.raises(EcgDataError, match="sampling rate 250"):
        load_ptbxl(small_root, "all", 250)


def test_missing_root(tmp_path):
    with pytest.raises(EcgDataError, match="does not exist"):
        load_ptbxl(tmp_path / "nowhere", "all")


@pytest.mark.parametrize("name", ["ptbxl_database.csv", "scp_statements.csv"])
def test_missing_csv(small_root, name):
    (small_root / name).unlink()
    with pytest.raises(EcgDataError, match=f"{name} is missing"):
        load_ptbxl(small_root, "all", use_cache=False)


def test_unknown_ecg_ids(small_root):
    with pytest.raises(EcgDataError, match=r"ecg_ids not in .*\[21, 99\]"):
        load_ptbxl(small_root, "all", ecg_ids=[1, 21, 99])


def _missing_dat(root: Path) -> None:
    record_file(root, 5, "dat").unlink()


def _truncated_dat(root: Path) -> None:
    path = record_file(root, 5, "dat")
    path.write_bytes(path.read_bytes()[:10_000])


def _eleven_leads(root: Path) -> None:
    path = record_file(root, 5, "hea")
    lines = path.read_text().splitlines()
    lines[0] = lines[0].replace(" 12 100 ", " 11 100 ")
    path.write_text("\n".join(lines[:-1]) + "\n")


def _swapped_lead_names(root: Path) -> None:
    path = record_file(root, 5, "hea")
    text = path.read_text().replace(" V1\n", " TMP\n").replace(" V2\n", " V1\n")
    path.write_text(text.replace(" TMP\n", " V2\n"))


def _wrong_rate(root: Path) -> None:
    path = record_file(root, 5, "hea")
    lines = path.read_text().splitlines()
    lines[0] = lines[0].replace(" 12 100 1000", " 12 250 1000")
    path.write_text("\n".join(lines) + "\n")


def _nan_sample(root: Path) -> None:
    # fmt 16 marks an invalid sample by -32768; wfdb turns it into NaN.
    path = record_file(root, 5, "dat")
    raw = np.fromfile(path, dtype="<i2")
    raw[123 * 12 + 4] = -32768  # sample 123 of lead aVL
    raw.tofile(path)


def _header_field(root: Path, old: str, new: str, lead: int = 0) -> None:
    """Replace ``old`` by ``new`` in the signal line of ``lead`` of record 5's header."""
    path = record_file(root, 5, "hea")
    lines = path.read_text().splitlines()
    assert old in lines[1 + lead]
    lines[1 + lead] = lines[1 + lead].replace(old, new, 1)
    path.write_text("\n".join(lines) + "\n")


def _empty_header(root: Path) -> None:
    record_file(root, 5, "hea").write_text("")


def _header_missing_signal_lines(root: Path) -> None:
    path = record_file(root, 5, "hea")
    path.write_text("\n".join(path.read_text().splitlines()[:7]) + "\n")


BAD_RECORDS = {
    # wfdb replaces a zero or unreadable gain by 200 without a word: 5x too large signals.
    "zero_gain": (lambda root: _header_field(root, "1000.0(0)/mV", "0(0)/mV"),
                  r"lead I has no valid ADC gain \('0\(0\)/mV'"),
    "garbled_gain": (lambda root: _header_field(root, "1000.0(0)/mV", "abc/mV", lead=2),
                     r"lead III has no valid ADC gain"),
    "microvolt_units": (lambda root: _header_field(root, "/mV", "/uV", lead=1),
                        r"header units \['mV', 'uV',.*expected mV"),
    "empty_header": (_empty_header, r"header .*00005_lr\.hea is empty"),
    "missing_signal_lines": (_header_missing_signal_lines,
                             r"declares 12 signals but has 6 signal line\(s\)"),
    "missing_dat": (_missing_dat, r"file missing: .*00005_lr\.dat"),
    "truncated_dat": (_truncated_dat, r"has 10000 bytes, expected 24000 \(truncated"),
    "eleven_leads": (_eleven_leads, r"header has 11 leads"),
    "swapped_leads": (_swapped_lead_names, r"header has 12 leads .*'V2', 'V1'"),
    "wrong_rate": (_wrong_rate, r"sampling rate is 250 Hz; expected 100 Hz"),
    "nan_samples": (_nan_sample, r"1 invalid \(NaN\) samples, first at sample 123 of lead aVL"),
}


@pytest.mark.parametrize("use_cache", [False, True], ids=["direct", "cache"])
@pytest.mark.parametrize("case", list(BAD_RECORDS))
def test_bad_record_raises_naming_it(small_root, tmp_path, case, use_cache):
    damage, problem = BAD_RECORDS[case]
    damage(small_root)
    with pytest.raises(EcgDataError) as info:
        load_ptbxl(small_root, "all", 100, use_cache=use_cache, cache_dir=tmp_path / "c")
    message = str(info.value)
    assert "ecg_id 5 " in message and "00005_lr" in message
    assert re.search(problem, message), message
    assert "1 PTB-XL record(s)" in message


@pytest.mark.parametrize("case", list(BAD_RECORDS))
def test_bad_record_skipped_on_request(small_root, tmp_path, case, caplog):
    BAD_RECORDS[case][0](small_root)
    with caplog.at_level(logging.WARNING, logger="imn.data.ptbxl"):
        data = load_ptbxl(small_root, "all", 100, use_cache=False, on_error="skip")
    assert data.skipped == (5,)
    assert data.ecg_ids.tolist() == [i for i in range(1, 21) if i != 5]
    assert np.isfinite(data.signals).all()
    assert any("ecg_id 5 " in r.getMessage() for r in caplog.records)


def test_bad_record_remembered_by_the_cache(small_root, tmp_path):
    _nan_sample(small_root)
    base = tmp_path / "c"
    with pytest.raises(EcgDataError, match="ecg_id 5 "):
        load_ptbxl(small_root, "all", 100, cache_dir=base)
    # The cache was still written (the 19 good records are not lost) ...
    assert (cache_folder(small_root, 100, base) / "manifest.json").is_file()
    # ... and a warm load reports the same record, and how to re-read it.
    with pytest.raises(EcgDataError, match=r"(?s)ecg_id 5 .*use_cache=False"):
        load_ptbxl(small_root, "all", 100, cache_dir=base)
    skipped = load_ptbxl(small_root, "all", 100, cache_dir=base, on_error="skip")
    assert skipped.skipped == (5,) and len(skipped) == 19
    # A task or subset without the bad record loads without complaint.
    subset = load_ptbxl(small_root, "all", 100, cache_dir=base, ecg_ids=[1, 2, 3])
    assert subset.skipped == () and len(subset) == 3


def _edit_database(root: Path, ecg_id: int, column: str, value: str) -> None:
    path = root / "ptbxl_database.csv"
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    at = rows[0].index(column)
    for row in rows[1:]:
        if int(row[0]) == ecg_id:
            row[at] = value
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)


@pytest.mark.parametrize("column, value, problem", [
    ("strat_fold", "ten", r"column strat_fold must be numeric; found ecg_id 7: 'ten'"),
    ("strat_fold", "11", r"strat_fold must be an integer 1-10; found ecg_id 7: 11"),
    ("strat_fold", "3.7", r"strat_fold must be an integer 1-10; found ecg_id 7: 3.7"),
    ("age", "fifty", r"column age must be numeric; found ecg_id 7: 'fifty'"),
    ("sex", "7", r"sex must be 0, 1 or empty; found ecg_id 7: 7"),
    ("scp_codes", "{'XYZ': 100.0}", r"statement\(s\) not in .*scp_statements.csv: ecg_id 7: \['XYZ'\]"),
])
def test_bad_database_cells_are_named(small_root, column, value, problem):
    _edit_database(small_root, 7, column, value)
    with pytest.raises(EcgDataError, match=problem):
        load_ptbxl(small_root, "superdiagnostic", use_cache=False)


def test_a_non_integer_ecg_id_is_named(small_root):
    path = small_root / "ptbxl_database.csv"
    lines = path.read_text().splitlines()
    lines[3] = "x" + lines[3]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(EcgDataError, match=r"ecg_id must be an integer; found \['x3'\]"):
        load_ptbxl(small_root, "superdiagnostic", use_cache=False)


def test_a_task_without_any_labelled_record_is_an_error(small_root):
    path = small_root / "scp_statements.csv"
    statements = pd.read_csv(path, index_col=0)
    statements["diagnostic"] = 0  # no statement counts as diagnostic any more
    statements.to_csv(path)
    with pytest.raises(EcgDataError, match="no readable record of .* carries a label of task 'superdiagnostic'"):
        load_ptbxl(small_root, "superdiagnostic", use_cache=False)


def test_a_rate_whose_records_folder_is_absent_says_so(small_root):
    assert not (small_root / "records500").exists()  # the copy holds the 100 Hz records only
    with pytest.raises(EcgDataError, match=r"no records500/ folder under .*--sampling-rate 500"):
        load_ptbxl(small_root, "superdiagnostic", 500, use_cache=False)


def test_invalid_on_error(small_root):
    with pytest.raises(ValueError, match="on_error"):
        load_ptbxl(small_root, "all", on_error="ignore")
