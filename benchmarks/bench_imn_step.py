"""Throughput of one ECG-IMN training step and of inference: JAX/Flax NNX vs PyTorch eager.

    python benchmarks/bench_imn_step.py --batch 64 --sampling-rate 100 [--json]

Training step (both frameworks): forward in train mode (batch-stat BN, dropout), BCE with
``pos_weight`` + ``lambda * mean|W|``, backward, AdamW (lr 1e-3, weight decay 1e-4). The JAX
side is the trainer's own ``train_step``/``eval_step`` (:func:`imn.bench.real_step_callables`:
one jitted function with donated buffers, the batch sharded over the local devices);
PyTorch runs eagerly with ``torch.optim.AdamW``. Inference: forward only, eval mode
(``torch.inference_mode``).

The machine may be shared, so the two frameworks are timed in alternation (one JAX step, one
PyTorch step, ...) and the medians are compared: slow periods hit both sides alike.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from imn.bench import real_step_callables  # noqa: E402

# What the PyTorch twin is given; the JAX side is the trainer's own step (imn.bench), whose
# defaults are the same: AdamW lr 1e-3, weight decay 1e-4, lambda = 1e-4.
LEARNING_RATE = 1e-3
WEIGHT_DECAY = 1e-4
WEIGHT_PENALTY = 1e-4  # lambda in  loss = BCE + lambda * mean|W|


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--sampling-rate", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0, help="ECG duration")
    parser.add_argument("--num-classes", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per framework")
    parser.add_argument("--infer-steps", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    import torch

    from torch_imn import TorchIMN, count_params

    length = int(round(args.seconds * args.sampling_rate))
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((args.batch, length, 12), dtype=np.float32)
    y_np = (rng.random((args.batch, args.num_classes)) < 0.3).astype(np.float32)
    pos_weight = float((y_np == 0).sum() / max((y_np == 1).sum(), 1))

    # --- JAX: the trainer's own jitted steps (imn.train.steps via imn.bench) ------------
    jax_train, jax_infer, n_params = real_step_callables(
        "imn", x_np, y_np, sampling_rate=args.sampling_rate,
        class_weight=np.full(args.num_classes, pos_weight, np.float32), weight_l1=WEIGHT_PENALTY)

    # --- PyTorch ---------------------------------------------------------------------
    torch.manual_seed(0)
    torch_model = TorchIMN(args.num_classes)
    assert count_params(torch_model) == n_params, (count_params(torch_model), n_params)
    torch_opt = torch.optim.AdamW(
        torch_model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY
    )
    bce = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight))
    x_t, y_t = torch.from_numpy(x_np), torch.from_numpy(y_np)

    def torch_train() -> None:
        torch_model.train()
        torch_opt.zero_grad(set_to_none=True)
        logits, weights, _ = torch_model(x_t)
        loss = bce(logits, y_t) + WEIGHT_PENALTY * weights.abs().mean()
        loss.backward()
        torch_opt.step()

    def torch_infer() -> None:
        torch_model.eval()
        with torch.inference_mode():
            torch_model(x_t)

    def timed(fn) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    def race(jax_fn, torch_fn, steps: int) -> dict:
        compile_s = timed(jax_fn)  # first call compiles
        jax_fn()
        torch_fn()  # warm-up (allocator, oneDNN primitives)
        jax_times, torch_times = [], []
        for _ in range(steps):
            jax_times.append(timed(jax_fn))
            torch_times.append(timed(torch_fn))
        if not args.json:
            print(f"  jax  step ms: {[round(t * 1e3) for t in jax_times]}", file=sys.stderr)
            print(f"  torch step ms: {[round(t * 1e3) for t in torch_times]}", file=sys.stderr)
        jax_rate = args.batch / statistics.median(jax_times)
        torch_rate = args.batch / statistics.median(torch_times)
        return {
            "jax_samples_per_s": round(jax_rate, 1),
            "torch_samples_per_s": round(torch_rate, 1),
            "ratio_jax_over_torch": round(jax_rate / torch_rate, 2),
            "jax_first_call_s": round(compile_s, 2),
            "jax_step_ms": [round(t * 1e3, 1) for t in jax_times],
            "torch_step_ms": [round(t * 1e3, 1) for t in torch_times],
        }

    result = {
        "batch": args.batch,
        "sampling_rate": args.sampling_rate,
        "input_length": length,
        "num_classes": args.num_classes,
        "params": int(n_params),
        "train": race(jax_train, torch_train, args.steps),
        "inference": race(jax_infer, torch_infer, args.infer_steps),
        "jax": jax.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": str(jax.devices()[0]),
        "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for phase in ("train", "inference"):
            r = result[phase]
            print(
                f"{phase:9s}  JAX {r['jax_samples_per_s']:8.1f} samples/s   "
                f"PyTorch {r['torch_samples_per_s']:8.1f} samples/s   "
                f"ratio {r['ratio_jax_over_torch']:.2f}x   "
                f"(JAX first call {r['jax_first_call_s']} s)"
            )
        print(f"batch {args.batch}, L = {length}, K = {args.num_classes}, {n_params:,} params, "
              f"{result['cpus']} CPUs, torch threads {result['torch_threads']}")
    return result


if __name__ == "__main__":
    main()
