"""Shared pytest set-up.

Four fake CPU devices let sharding tests run real multi-device code on a CPU-only machine;
the flag must be set before JAX initialises its backend, so it is set here, at import time.
Computation that is not explicitly sharded still runs on the first device only.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in os.environ["XLA_FLAGS"]:
    os.environ["XLA_FLAGS"] += " --xla_force_host_platform_device_count=4"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")
# A persistent compilation cache shared with the subprocesses some tests start (the resume
# test runs the CLI three times): each compiles the same programs, so only the first pays.
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".cache" / "jax")
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
# Real data lives beside the checkout (../shared/data), never inside it.
SHARED_DATA = Path(os.environ.get("IMN_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


# CI sets IMN_REQUIRE_SHARED_DATA=1 (.ci/run): there the data is always present, and a test
# that cannot find it must fail rather than skip and leave the suite green.
REQUIRE_SHARED_DATA = os.environ.get("IMN_REQUIRE_SHARED_DATA", "") not in ("", "0")


def _shared_folder(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_dir():
        message = f"real data folder {path} is absent (set IMN_SHARED_DATA to its parent)"
        if REQUIRE_SHARED_DATA:
            pytest.fail(message + "; IMN_REQUIRE_SHARED_DATA is set, so this is a failure")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def ptbxl_root() -> Path:
    """The 500-record PTB-XL slice in PhysioNet's layout (read-only)."""
    return _shared_folder("ptb-xl")


@pytest.fixture(scope="session")
def cinc_root() -> Path:
    return _shared_folder("cinc2021-sample")


@pytest.fixture(scope="session")
def cpsc_root() -> Path:
    return _shared_folder("cpsc2018-sample")
