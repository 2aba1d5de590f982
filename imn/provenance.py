"""Provenance of a run: code version, package versions, device and data identity.

Written as ``provenance.json`` next to every run's ``config.json`` so that a table or figure
can be traced back to the exact code, data and machine that produced it.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

_PACKAGES = ("ecg-imn", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "wfdb")


def git_state(repo: str | Path | None = None) -> dict[str, Any]:
    """Commit hash and whether the working tree had uncommitted changes."""
    cwd = Path(repo) if repo else Path(__file__).resolve().parent

    def run(*args: str) -> str | None:
        try:
            return subprocess.run(
                ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; the architecture where that is missing).

    Speed figures are only comparable on one CPU model, so run records and benchmarks name it.
    """
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_info() -> dict[str, Any]:
    import jax

    devices = jax.devices()
    return {
        "platform": devices[0].platform,
        "device_kind": devices[0].device_kind,
        "device_count": jax.device_count(),
        "process_count": jax.process_count(),
        "host": platform.node(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_model": cpu_model(),
        # the cores this process may use (a container or taskset may allow fewer than the host has)
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
    }


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def data_identity(source: str, root: str | None, records: int, label_file: str | Path | None) -> dict[str, Any]:
    """What data a run saw: source, folder, record count and a checksum of the label file."""
    info: dict[str, Any] = {"source": source, "root": str(Path(root).absolute()) if root else None,
                            "records": records}
    if label_file is not None and Path(label_file).is_file():
        info["label_file"] = str(label_file)
        info["label_file_sha256"] = file_sha256(label_file)
    return info


def now_utc() -> str:
    """The current time, UTC, to the second (ISO 8601), as every record here writes it."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def collect(data: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "created": now_utc(),
        "git": git_state(),
        "packages": package_versions(),
        "device": device_info(),
        "data": data or {},
    }
