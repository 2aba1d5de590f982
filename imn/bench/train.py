"""Throughput of the real training and inference steps of any registered model.

``imn bench train --model NAME --batch 64 --sampling-rate 100 --json`` times the jitted
``train_step`` and ``eval_step`` that :func:`imn.train.trainer.train_and_evaluate` uses
(median over timed steps after a compile call and a warm-up call); ``--model all`` and
``--dtype float32,bfloat16`` cover every registered model in both precisions. For the
PyTorch ratios, see ``benchmarks/bench_imn_step.py``, which times both frameworks in one run.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from typing import Any

import jax
import numpy as np

from imn.data.sharding import make_mesh, replicated_sharding, shard_batch
from imn.models import count_params, create_model
from imn.train.attention import abn_auxiliary, has_attention_branch
from imn.train.config import OptimConfig
from imn.train.optim import make_optimizer
from imn.train.steps import LossSpec, StepFunctions, TrainState, make_steps

COMPUTE_DTYPES = ("float32", "bfloat16")


def median_seconds(fn, steps: int) -> tuple[float, float]:
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


@dataclasses.dataclass
class StepHarness:
    """The trainer's own jitted steps for one model, with a state and a device batch.

    ``x (B, L, 12)``, ``y (B, K)``; ``batch`` is sharded over all local devices, as in training.
    """

    model_name: str
    steps: StepFunctions
    state: TrainState
    batch: dict[str, jax.Array]
    params: int

    def train_once(self) -> dict[str, jax.Array]:
        """One optimiser step (the state advances), blocking until it is done."""
        self.state, metrics = self.steps.train_step(self.state, self.batch)
        jax.block_until_ready(metrics["loss"])
        return metrics

    def infer_once(self) -> jax.Array:
        return jax.block_until_ready(self.steps.eval_step(self.state, self.batch))


def build_step_harness(model_name: str, x: np.ndarray, y: np.ndarray, *, sampling_rate: int = 100,
                       class_weight: np.ndarray | None = None, weight_l1: float = 1e-4,
                       compute_dtype: str = "float32",
                       model_overrides: dict[str, Any] | None = None) -> StepHarness:
    """:class:`StepHarness` for ``model_name``: AdamW, BCE with ``class_weight`` as pos_weight
    (class-weighted CE for softmax heads), plus ``weight_l1 * mean|W|`` for IMN models."""
    batch, length, _ = x.shape
    labels_k = y.shape[1]
    outputs = 2 if model_name == "imn_softmax" else labels_k
    model = create_model(model_name, num_classes=outputs, sampling_rate=sampling_rate,
                         input_length=length, **(model_overrides or {}))
    head = getattr(model, "head_type", "sigmoid")
    if class_weight is None:
        class_weight = np.ones(2 if head == "softmax" else labels_k, np.float32)
    # An attention branch network (xecgnet) trains both branches, as in its stage 1.
    auxiliary = abn_auxiliary(1.0) if has_attention_branch(model) else None
    spec = LossSpec(head=head, class_weight=np.asarray(class_weight, np.float32),
                    weight_l1=weight_l1 if hasattr(model, "generate") else 0.0,
                    auxiliary=auxiliary)
    params = count_params(model)
    mesh = make_mesh()
    tx = make_optimizer(OptimConfig(), steps_per_epoch=100, epochs=100)
    fns = make_steps(model, tx, spec, seed=0, compute_dtype=compute_dtype,
                     state_sharding=replicated_sharding(mesh))
    device_batch = shard_batch({"x": x, "y": y, "mask": np.ones(batch, np.float32),
                                "index": np.arange(batch, dtype=np.int32)}, mesh)
    return StepHarness(model_name, fns, fns.init_state(), device_batch, params)


def real_step_callables(model_name: str, x: np.ndarray, y: np.ndarray, **kwargs):
    """``(train_once, infer_once, params)`` of :func:`build_step_harness` (same arguments)."""
    harness = build_step_harness(model_name, x, y, **kwargs)
    return harness.train_once, harness.infer_once, harness.params


def random_batch(batch: int, length: int, labels: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Standard-normal ECGs ``(batch, length, 12)`` and 30%-positive labels ``(batch, labels)``."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, length, 12), dtype=np.float32)
    y = (rng.random((batch, labels)) < 0.3).astype(np.float32)
    return x, y


def bench_train(model_name: str, *, batch: int = 64, sampling_rate: int = 100, num_classes: int = 1,
                steps: int = 5, seconds: float = 10.0, compute_dtype: str = "float32") -> dict:
    """Training and inference samples/s of ``model_name`` on random data of the given size."""
    if compute_dtype not in COMPUTE_DTYPES:
        raise ValueError(f"compute_dtype must be one of {COMPUTE_DTYPES}, got {compute_dtype!r}")
    length = int(round(seconds * sampling_rate))
    length -= length % 4
    labels_k = 1 if model_name == "imn_softmax" else num_classes
    x, y = random_batch(batch, length, labels_k)
    harness = build_step_harness(model_name, x, y, sampling_rate=sampling_rate,
                                 compute_dtype=compute_dtype)
    train_first, train_median = median_seconds(harness.train_once, steps)
    infer_first, infer_median = median_seconds(harness.infer_once, steps)
    device = jax.devices()[0]
    return {
        "model": model_name,
        "params": harness.params,
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
