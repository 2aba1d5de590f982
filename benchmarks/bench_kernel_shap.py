"""Kernel SHAP over lead x segment groups: ours (baselines/shap.py, jitted JAX) vs
``shap.KernelExplainer`` on the same jitted model, groups and coalition budget.

    python benchmarks/bench_kernel_shap.py [--length 256] [--ecgs 2] [--budgets 512 1024]
                                           [--error-budgets 128 512] [--repeats 1] [--json]

Model: a small ECG-IMN (widths 4/8/8, random init, eval mode) at 100 Hz; ``--length 256`` is
a 2.56 s window (the PTB-XL benchmark's window length), ``--length 1000`` the full 10 s.

Reported:
  * ms per ECG for ours and for shap, and shap / ours, at each budget, 240 groups
    (12 leads x 20 segments), zero baseline; model evaluations per ECG (budget + 2);
  * the fraction of the physical limit: time of the same number of plain batched model
    evaluations at the best batch size, divided by our total time (1.0 = no overhead at all);
  * at G = 10 groups (5 lead blocks x 2 halves), the mean absolute error against the exact
    Shapley values (all 1022 coalitions), relative to the mean |exact value|, for ours and
    shap at equal budgets, averaged over the ECGs and a few seeds.

shap explains ``f(z) = model(mask(x, z))`` over the binary coalition vector z, with the
all-zeros coalition as background and z = 1 as the instance (l1_reg=False, so plain Kernel
SHAP); f evaluates the jitted model in batches of the same best batch size we use. On a
shared CPU timings are noisy: ours, shap and the plain evaluations are timed in turn, best of
``--repeats``.
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

import shap  # noqa: E402  (the library; ours is baselines.shap)

from baselines.shap import kernel_shap_groups, lead_segment_groups  # noqa: E402
from imn.bench.explain import best_batch_size, plain_evaluations_seconds  # noqa: E402
from imn.models.imn import ECGIMN  # noqa: E402

LEADS = 12
SEGMENTS = 20
TARGET = 0


def make_model(length: int):
    model = ECGIMN(1, widths=(4, 8, 8), rngs=nnx.Rngs(params=0, dropout=1))
    model.eval()
    graphdef, state = nnx.split(model)

    @jax.jit
    def logits(x):
        return nnx.merge(graphdef, state)(x)

    return logits


def make_ecgs(count: int, length: int) -> np.ndarray:
    """Smooth random 12-lead signals (random walk, per-lead z-scored), float32 (n, L, 12)."""
    walk = np.cumsum(np.random.default_rng(0).normal(size=(count, length, LEADS)), axis=1)
    walk -= walk.mean(axis=1, keepdims=True)
    return (walk / walk.std(axis=1, keepdims=True)).astype(np.float32)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    jax.block_until_ready(out)
    return out, time.perf_counter() - start


def make_shap_explainer_fn(logits, groups: np.ndarray, batch: int):
    """``explain(x (L, 12), budget, seed) -> (G,)`` with shap.KernelExplainer on f(z)."""
    group_ids = jnp.asarray(groups)
    num_groups = int(groups.max()) + 1

    @jax.jit
    def masked_target_logit(x, z):
        keep = jnp.take(z, group_ids, axis=1) > 0.5
        return logits(jnp.where(keep, x[None], 0.0))[:, TARGET]

    def explain(x: np.ndarray, budget: int, seed: int) -> np.ndarray:
        x = jnp.asarray(x)

        def f(z: np.ndarray) -> np.ndarray:
            # same batch size as ours; the last batch padded so that nothing recompiles
            n = len(z)
            padded = np.zeros((-(-n // batch) * batch, num_groups), np.float32)
            padded[:n] = z
            out = [
                masked_target_logit(x, jnp.asarray(padded[i:i + batch]))
                for i in range(0, len(padded), batch)
            ]
            return np.asarray(jnp.concatenate(out))[:n]

        explainer = shap.KernelExplainer(f, np.zeros((1, num_groups)))
        np.random.seed(seed)
        values = explainer.shap_values(
            np.ones((1, num_groups)), nsamples=budget, l1_reg=False, silent=True
        )
        return np.asarray(values)[0]

    return explain


def block_groups(length: int, lead_blocks: int, time_blocks: int) -> np.ndarray:
    lead_block = np.arange(LEADS) * lead_blocks // LEADS
    time_block = np.arange(length) * time_blocks // length
    return (lead_block[None, :] * time_blocks + time_block[:, None]).astype(np.int32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--ecgs", type=int, default=2)
    parser.add_argument("--budgets", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--error-budgets", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--error-seeds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1, help="timings: best of this many")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    logits = make_model(args.length)
    ecgs = make_ecgs(args.ecgs, args.length)
    batch, per_eval = best_batch_size(logits, args.length)
    report = {
        "device": jax.devices()[0].device_kind, "platform": platform.platform(),
        "cpu_count": os.cpu_count(), "length": args.length, "ecgs": args.ecgs,
        "best_batch": batch, "ms_per_plain_eval": per_eval * 1e3, "timing": [], "error": [],
    }

    # ---- speed at 240 groups ---------------------------------------------------------------
    groups = lead_segment_groups(args.length, SEGMENTS)
    shap_explain = make_shap_explainer_fn(logits, groups, batch)
    shap_explain(ecgs[0], 64, 0)  # compile f(z)'s batch and shap's single-row calls
    for budget in args.budgets:
        def ours():
            return kernel_shap_groups(
                logits, ecgs, TARGET, segments=SEGMENTS, n_samples=budget, chunk_size=batch
            )

        _, compile_and_run = timed(ours)
        evaluations = budget + 2
        ours_seconds = shap_seconds = limit_seconds = float("inf")
        for _ in range(args.repeats):  # in alternation, best of: slow spells hit all three
            ours_seconds = min(ours_seconds, timed(ours)[1])
            shap_seconds = min(shap_seconds, timed(
                lambda: [shap_explain(x, budget, i) for i, x in enumerate(ecgs)])[1])
            limit_seconds = min(limit_seconds, plain_evaluations_seconds(
                logits, args.length, args.ecgs * evaluations, batch))
        report["timing"].append({
            "groups": LEADS * SEGMENTS, "budget": budget, "model_evals_per_ecg": evaluations,
            "ours_ms_per_ecg": ours_seconds / args.ecgs * 1e3,
            "ours_first_call_s": compile_and_run,
            "shap_ms_per_ecg": shap_seconds / args.ecgs * 1e3,
            "shap_over_ours": shap_seconds / ours_seconds,
            "plain_evals_ms_per_ecg": limit_seconds / args.ecgs * 1e3,
            "fraction_of_physical_limit": limit_seconds / ours_seconds,
        })

    # ---- error against exact Shapley values at G = 10 --------------------------------------
    small_groups = block_groups(args.length, 5, 2)
    exact = np.asarray(kernel_shap_groups(
        logits, ecgs, TARGET, groups=small_groups, n_samples=2**10 - 2, chunk_size=batch
    ))
    scale = np.abs(exact).mean(axis=1)  # (B,)
    shap_small = make_shap_explainer_fn(logits, small_groups, batch)
    for budget in args.error_budgets:
        ours_err, shap_err = [], []
        for seed in range(args.error_seeds):
            ours = np.asarray(kernel_shap_groups(
                logits, ecgs, TARGET, groups=small_groups, n_samples=budget, seed=seed,
                chunk_size=batch,
            ))
            theirs = np.stack([shap_small(x, budget, 1000 * seed + i) for i, x in enumerate(ecgs)])
            ours_err.append(np.abs(ours - exact).mean(axis=1) / scale)
            shap_err.append(np.abs(theirs - exact).mean(axis=1) / scale)
        report["error"].append({
            "groups": 10, "budget": budget,
            "ours_relative_mae": float(np.mean(ours_err)),
            "shap_relative_mae": float(np.mean(shap_err)),
        })

    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{report['device']} ({report['cpu_count']} CPUs), small IMN, L={args.length} at "
          f"100 Hz, {args.ecgs} ECGs, best batch {batch} "
          f"({report['ms_per_plain_eval']:.2f} ms per plain evaluation)")
    for row in report["timing"]:
        print(f"G={row['groups']} budget={row['budget']:5d} "
              f"evals/ECG={row['model_evals_per_ecg']:5d}  "
              f"ours {row['ours_ms_per_ecg']:8.1f} ms/ECG  "
              f"shap {row['shap_ms_per_ecg']:8.1f} ms/ECG  "
              f"shap/ours {row['shap_over_ours']:.2f}x  "
              f"plain evals {row['plain_evals_ms_per_ecg']:8.1f} ms/ECG  "
              f"fraction of limit {row['fraction_of_physical_limit']:.2f}  "
              f"(first call {row['ours_first_call_s']:.1f} s)")
    for row in report["error"]:
        print(f"G=10 budget={row['budget']:4d}  relative MAE vs exact: "
              f"ours {row['ours_relative_mae']:.4f}  shap {row['shap_relative_mae']:.4f}")

if __name__ == "__main__":
    main()
