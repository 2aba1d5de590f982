"""Clinical feature extraction on the PTB-XL slice: ours vs NeuroKit2 per-lead delineation.

    python benchmarks/bench_features.py [--root ../shared/data/ptb-xl] [--rate 500]
                                        [--peer-records 3] [--workers 1]

* ours: :func:`imn.features.extract_features` on every record of the slice (cache off):
  band-pass, one NeuroKit2 peaks + DWT delineation per record on the combined (first
  principal component) lead, then all per-lead measurements vectorised over beats, leads
  and records.
* peer (naive): what a per-lead pipeline does: for each of the 12 leads, NeuroKit2's
  ``ecg_clean`` + ``ecg_peaks`` + ``ecg_delineate(method="dwt")``; timed on
  ``--peer-records`` records of the same slice in the same run and extrapolated to the slice.
  The peer does only the delineation; its measurements would cost extra.

Timings on a shared machine are inflated by other processes (the load average is printed);
the CPU time of this process (with ``--workers 1``) is the contention-free figure.
Reported: seconds for the slice, ms per record, the peer's ms per record and the ratio,
the number of records whose delineation failed, and the CPU.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imn.data.ptbxl import load_ptbxl  # noqa: E402
from imn.features import extract_features  # noqa: E402
from imn.provenance import cpu_model  # noqa: E402


def neurokit_per_lead(record: np.ndarray, rate: int) -> None:
    import neurokit2 as nk

    for lead in range(record.shape[1]):
        cleaned = nk.ecg_clean(record[:, lead], sampling_rate=rate)
        _, info = nk.ecg_peaks(cleaned, sampling_rate=rate)
        try:
            nk.ecg_delineate(cleaned, info["ECG_R_Peaks"], sampling_rate=rate, method="dwt")
        except Exception:  # a lead NeuroKit2 cannot delineate still cost its time
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_root = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ptb-xl"
    parser.add_argument("--root", default=str(default_root))
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--peer-records", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1,
                        help="processes for our delineation pass (the peer always uses one)")
    args = parser.parse_args()

    dataset = load_ptbxl(args.root, "all", args.rate)
    n = len(dataset)
    print(f"clinical features benchmark: {n} PTB-XL records at {args.rate} Hz; CPU {cpu_model()}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, "
          f"python {platform.python_version()}")
    import neurokit2  # noqa: F401  (import time is not part of either timing)

    started, cpu_started = time.perf_counter(), time.process_time()
    table = extract_features(dataset.signals, args.rate, use_cache=False, progress=True,
                             workers=args.workers)
    ours, ours_cpu = time.perf_counter() - started, time.process_time() - cpu_started

    warnings.simplefilter("ignore")
    peer_rows = np.linspace(0, n - 1, args.peer_records).astype(int)
    started, cpu_started = time.perf_counter(), time.process_time()
    for row in peer_rows:
        neurokit_per_lead(dataset.signals[row].astype(np.float64), args.rate)
    peer_per_record = (time.perf_counter() - started) / len(peer_rows)
    peer_cpu_per_record = (time.process_time() - cpu_started) / len(peer_rows)

    cpu_note = (f", this process's CPU time {ours_cpu:.1f} s ({1000 * ours_cpu / n:.1f} ms/record)"
                if args.workers == 1 else f", {args.workers} worker processes")
    print(f"ours: {ours:.1f} s wall for {n} records ({1000 * ours / n:.1f} ms/record){cpu_note}, "
          f"{table.values.shape[1]} features, delineation failed for {table.n_failed} records")
    print(f"NeuroKit2 per lead (clean + peaks + delineate x 12), {len(peer_rows)} records: "
          f"{1000 * peer_per_record:.0f} ms/record wall ({1000 * peer_cpu_per_record:.0f} ms CPU), "
          f"{peer_per_record * n:.0f} s extrapolated to {n} records")
    print(f"ratio peer / ours (wall): {peer_per_record * n / ours:.1f}x")


if __name__ == "__main__":
    main()
