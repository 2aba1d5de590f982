"""A real multi-process run: two JAX processes on loopback (``jax.distributed.initialize``,
CPU collectives), each feeding its half of every global batch, train the tiny IMN for a few
steps and get the losses of one process holding the whole batch on the same two-device mesh."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

WORKER = Path(__file__).with_name("distributed_worker.py")
REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(out: Path, devices: int, job: dict[str, str] | None = None) -> subprocess.Popen:
    """A worker with ``devices`` CPU devices; ``job``: the JAX_* variables of a multi-process
    job, exactly as the README tells users to set them."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID", "IMN_DISTRIBUTED")}
    env.update(JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO), **(job or {}),
               XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    return subprocess.Popen([sys.executable, str(WORKER), str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(process: subprocess.Popen) -> None:
    try:
        output, _ = process.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    assert process.returncode == 0, output[-3000:]


@pytest.mark.slow
def test_two_processes_train_like_one(tmp_path):
    address = f"127.0.0.1:{_free_port()}"
    workers = [_start(tmp_path / f"process{i}.json", devices=1,
                      job={"JAX_COORDINATOR_ADDRESS": address, "JAX_NUM_PROCESSES": "2",
                           "JAX_PROCESS_ID": str(i)}) for i in range(2)]
    single = _start(tmp_path / "single.json", devices=2)
    for process in (*workers, single):
        _finish(process)
    parts = [json.loads((tmp_path / f"process{i}.json").read_text()) for i in range(2)]
    whole = json.loads((tmp_path / "single.json").read_text())

    assert [p["process_index"] for p in parts] == [0, 1]
    assert all(p["process_count"] == 2 and p["global_devices"] == 2 and p["local_devices"] == 1
               for p in parts)
    # Each process fed its own half of the global batch of 8; one process fed all of it.
    assert parts[0]["rows_fed"] == [0, 1, 2, 3] and parts[1]["rows_fed"] == [4, 5, 6, 7]
    assert whole["rows_fed"] == list(range(8)) and whole["global_devices"] == 2
    assert len(whole["losses"]) == 3 and np.all(np.isfinite(whole["losses"]))
    for part in parts:
        np.testing.assert_allclose(part["losses"], whole["losses"], rtol=1e-5)
    # The steps changed the model: a loss that never moved would pass the comparison trivially.
    assert len(set(whole["losses"])) > 1
