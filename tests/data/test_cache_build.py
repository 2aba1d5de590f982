"""Cache builds under concurrency and a full disk: one builder at a time, leftovers of killed
builds removed, and ENOSPC as a clear error instead of a SIGBUS."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from imn.data import ptbxl
from imn.data.cache_build import build_lock
from imn.data.dataset import EcgDataError
from imn.data.ptbxl import cache_folder, load_ptbxl
from imn.data.synthetic import make_synthetic, write_synthetic

RATE = 100


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return write_synthetic(make_synthetic(30, RATE, seed=2), tmp_path_factory.mktemp("data") / "ptb-xl")


def test_a_second_builder_waits_and_reuses_the_first_ones_cache(tree, tmp_path, monkeypatch):
    builds = []
    real_build = ptbxl._build_cache

    def counted(*args, **kwargs):
        builds.append(threading.get_ident())
        time.sleep(0.3)  # long enough for the other loader to arrive mid-build
        return real_build(*args, **kwargs)

    monkeypatch.setattr(ptbxl, "_build_cache", counted)
    results = {}

    def load(name):
        results[name] = load_ptbxl(tree, "superdiagnostic", RATE, cache_dir=tmp_path)

    threads = [threading.Thread(target=load, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(builds) == 1, "both loaders converted the records"
    np.testing.assert_array_equal(results["a"].signals, results["b"].signals)


def test_a_held_lock_makes_the_builder_wait(tree, tmp_path):
    folder = cache_folder(tree, RATE, tmp_path)
    folder.parent.mkdir(parents=True)
    done = threading.Event()
    thread = threading.Thread(target=lambda: (load_ptbxl(tree, "superdiagnostic", RATE, cache_dir=tmp_path),
                                              done.set()))
    with build_lock(folder):
        thread.start()
        assert not done.wait(1.0), "the build did not wait for the lock"
        assert not folder.exists()
    thread.join(60)
    assert done.is_set() and (folder / "manifest.json").is_file()


def test_leftovers_of_killed_builds_are_removed(tree, tmp_path):
    folder = cache_folder(tree, RATE, tmp_path)
    leftover = folder.parent / f".{folder.name}.partial-dead"
    (leftover / "sub").mkdir(parents=True)
    (leftover / "digital.npy").write_bytes(b"\0" * 100)
    load_ptbxl(tree, "superdiagnostic", RATE, cache_dir=tmp_path)
    assert not leftover.exists()
    assert not list(folder.parent.glob(f".{folder.name}.partial-*"))


def _small_filesystem(path: Path) -> bool:
    """Mount a 64 kB tmpfs at ``path`` (root only): a real full disk for the cache."""
    path.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(path)],
                       check=True, capture_output=True, timeout=10)
        return True
    except (OSError, subprocess.SubprocessError):
        return False


def test_a_full_disk_is_a_clear_error_and_leaves_nothing(tree, tmp_path, monkeypatch):
    small = tmp_path / "small"
    mounted = _small_filesystem(small)
    if not mounted:
        # Without the right to mount, the disk fills where the build would first hit it.
        def full(fd, offset, length):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(os, "posix_fallocate", full)
    try:
        with pytest.raises(EcgDataError, match="no space left on the device for the cache") as error:
            load_ptbxl(tree, "superdiagnostic", RATE, cache_dir=small)
        assert "IMN_CACHE_DIR" in str(error.value) and "GB" in str(error.value)
        folder = cache_folder(tree, RATE, small)
        assert not folder.exists() and not list(folder.parent.glob("*.partial-*"))
    finally:
        if mounted:
            # Lazy: detaches even while a file of the failed build is still being closed.
            subprocess.run(["umount", "-l", str(small)], check=False, timeout=10)
    shutil.rmtree(small, ignore_errors=True)
