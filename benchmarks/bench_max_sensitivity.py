"""Max-sensitivity around integrated gradients on an ECG-IMN: the metric against its limit.

    python benchmarks/bench_max_sensitivity.py [--workdir RUN] [--ecgs 8] [--samples 3]
                                               [--ig-steps 12] [--rounds 2] [--json]

An untrained ``ECGIMN(1)`` (the paper's widths) in eval mode at 100 Hz and random ECGs, or,
with ``--workdir``, a trained run's model and its first ``--ecgs`` test ECGs and targets (as
``imn faithfulness`` opens them; e.g. ``results/synthetic/runs/synthetic/imn`` after
``imn reproduce --preset cpu --synthetic --out results/synthetic`` has trained it).
Max-sensitivity re-explains every ECG ``--samples`` times, so its limit is ``--samples``
top-level integrated-gradients passes over the same ECGs (the peer, timed in the same run).
The metric gets the explanation being scored as its reference, as ``imn faithfulness`` gives
it. Reported: seconds for one IG pass, for the metric, and limit / metric (the fraction of
the limit reached; 1.0 = no overhead beyond the explanations themselves). The minimum of
``--rounds`` warm calls is kept for each (the first, compiling call is not timed).
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import numpy as np

from imn.explain import attribute, explanation_fn
from imn.faithfulness import max_sensitivity
from imn.models import create_model


def _best_of(rounds: int, fn) -> float:
    fn()  # compile
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ecgs", type=int, default=8)
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--ig-steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--workdir", help="a trained run (default: an untrained IMN, random ECGs)")
    args = parser.parse_args()

    if args.workdir:
        from imn.explain.run import open_run

        run = open_run(args.workdir, "test", args.ecgs)
        model, x, target = run.model, run.x, run.targets
    else:
        model = create_model("imn", num_classes=1, sampling_rate=100, seed=0)
        x = np.asarray(jax.random.normal(jax.random.key(0), (args.ecgs, 1000, 12)), np.float32)
        target = np.zeros(args.ecgs, np.int32)
    options = {"steps": args.ig_steps}
    reference = np.asarray(attribute("integrated_gradients", model, x, target, **options))
    explain = explanation_fn("integrated_gradients", model, **options)

    ig = _best_of(args.rounds, lambda: np.asarray(
        attribute("integrated_gradients", model, x, target, **options)))
    metric = _best_of(args.rounds, lambda: np.asarray(max_sensitivity(
        explain, x, target, n_samples=args.samples, reference=reference)))
    result = {
        "device": jax.devices()[0].device_kind, "workdir": args.workdir, "ecgs": len(x), "samples": args.samples,
        "ig_steps": args.ig_steps, "ig_pass_s": round(ig, 2), "max_sensitivity_s": round(metric, 2),
        "fraction_of_limit": round(args.samples * ig / metric, 3),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{len(x)} ECGs of {args.workdir or 'random data, untrained IMN'} on {result['device']}: one IG pass ({args.ig_steps} steps) "
              f"{ig:.2f} s; max-sensitivity ({args.samples} re-explanations) {metric:.2f} s; "
              f"limit / metric {result['fraction_of_limit']:.2f}")


if __name__ == "__main__":
    main()
