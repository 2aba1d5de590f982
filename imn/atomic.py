"""Atomic file writes for files whose existence means "this is done".

``imn reproduce`` skips a run whose ``metrics.json`` exists and a model whose
``faithfulness_settings.json`` matches; a process killed half-way through writing such a file
must leave either the old file or none, never a truncated one. Each writer here writes a
temporary file in the same folder (so the rename stays on one file system), flushes it to disk
and renames it over the target, which POSIX makes atomic.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def _write_atomic(path: str | Path, write: Callable[[IO[bytes]], None]) -> Path:
    path = Path(path)
    # Unique per host and process: the processes of a multi-host job share the run folder.
    tmp = path.with_name(f".{path.name}.tmp-{socket.gethostname()}-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        # Only left behind when writing or renaming failed.
        tmp.unlink(missing_ok=True)
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return _write_atomic(path, lambda handle: handle.write(text.encode("utf-8")))


def write_json(path: str | Path, data: Any, **dumps_options: Any) -> Path:
    """``json.dumps(data, indent=2, **dumps_options)`` written to ``path`` atomically."""
    return write_text(path, json.dumps(data, **{"indent": 2, **dumps_options}))


def savez_compressed(path: str | Path, **arrays: Any) -> Path:
    """``numpy.savez_compressed`` to ``path`` (which should end in ``.npz``) atomically."""
    import numpy as np

    return _write_atomic(path, lambda handle: np.savez_compressed(handle, **arrays))
