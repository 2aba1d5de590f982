"""Time PTB-XL loading: cold (wfdb read + cache build) and warm (memory-mapped cache).

    python benchmarks/bench_ptbxl_load.py [--root ../shared/data/ptb-xl] [--rates 100 500]

For each rate, in a fresh temporary cache folder:
  cold          load_ptbxl(root, "all") that reads every record with wfdb and writes the cache
  warm          the same call again: metadata + memory-mapped int16 -> float32 conversion
  warm + touch  the warm load plus a full pass over the returned signals (their sum). The
                int16 memory map itself is lazy, but load_ptbxl converts the selected rows to
                float32, which reads every page, so this differs from "warm" only by the sum
  uncached      load_ptbxl(..., use_cache=False), for comparison with the cold build

and a linear extrapolation to the full database (21,799 records). Linear is honest for the
cold read (per-record wfdb cost dominates) and roughly so for the warm read; the fixed cost of
parsing ptbxl_database.csv grows with the number of rows too. The warm numbers are with the
cache in the OS page cache (just written); a first read after a reboot also pays disk reads.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from imn.data.ptbxl import cache_folder, load_ptbxl

FULL_PTBXL_RECORDS = 21_799


def _timed(fn, repeats: int = 1):
    """Best-of-``repeats`` wall time (the machine may be shared) and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def bench_rate(root: Path, rate: int, repeats: int, workers: int | None) -> list[tuple]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="imn-bench-cache-") as cache_dir:
        cold, data = _timed(lambda: load_ptbxl(root, "all", rate, cache_dir=cache_dir,
                                               workers=workers))
        n = len(data)
        size = sum(f.stat().st_size for f in cache_folder(root, rate, cache_dir).iterdir())
        del data
        warm, _ = _timed(lambda: load_ptbxl(root, "all", rate, cache_dir=cache_dir), repeats)
        touched, total = _timed(
            lambda: float(load_ptbxl(root, "all", rate, cache_dir=cache_dir)
                          .signals.sum(dtype=np.float64)), repeats)
        uncached, _ = _timed(lambda: load_ptbxl(root, "all", rate, use_cache=False,
                                                workers=workers))
    for name, seconds in (("cold (build cache)", cold), ("warm (mmap)", warm),
                          ("warm + touch all", touched), ("uncached", uncached)):
        rows.append((rate, name, n, seconds, n / seconds,
                     seconds * FULL_PTBXL_RECORDS / n))
    rows.append((rate, f"cache size {size / 2**20:.1f} MiB", n, float("nan"), float("nan"),
                 float("nan")))
    print(f"  ({rate} Hz: checksum of all signals {total:.6f} mV)", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> None:
    default_root = Path(__file__).resolve().parents[2] / "shared" / "data" / "ptb-xl"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=default_root)
    parser.add_argument("--rates", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--repeats", type=int, default=3, help="best of N for warm loads")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes for the cold read (default: 1)")
    args = parser.parse_args(argv)
    if not (args.root / "ptbxl_database.csv").is_file():
        parser.error(f"{args.root} is not a PTB-XL folder (no ptbxl_database.csv)")

    print(f"PTB-XL load benchmark: root {args.root}, {platform.processor() or platform.machine()},"
          f" {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f},"
          f" python {platform.python_version()}")
    rows = []
    for rate in args.rates:
        rows += bench_rate(args.root, rate, args.repeats, args.workers)
    print(f"{'rate':>5}  {'what':<22} {'records':>8} {'seconds':>9} {'records/s':>10} "
          f"{'full 21,799 (s)':>16}")
    for rate, name, n, seconds, per_second, full in rows:
        if np.isnan(seconds):
            print(f"{rate:>5}  {name}")
            continue
        print(f"{rate:>5}  {name:<22} {n:>8d} {seconds:>9.3f} {per_second:>10.0f} {full:>16.1f}")
    print("Extrapolation is linear in the number of records. Warm loads materialise float32 "
          "signals (100 Hz: 1.0 GiB, 500 Hz: 5.2 GiB for the full database).")


if __name__ == "__main__":
    main()
