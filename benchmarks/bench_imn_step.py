"""Training-step throughput: JAX/Flax NNX against PyTorch's CPU modes, side by side.

    python benchmarks/bench_imn_step.py --model imn --batch 64 --sampling-rate 100 [--compile] [--json]
    python benchmarks/bench_imn_step.py --model cnn2d
    python benchmarks/bench_imn_step.py --model resnet1d_wang

Contenders, each one full optimiser step on the same batch (forward in train mode with
batch-statistics BN and dropout, BCE with ``pos_weight`` (+ ``lambda * mean|W|`` for IMN),
backward, AdamW lr 1e-3, weight decay 1e-4):

* ``jax float32`` / ``jax bfloat16``: the trainer's own jitted ``train_step``
  (:func:`imn.bench.train.build_step_harness`; bfloat16 is the mixed-precision policy of
  :func:`imn.train.steps.make_steps`: float32 parameters, optimiser state and read-out);
* ``torch float32``: PyTorch eager;
* ``torch bf16 autocast``: ``torch.autocast("cpu", dtype=torch.bfloat16)`` (oneDNN's bf16
  kernels where the CPU has them);
* ``torch bf16 channels_last``: the same on ``channels_last`` tensors (2-D models only);
* ``torch compile bf16``: ``torch.compile`` of the bf16 autocast step (``--compile``; it
  compiles for minutes on a 2-core CPU).

The machine may be shared, so the contenders run in alternation, one step each per round,
and medians are compared: a slow period hits every contender alike. Each side's model FLOP
utilisation (MFU) is its achieved FLOP/s against the matmul rate that side measures in the
same run for the precision it uses (``jnp.dot`` / ``torch.matmul`` of 2048 x 2048); the
step's FLOPs are XLA's cost analysis of the compiled JAX step (the same maths on both sides).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from imn.bench.train import build_step_harness, random_batch  # noqa: E402

LEARNING_RATE = 1e-3
WEIGHT_DECAY = 1e-4
WEIGHT_PENALTY = 1e-4  # lambda in  loss = BCE + lambda * mean|W|  (IMN only)
TWO_D_MODELS = ("imn", "cnn2d")


def cpu_description() -> dict:
    """The CPU's model name and the vector/matrix extensions that decide bf16 speed."""
    name, flags = platform.processor() or platform.machine(), []
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        name = fields.get("Model name", name).strip()
        flags = fields.get("Flags", "").split()
    except (OSError, subprocess.CalledProcessError):
        pass
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx_vnni")
    return {"cpu": name, "cpu_flags": [f for f in wanted if f in flags], "cores": os.cpu_count()}


def torch_model(name: str, num_classes: int):
    from torch_imn import TorchIMN
    from torch_twins import TorchCNN2D, TorchResNet1dWang

    return {"imn": TorchIMN, "cnn2d": TorchCNN2D, "resnet1d_wang": TorchResNet1dWang}[name](num_classes)


def torch_contenders(name: str, x_np: np.ndarray, y_np: np.ndarray, pos_weight: float,
                     expected_params: int, use_compile: bool) -> dict[str, Callable[[], None]]:
    """One step function per PyTorch mode, each with its own model and optimiser."""
    import torch

    from torch_imn import count_params

    def make_step(channels_last: bool, autocast: bool, compiled: bool):
        torch.manual_seed(0)
        model = torch_model(name, y_np.shape[1])
        assert count_params(model) == expected_params, (name, count_params(model), expected_params)
        optimiser = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
        bce = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight))
        x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)

        def loss_fn():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                output = model(x)
            if isinstance(output, tuple):  # IMN: (logits, W, b)
                logits, weights, _ = output
                return bce(logits.float(), y) + WEIGHT_PENALTY * weights.float().abs().mean()
            return bce(output.float(), y)

        forward_loss = torch.compile(loss_fn) if compiled else loss_fn
        model.train()

        def step() -> None:
            optimiser.zero_grad(set_to_none=True)
            forward_loss().backward()
            optimiser.step()

        return step

    contenders = {"torch float32": make_step(False, False, False),
                  "torch bf16 autocast": make_step(False, True, False)}
    if name in TWO_D_MODELS:
        contenders["torch bf16 channels_last"] = make_step(True, True, False)
    if use_compile:
        contenders["torch compile bf16"] = make_step(name in TWO_D_MODELS, True, True)
    return contenders


def matmul_rates(size: int = 2048, repeats: int = 5) -> dict[str, float]:
    """GFLOP/s of a ``size``-square matmul, each framework and precision (best of ``repeats``)."""
    import torch

    flops = 2 * size**3
    rates = {}
    for label, dtype in (("float32", jnp.float32), ("bfloat16", jnp.bfloat16)):
        a = jnp.ones((size, size), dtype)
        dot = jax.jit(lambda p, q: jnp.dot(p, q, preferred_element_type=dtype))
        dot(a, a).block_until_ready()
        best = min(_seconds(lambda: dot(a, a).block_until_ready()) for _ in range(repeats))
        rates[f"jax {label}"] = flops / best / 1e9
    for label, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        a = torch.ones((size, size), dtype=dtype)
        a @ a
        best = min(_seconds(lambda: a @ a) for _ in range(repeats))
        rates[f"torch {label}"] = flops / best / 1e9
    return rates


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="imn", choices=("imn", "cnn2d", "resnet1d_wang"))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--sampling-rate", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0, help="ECG duration")
    parser.add_argument("--num-classes", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (one step per contender)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (slow to build)")
    parser.add_argument("--skip-bf16-jax", action="store_true", help="time JAX in float32 only")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    import torch

    length = int(round(args.seconds * args.sampling_rate))
    x_np, y_np = random_batch(args.batch, length, args.num_classes)
    pos_weight = float((y_np == 0).sum() / max((y_np == 1).sum(), 1))
    class_weight = np.full(args.num_classes, pos_weight, np.float32)

    contenders: dict[str, Callable[[], None]] = {}
    flops_per_step = None
    params = None
    jax_dtypes = ("float32",) if args.skip_bf16_jax else ("float32", "bfloat16")
    first_call = {}
    for dtype in jax_dtypes:
        harness = build_step_harness(args.model, x_np, y_np, sampling_rate=args.sampling_rate,
                                     class_weight=class_weight, weight_l1=WEIGHT_PENALTY,
                                     compute_dtype=dtype)
        if flops_per_step is None:
            compiled = harness.steps.train_step.lower(harness.state, harness.batch).compile()
            cost = compiled.cost_analysis()
            cost = cost[0] if isinstance(cost, (list, tuple)) else cost
            flops_per_step = float(cost["flops"])
            params = harness.params
        first_call[f"jax {dtype}"] = _seconds(harness.train_once)  # compiles
        contenders[f"jax {dtype}"] = harness.train_once
    contenders.update(torch_contenders(args.model, x_np, y_np, pos_weight, params, args.compile))
    for label, step in contenders.items():
        if label.startswith("torch"):
            first_call[label] = _seconds(step)  # oneDNN primitives, torch.compile
        step()  # warm-up

    times: dict[str, list[float]] = {label: [] for label in contenders}
    for _ in range(args.rounds):
        for label, step in contenders.items():
            times[label].append(_seconds(step))
    rates = matmul_rates()

    rows = {}
    for label, seconds in times.items():
        median = statistics.median(seconds)
        precision = "float32" if "float32" in label else "bfloat16"
        roofline = rates[f"{label.split()[0]} {precision}"]
        achieved = flops_per_step / median / 1e9
        rows[label] = {
            "samples_per_s": round(args.batch / median, 2),
            "step_ms": [round(t * 1e3, 1) for t in seconds],
            "first_call_s": round(first_call[label], 2),
            "gflops": round(achieved, 1),
            "mfu": round(achieved / roofline, 3),
        }
    jax_best = max((r for l, r in rows.items() if l.startswith("jax")), key=lambda r: r["samples_per_s"])
    torch_rows = {l: r for l, r in rows.items() if l.startswith("torch")}
    torch_best_label = max(torch_rows, key=lambda l: torch_rows[l]["samples_per_s"])
    result = {
        "model": args.model,
        "batch": args.batch,
        "sampling_rate": args.sampling_rate,
        "input_length": length,
        "params": int(params),
        "gflop_per_step": round(flops_per_step / 1e9, 2),
        "contenders": rows,
        "matmul_gflops": {k: round(v, 1) for k, v in rates.items()},
        "ratio_jax_best_over_torch_float32": round(
            jax_best["samples_per_s"] / rows["torch float32"]["samples_per_s"], 2),
        "ratio_jax_best_over_torch_fastest": round(
            jax_best["samples_per_s"] / torch_rows[torch_best_label]["samples_per_s"], 2),
        "torch_fastest": torch_best_label,
        "jax": jax.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": str(jax.devices()[0]),
        **cpu_description(),
    }
    if args.json:
        print(json.dumps(result))
        return result
    print(f"{args.model}: batch {args.batch}, L = {length}, {params:,} params, "
          f"{result['gflop_per_step']} GFLOP per step; {result['cpu']} "
          f"({result['cores']} cores; {' '.join(result['cpu_flags'])}), torch threads {result['torch_threads']}")
    for label, row in rows.items():
        print(f"  {label:26s} {row['samples_per_s']:8.1f} samples/s  {row['gflops']:6.1f} GFLOP/s  "
              f"MFU {100 * row['mfu']:5.1f}%   steps ms {row['step_ms']}")
    print("  matmul 2048^2 GFLOP/s: " + ", ".join(f"{k} {v}" for k, v in result["matmul_gflops"].items()))
    print(f"  JAX best / torch float32: {result['ratio_jax_best_over_torch_float32']}x;  "
          f"JAX best / fastest torch ({torch_best_label}): {result['ratio_jax_best_over_torch_fastest']}x")
    return result


if __name__ == "__main__":
    main()
