"""Safe cache builds: one builder at a time, no leftovers, and a clear error on a full disk.

A cache folder is built in a ``.NAME.partial-*`` scratch folder beside it and renamed into
place when complete (see :mod:`imn.data.ptbxl`). Around that:

* :func:`build_lock` holds an exclusive ``fcntl`` lock on ``.NAME.lock`` for the build, so a
  second process (or thread) building the same cache waits and then finds it built, instead
  of converting every record a second time and racing on the rename;
* :func:`remove_stale_partials`, called under the lock, deletes scratch folders left by
  builds that were killed (nobody else can be writing them while the lock is held);
* :func:`reserve` allocates a memory-mapped file's blocks before it is written: on a full
  disk that fails at once with ``ENOSPC`` (turned by the builder into :func:`no_space`, an
  error that says how much space is needed and where), where writing through the memory map
  would die with SIGBUS.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from imn.data.dataset import EcgDataError

logger = logging.getLogger("imn")


@contextlib.contextmanager
def build_lock(folder: Path) -> Iterator[None]:
    """Exclusive lock for building ``folder`` (waits while another builder holds it)."""
    lock_path = folder.parent / f".{folder.name}.lock"
    with open(lock_path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("waiting for another process building %s", folder)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def remove_stale_partials(folder: Path) -> list[Path]:
    """Delete ``.NAME.partial-*`` and ``.NAME.stale-*`` beside ``folder`` (call under the lock)."""
    removed = []
    for pattern in (f".{folder.name}.partial-*", f".{folder.name}.stale-*"):
        for leftover in folder.parent.glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)
            removed.append(leftover)
    if removed:
        logger.info("removed %d leftover(s) of interrupted cache builds beside %s", len(removed), folder)
    return removed


def no_space(folder: Path, needed_bytes: int) -> EcgDataError:
    free = shutil.disk_usage(folder if folder.exists() else folder.parent).free
    return EcgDataError(
        f"no space left on the device for the cache {folder}: it needs {needed_bytes / 1e9:.2f} GB, "
        f"{free / 1e9:.2f} GB are free. Set IMN_CACHE_DIR to a folder on a larger disk, or read "
        f"without a cache (use_cache=False)"
    )


def reserve(path: Path, nbytes: int) -> None:
    """Allocate ``nbytes`` for ``path`` now, so that a full disk raises ``OSError(ENOSPC)``
    here (the builder turns it into :func:`no_space`) rather than a SIGBUS while writing
    through a memory map."""
    with open(path, "r+b") as handle:
        try:
            os.posix_fallocate(handle.fileno(), 0, nbytes)
        except OSError as err:
            if err.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                raise
            # A file system without fallocate: the build goes on without the early check.
