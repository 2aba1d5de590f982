"""Derived copies of PTB-XL never outlive a change to its files: the cache and the TFDS build
are keyed by every record file, and ``imn data verify`` checks a copy against SHA256SUMS.txt.

Every tree here is written by the test (synthetic records in PTB-XL's layout), except the
check that the shared slice's record files match PhysioNet's list."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np

from imn.cli import main
from imn.data.ptbxl import load_ptbxl
from imn.data.synthetic import make_synthetic, write_synthetic
from imn.data.verify import verify_tree

RATE = 100
TASK = "superdiagnostic"


def _tree(folder: Path, n: int = 40) -> Path:
    return write_synthetic(make_synthetic(n, RATE, seed=5), folder)


def _dat(root: Path, ecg_id: int) -> Path:
    return root / "records100" / "00000" / f"{ecg_id:05d}_lr.dat"


def _signal(root: Path, ecg_id: int, cache_dir: Path, **options) -> np.ndarray:
    dataset = load_ptbxl(root, TASK, RATE, cache_dir=cache_dir, **options)
    return dataset.signals[int(np.flatnonzero(dataset.ecg_ids == ecg_id)[0])]


def test_a_replaced_record_file_rebuilds_the_cache(tmp_path):
    root, cache = _tree(tmp_path / "ptb-xl"), tmp_path / "cache"
    first = _signal(root, 1, cache)
    # Record 1's samples replaced by record 2's (same size): a repaired or swapped .dat.
    shutil.copy(_dat(root, 2), _dat(root, 1))
    os.utime(_dat(root, 1), ns=(_dat(root, 1).stat().st_atime_ns, _dat(root, 1).stat().st_mtime_ns + 10**9))
    again = _signal(root, 1, cache)
    assert not np.array_equal(again, first), "the cache served the old record"
    np.testing.assert_array_equal(again, _signal(root, 2, cache))


def test_sha256_check_sees_a_change_that_keeps_size_and_mtime(tmp_path):
    root, cache = _tree(tmp_path / "ptb-xl"), tmp_path / "cache"
    _signal(root, 1, cache, cache_check="sha256")
    target = _dat(root, 1)
    stat = target.stat()
    shutil.copy(_dat(root, 2), target)
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # size and mtime as before
    # The cheap check cannot see this (its documented limit); the content check does.
    assert not np.array_equal(_signal(root, 1, cache, cache_check="stat"), _signal(root, 2, cache))
    np.testing.assert_array_equal(_signal(root, 1, cache, cache_check="sha256"), _signal(root, 2, cache))


def test_tfds_build_is_rebuilt_when_a_record_changes(tmp_path):
    from imn.data.tfds_ptbxl import load_tfds_ptbxl, prepare_tfds_ptbxl

    root, cache, data_dir = _tree(tmp_path / "ptb-xl"), tmp_path / "cache", tmp_path / "tfds"
    prepare_tfds_ptbxl(root, data_dir, TASK, RATE, cache_dir=cache)
    before = load_tfds_ptbxl(data_dir, TASK, RATE)
    shutil.copy(_dat(root, 2), _dat(root, 1))
    os.utime(_dat(root, 1), ns=(_dat(root, 1).stat().st_atime_ns, _dat(root, 1).stat().st_mtime_ns + 10**9))
    prepare_tfds_ptbxl(root, data_dir, TASK, RATE, cache_dir=cache)
    after = load_tfds_ptbxl(data_dir, TASK, RATE)
    row = int(np.flatnonzero(after.ecg_ids == 1)[0])
    assert not np.array_equal(after.signals[row], before.signals[row])
    np.testing.assert_array_equal(after.signals[row], _signal(root, 2, cache))


def _write_checksums(root: Path) -> None:
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    (root / "SHA256SUMS.txt").write_text(
        "".join(f"{hashlib.sha256((root / f).read_bytes()).hexdigest()} {f}\n" for f in files))


def test_verify_names_each_changed_and_missing_file(tmp_path, capsys):
    root = _tree(tmp_path / "ptb-xl", n=6)
    _write_checksums(root)
    assert main(["data", "verify", str(root)]) == 0
    assert "0 differ, 0 missing" in capsys.readouterr().out
    shutil.copy(_dat(root, 2), _dat(root, 1))
    _dat(root, 3).unlink()
    (root / "notes.txt").write_text("mine")
    report = verify_tree(root)
    assert [path for path, _, _ in report.mismatched] == ["records100/00000/00001_lr.dat"]
    assert report.missing == ["records100/00000/00003_lr.dat"]
    assert report.unlisted == ["notes.txt"]
    assert main(["data", "verify", str(root)]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH records100/00000/00001_lr.dat: expected sha256" in out
    assert "MISSING  records100/00000/00003_lr.dat" in out


def test_the_shared_slice_records_match_physionets_list(ptbxl_root):
    """The slice's records are PhysioNet's files; its cut CSV (and licence) are reported."""
    report = verify_tree(ptbxl_root)
    records = [path for path in report.matched if path.startswith("records")]
    assert len(records) >= 400 and not report.missing
    assert {path for path, _, _ in report.mismatched} <= {"ptbxl_database.csv", "LICENSE.txt",
                                                          "scp_statements.csv"}
    assert "ptbxl_database.csv" in {path for path, _, _ in report.mismatched}


def test_a_damaged_gain_array_in_the_cache_is_rebuilt_not_used(tmp_path):
    from imn.data.ptbxl import cache_folder

    root, cache = _tree(tmp_path / "ptb-xl"), tmp_path / "cache"
    first = _signal(root, 1, cache)
    gain_file = cache_folder(root, RATE, cache) / "gain.npy"
    np.save(gain_file, np.zeros_like(np.load(gain_file)))  # would turn signals into inf / NaN
    np.testing.assert_array_equal(_signal(root, 1, cache), first)
    np.save(gain_file, np.ones((3, 12)))  # the wrong shape: would be an IndexError
    np.testing.assert_array_equal(_signal(root, 1, cache), first)
