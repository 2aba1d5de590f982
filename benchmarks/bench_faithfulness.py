"""Deletion + insertion curves on an ECG-IMN: vectorised JAX vs a per-ECG, per-step loop.

    python benchmarks/bench_faithfulness.py [--steps 50] [--ecgs-100 2] [--ecgs-500 1]
                                            [--widths 8 16 32] [--json]

For each sampling rate: an untrained ``ECGIMN(1)`` in eval mode, random ECGs, and the IMN's
own explanation ``W(x) * x``. Three timings of the same work, deletion (zero baseline) plus
insertion (blurred baseline), ``steps + 1`` points each, so ``2 (steps + 1)`` model
evaluations per ECG:

* ours: :func:`deletion_curve` + :func:`insertion_curve` (ranks once per ECG, builds the
  perturbed inputs by rank thresholds, evaluates them in chunks under ``lax.map``);
* loop: what Quantus-style evaluators do: NumPy ranks per ECG, then for every ECG and every
  step build the perturbed input in NumPy and call the same jitted model on a batch of one;
* limit: the same number of plain batched model evaluations at the best batch size (the
  physical limit of any implementation that re-runs the model on every perturbed input).

Curves from ours and the loop must agree (asserted). Reported: ms per ECG for ours and the
loop and their ratio, model evaluations per ECG, and limit / ours (the fraction of the
physical limit reached; 1.0 = no overhead beyond the model itself).

The default ``--widths 8 16 32`` (a quarter of the paper's FLOPs) keeps the run near a
minute of CPU time on 2 cores; pass ``--widths 16 32 64`` for the paper's model. Timings on
a shared machine are noisy: ours and the limit are interleaved over ``--rounds`` and the
minimum of each is kept.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imn.faithfulness import deletion_curve, insertion_curve, resolve_baseline  # noqa: E402
from imn.faithfulness.perturbation import default_chunk_size, tie_break_order  # noqa: E402
from imn.models.imn import ECGIMN  # noqa: E402

LEADS = 12


def make_model(widths):
    model = ECGIMN(1, widths=tuple(widths), rngs=nnx.Rngs(params=0, dropout=1))
    model.eval()
    graphdef, state = nnx.split(model)

    def predict(x):
        return jax.nn.sigmoid(nnx.merge(graphdef, state)(x))

    return model, predict


def ours(predict, x, attribution, steps, chunk_size):
    deletion = deletion_curve(predict, x, attribution, 0, steps=steps, baseline="zero",
                              chunk_size=chunk_size)
    insertion = insertion_curve(predict, x, attribution, 0, steps=steps, baseline="blur",
                                chunk_size=chunk_size)
    return np.asarray(jax.block_until_ready(deletion)), np.asarray(insertion)


def loop(jit_predict, x, attribution, steps, blurred):
    """One jitted model call per ECG per step, perturbed inputs built in NumPy."""
    batch = x.shape[0]
    count = x.shape[1] * LEADS
    deletion = np.zeros((batch, steps + 1), np.float32)
    insertion = np.zeros((batch, steps + 1), np.float32)
    shuffle = np.asarray(tie_break_order(batch, count))  # the order ties are taken in
    for b in range(batch):
        scores = attribution[b].reshape(-1)
        ranking = shuffle[b][np.argsort(-scores[shuffle[b]], kind="stable")]
        for s in range(steps + 1):
            k = int(np.floor(s / steps * count + 0.5))
            top = np.zeros(count, bool)
            top[ranking[:k]] = True
            top = top.reshape(-1, LEADS)
            deleted = np.where(top, 0.0, x[b]).astype(np.float32)
            inserted = np.where(top, x[b], blurred[b]).astype(np.float32)
            deletion[b, s] = np.asarray(jit_predict(deleted[None]))[0, 0]
            insertion[b, s] = np.asarray(jit_predict(inserted[None]))[0, 0]
    return deletion, insertion


class Clock:
    """Wall and process-CPU seconds of a block. On a shared CPU host the wall clock swings
    by 3x with other jobs while the CPU seconds of the same work stay within a few %, so
    CPU seconds are the primary measure there; on an accelerator only wall time means
    anything (the host idles while the device works)."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def plain_eval_seconds(jit_predict, length, batch_sizes, evals, rounds=2, measure="wall"):
    """Best ``(wall, cpu)`` seconds per model evaluation over batch sizes: about ``evals``
    plain batched forward passes per size, sizes interleaved over ``rounds`` (minimum kept,
    ranked by ``measure``). Returns ``((wall, cpu), best_size)``."""
    rng = np.random.default_rng(1)
    inputs = {b: jnp.asarray(rng.normal(size=(b, length, LEADS)), jnp.float32) for b in batch_sizes}
    for b in batch_sizes:
        jax.block_until_ready(jit_predict(inputs[b]))  # compile
    best = {b: {"wall": np.inf, "cpu": np.inf} for b in batch_sizes}
    for _ in range(rounds):
        for b in batch_sizes:
            calls = max(1, round(evals / b))
            with Clock() as clock:
                for _ in range(calls):
                    jax.block_until_ready(jit_predict(inputs[b]))
            for key in ("wall", "cpu"):
                best[b][key] = min(best[b][key], getattr(clock, key) / (calls * b))
    size = min(best, key=lambda b: best[b][measure])
    return (best[size]["wall"], best[size]["cpu"]), size


def bench(rate, n_ecgs, steps, widths, chunk_size, batch_sizes, rounds):
    length = 10 * rate
    measure = "cpu" if jax.default_backend() == "cpu" else "wall"
    model, predict = make_model(widths)
    jit_predict = jax.jit(predict)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(n_ecgs, length, LEADS)), jnp.float32)
    weights, _ = model.generate(x)
    attribution = weights[:, 0] * x
    blurred = np.asarray(resolve_baseline(x, "blur"))
    x_np, attribution_np = np.asarray(x), np.asarray(attribution)
    evals_per_ecg = 2 * (steps + 1)
    total_evals = evals_per_ecg * n_ecgs

    with Clock() as first_call:
        ours(predict, x, attribution, steps, chunk_size)
    jax.block_until_ready(jit_predict(x[:1]))

    with Clock() as loop_clock:
        loop_curves = loop(jit_predict, x_np, attribution_np, steps, blurred)

    # The best batch size for plain evaluation, from a short probe of every candidate.
    _, best_batch = plain_eval_seconds(
        jit_predict, length, batch_sizes, max(4, 16_000 // length), measure=measure
    )
    ours_t = {"wall": np.inf, "cpu": np.inf}
    limit_t = {"wall": np.inf, "cpu": np.inf}
    for _ in range(rounds):  # interleaved: ours, the limit, ours again, ...; minimum kept
        with Clock() as clock:
            ours_curves = ours(predict, x, attribution, steps, chunk_size)
        (wall, cpu), _ = plain_eval_seconds(jit_predict, length, (best_batch,), total_evals, 1)
        for key, value in (("wall", clock.wall), ("cpu", clock.cpu)):
            ours_t[key] = min(ours_t[key], value)
        limit_t["wall"] = min(limit_t["wall"], wall * total_evals)
        limit_t["cpu"] = min(limit_t["cpu"], cpu * total_evals)

    max_diff = max(float(np.abs(a - b).max()) for a, b in zip(ours_curves, loop_curves))
    for a, b in zip(ours_curves, loop_curves):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)

    def per_ecg(seconds):
        return round(1e3 * seconds / n_ecgs, 1)

    return {
        "sampling_rate": rate,
        "length": length,
        "ecgs": n_ecgs,
        "steps": steps,
        "chunk_size": chunk_size or default_chunk_size(length),
        "model_evals_per_ecg": evals_per_ecg,
        "primary_measure": measure,
        "ours_ms_per_ecg": {k: per_ecg(v) for k, v in ours_t.items()},
        "loop_ms_per_ecg": {"wall": per_ecg(loop_clock.wall), "cpu": per_ecg(loop_clock.cpu)},
        "limit_ms_per_ecg": {k: per_ecg(v) for k, v in limit_t.items()},
        "limit_best_batch": best_batch,
        "loop_over_ours": getattr(loop_clock, measure) / ours_t[measure],
        "fraction_of_limit": limit_t[measure] / ours_t[measure],
        "max_abs_curve_diff": max_diff,
        "ours_first_call_s": round(first_call.wall, 1),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--ecgs-100", type=int, default=2)
    parser.add_argument("--ecgs-500", type=int, default=1, help="0 skips 500 Hz")
    parser.add_argument("--widths", type=int, nargs=3, default=(8, 16, 32))
    parser.add_argument("--chunk-size", type=int, default=None,
                        help="rows per model call (default: the library's default)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="timed rounds, minimum kept (default 1 on CPU, where CPU seconds "
                        "are stable, 3 on an accelerator)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = 1 if jax.default_backend() == "cpu" else 3

    runs = [(100, args.ecgs_100, (1, 4, 16, 64))]
    if args.ecgs_500:
        runs.append((500, args.ecgs_500, (1, 4, 13)))
    results = [
        bench(rate, n, args.steps, args.widths, args.chunk_size, sizes, args.rounds)
        for rate, n, sizes in runs
    ]
    meta = {
        "device": str(jax.devices()[0]),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "widths": list(args.widths),
    }
    if args.json:
        print(json.dumps({"meta": meta, "results": results}, indent=2))
        return
    print(f"device {meta['device']}, IMN widths {meta['widths']}")
    for r in results:
        m = r["primary_measure"]
        print(
            f"{r['sampling_rate']} Hz x {r['ecgs']} ECG, "
            f"{r['model_evals_per_ecg']} model evals/ECG, "
            f"chunk {r['chunk_size']} ({m} time): ours {r['ours_ms_per_ecg'][m]:.0f} ms/ECG, "
            f"loop {r['loop_ms_per_ecg'][m]:.0f} ms/ECG (loop/ours {r['loop_over_ours']:.2f}x), "
            f"plain-eval limit {r['limit_ms_per_ecg'][m]:.0f} ms/ECG at batch "
            f"{r['limit_best_batch']} -> {100 * r['fraction_of_limit']:.0f} % of the limit; "
            f"wall ms/ECG ours/loop/limit {r['ours_ms_per_ecg']['wall']:.0f}/"
            f"{r['loop_ms_per_ecg']['wall']:.0f}/{r['limit_ms_per_ecg']['wall']:.0f}; "
            f"max |curve diff| {r['max_abs_curve_diff']:.1e}; first call "
            f"{r['ours_first_call_s']:.1f} s"
        )


if __name__ == "__main__":
    main()
