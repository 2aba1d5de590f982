"""Wall time of the synthetic ECG generator.

    python benchmarks/bench_synthetic.py [--repeats 1]

Times ``make_synthetic`` for 10,000 records at 100 Hz and 1,000 records at 500 Hz (the
default difficulty, evidence masks included) and prints seconds and records per second.
The generator is NumPy on the CPU; the best of ``--repeats`` runs is reported.
"""

from __future__ import annotations

import argparse
import time

from imn.data.synthetic import make_synthetic

CASES = ((10_000, 100), (1_000, 500))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    for n, rate in CASES:
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            data = make_synthetic(n, rate, seed=0)
            best = min(best, time.perf_counter() - start)
            del data
        print(f"make_synthetic({n:>6}, {rate} Hz): {best:6.2f} s  ({n / best:8.0f} records/s)")


if __name__ == "__main__":
    main()
