"""Size and first render of the `imn view` page for many ECGs x methods, in headless Chromium.

    python benchmarks/bench_view.py [--ecgs 50] [--methods 8] [--rate 100] [--loads 5] [--json]

Builds a run folder as ``imn train`` + ``imn explain`` leave it (``config.json``,
``predictions_test.npz``, ``attributions_METHOD_test.npz`` per method,
``faithfulness_curves_test.npz``) for the first ``--ecgs`` test records of the synthetic
benchmark, with heavy-tailed signed maps for seven methods and a time-only, non-negative map
standing for 1-D Grad-CAM (the page's size does not depend on what the maps say: every value
is one mu-law byte), writes the page and loads it ``--loads`` times in headless Chromium.
Reported: file size, seconds to write it, and the page's first render (navigation start to
the first drawn ECG, ``document.body.dataset.firstRenderMs``) against the peer measured in
the same run: a page holding only the same plotly.js and one trivial plot (the library's
own floor). Medians over the loads, the two pages loaded in turn; each load is a fresh
browser, so nothing is cached.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

METHODS = ("imn", "gradcam", "saliency", "input_x_gradient", "integrated_gradients",
           "gradient_shap", "kernel_shap", "random")


def build_run(workdir: Path, n_ecgs: int, n_methods: int, rate: int) -> None:
    from imn.data.normalize import zscore_per_record
    from imn.train.config import DataConfig, TrainConfig
    from imn.train.data import load_dataset

    # Fold 10 holds about a tenth of the records.
    data = DataConfig(source="synthetic", task="synthetic", sampling_rate=rate, synthetic_n=12 * n_ecgs)
    config = TrainConfig(data=data)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text(config.to_json())
    dataset, _ = load_dataset(data, seed=config.seed)
    test = dataset.split("test")
    if len(test) < n_ecgs:
        raise SystemExit(f"only {len(test)} synthetic test records; lower --ecgs")
    rows = np.arange(n_ecgs)
    x = zscore_per_record(test.signals[rows])
    rng = np.random.default_rng(0)
    scores = rng.uniform(size=(len(test), test.num_classes)).astype(np.float32)
    np.savez_compressed(workdir / "predictions_test.npz", scores=scores, labels=test.labels,
                        ecg_ids=test.ecg_ids, classes=np.asarray(test.classes))
    targets = scores[rows].argmax(axis=1).astype(np.int32)
    curves = {}
    for method in METHODS[:n_methods]:
        if method == "gradcam":
            attribution = np.repeat(np.abs(rng.standard_normal((n_ecgs, x.shape[1], 1))), 12, axis=2)
        else:
            attribution = rng.standard_t(2, size=x.shape) * x
        np.savez_compressed(workdir / f"attributions_{method}_test.npz", attribution=attribution.astype(np.float32),
                            x=x, targets=targets, ecg_ids=test.ecg_ids[rows], classes=np.asarray(test.classes))
        curves[f"{method}_deletion"] = np.sort(rng.uniform(size=(n_ecgs, 21)))[:, ::-1]
        curves[f"{method}_insertion"] = np.sort(rng.uniform(size=(n_ecgs, 21)))
    np.savez_compressed(workdir / "faithfulness_curves_test.npz", steps=20, unit="patch", targets=targets,
                        ecg_ids=test.ecg_ids[rows], **curves)


def peer_page(out: Path) -> Path:
    from plotly.offline import get_plotlyjs

    out.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><script>" + get_plotlyjs() + "</script></head>"
        "<body><div id='p'></div><script>Plotly.newPlot('p', [{y: [1, 2, 3]}]).then(() => {"
        "document.body.dataset.firstRenderMs = performance.now().toFixed(0);"
        "document.body.dataset.ready = '1'; });</script></body></html>")
    return out


def first_render_ms(page_path: Path, loads: int) -> list[int]:
    from imn.view.chromium import HeadlessPage

    times = []
    for _ in range(loads):
        with HeadlessPage(width=1400, height=900) as page:
            page.open(page_path, "document.body.dataset.ready === '1'")
            if page.errors:
                raise SystemExit(f"{page_path}: {page.errors}")
            times.append(int(page.evaluate("document.body.dataset.firstRenderMs")))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ecgs", type=int, default=50)
    parser.add_argument("--methods", type=int, default=8, choices=range(1, len(METHODS) + 1))
    parser.add_argument("--rate", type=int, default=100, choices=(100, 500))
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from imn.view import write_report

    with tempfile.TemporaryDirectory(prefix="bench-view-") as tmp:
        workdir = Path(tmp) / "run"
        build_run(workdir, args.ecgs, args.methods, args.rate)
        start = time.perf_counter()
        page = write_report(workdir, Path(tmp) / "report.html")
        write_s = time.perf_counter() - start
        peer_path = peer_page(Path(tmp) / "peer.html")
        viewer, peer = [], []
        for _ in range(args.loads):  # interleaved, so both see the same changes of machine load
            viewer += first_render_ms(page, 1)
            peer += first_render_ms(peer_path, 1)
        result = {
            "ecgs": args.ecgs, "methods": args.methods, "rate": args.rate,
            "size_mb": round(page.stat().st_size / 1e6, 2), "write_s": round(write_s, 2),
            "first_render_ms_median": statistics.median(viewer), "first_render_ms": viewer,
            "peer_plotly_only_ms_median": statistics.median(peer), "peer_plotly_only_ms": peer,
            "load_average_1min": round(os.getloadavg()[0], 1),
        }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.ecgs} ECGs x {args.methods} methods at {args.rate} Hz: {result['size_mb']} MB, "
              f"written in {result['write_s']} s; first render median {result['first_render_ms_median']} ms "
              f"{viewer} against plotly.js alone {result['peer_plotly_only_ms_median']} ms {peer} "
              f"(load average {result['load_average_1min']})")


if __name__ == "__main__":
    main()
