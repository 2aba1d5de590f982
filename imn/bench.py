"""Throughput of the real training and inference steps of any registered model.

``imn bench train --model NAME --batch 64 --sampling-rate 100 --json`` times the jitted
``train_step`` and ``eval_step`` that :func:`imn.train.trainer.train_and_evaluate` uses
(median over timed steps after a compile call and a warm-up call). For the PyTorch ratio of
the IMN step, see ``benchmarks/bench_imn_step.py``, which times both frameworks in one run.
"""

from __future__ import annotations

import statistics
import time

import jax
import numpy as np

from imn.data.sharding import make_mesh, replicated_sharding, shard_batch
from imn.models import count_params, create_model
from imn.train.config import OptimConfig
from imn.train.optim import make_optimizer
from imn.train.steps import LossSpec, make_steps


def _median_seconds(fn, steps: int) -> tuple[float, float]:
    """(first-call seconds, median seconds of ``steps`` later calls, after one warm-up)."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    fn()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


def bench_train(model_name: str, *, batch: int = 64, sampling_rate: int = 100, num_classes: int = 1,
                steps: int = 5, seconds: float = 10.0, compute_dtype: str = "float32") -> dict:
    """Training and inference samples/s of ``model_name`` on random data of the given size."""
    length = int(round(seconds * sampling_rate))
    length -= length % 4
    outputs = 2 if model_name == "imn_softmax" else num_classes
    labels_k = 1 if model_name == "imn_softmax" else num_classes
    model = create_model(model_name, num_classes=outputs, sampling_rate=sampling_rate, input_length=length)
    params = count_params(model)
    head = getattr(model, "head_type", "sigmoid")
    weights = np.ones(2 if head == "softmax" else labels_k, np.float32)
    spec = LossSpec(head=head, class_weight=weights, weight_l1=1e-4 if hasattr(model, "generate") else 0.0)
    mesh = make_mesh()
    tx = make_optimizer(OptimConfig(), steps_per_epoch=100, epochs=100)
    fns = make_steps(model, tx, spec, seed=0, compute_dtype=compute_dtype,
                     state_sharding=replicated_sharding(mesh))
    rng = np.random.default_rng(0)
    batch_arrays = {
        "x": rng.standard_normal((batch, length, 12), dtype=np.float32),
        "y": (rng.random((batch, labels_k)) < 0.3).astype(np.float32),
        "mask": np.ones(batch, np.float32),
        "index": np.arange(batch, dtype=np.int32),
    }
    device_batch = shard_batch(batch_arrays, mesh)
    state = fns.init_state()

    def train_once() -> None:
        nonlocal state
        state, metrics = fns.train_step(state, device_batch)
        jax.block_until_ready(metrics["loss"])

    def infer_once() -> None:
        jax.block_until_ready(fns.eval_step(state, device_batch))

    train_first, train_median = _median_seconds(train_once, steps)
    infer_first, infer_median = _median_seconds(infer_once, steps)
    device = jax.devices()[0]
    return {
        "model": model_name,
        "params": params,
        "batch": batch,
        "sampling_rate": sampling_rate,
        "input_length": length,
        "compute_dtype": compute_dtype,
        "train_samples_per_s": round(batch / train_median, 2),
        "train_step_ms": round(train_median * 1e3, 1),
        "train_first_call_s": round(train_first, 2),
        "inference_samples_per_s": round(batch / infer_median, 2),
        "inference_ms_per_batch": round(infer_median * 1e3, 1),
        "device": f"{device.platform}:{device.device_kind}",
        "device_count": jax.device_count(),
    }
