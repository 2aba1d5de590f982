"""Hand-made-feature baselines on the synthetic ECGs: how hard is each difficulty level?

    python scripts/synthetic_baseline.py --n 5000 --rate 100 --seed 0          # fold 9
    python scripts/synthetic_baseline.py --n 5000 --rate 100 --seed 0 --test   # fold 10
    python scripts/synthetic_baseline.py --level easy --test --model hgb

Generates fresh data with ``make_synthetic`` at ``--level`` (``easy``, ``default``, ``hard``;
single knobs on top with e.g. ``--knob effect_scale=0.5``), extracts hand-crafted features per record and trains
one L2 logistic regression per class (scikit-learn) on folds 1-8. The regularisation
strength is chosen on fold 9; the report is fold 9 (validation) and, with ``--test``, the
held-out fold 10. Tune the generator on fold 9 only. ``--model hgb`` fits gradient-boosted
trees (``HistGradientBoostingClassifier``, fixed settings) on the same features instead: a
stronger, non-linear reference for how far above the linear baseline a model can get.

Features (about 500 per record), all from a crude R-peak detector, not from the generator:

* rhythm: mean R-R, its coefficient of variation, RMSSD / mean, the fraction of successive
  differences above 50 ms, the range of R-R / mean, the number of beats;
* the median beat of each lead, from -0.3 s to +0.5 s around the R peaks, baseline-corrected
  on the PR segment and averaged over 20 ms bins (12 leads x 40 bins): ST level, T polarity,
  QRS width and P waves all show up here;
* beat-to-beat variability of the P-wave window (-0.25 s to -0.08 s), averaged over leads;
* the share of each lead's power in the 4-9 Hz band (f-waves).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.signal import find_peaks
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

from imn.data.synthetic import LEVELS, make_synthetic

BEFORE, AFTER, BIN = 0.3, 0.5, 0.02  # median-beat window (s) and bin width (s)


def r_peaks(record: np.ndarray, rate: int) -> np.ndarray:
    """Sample indices of R peaks: maxima of the summed absolute slope over all leads."""
    slope = np.abs(np.diff(record, axis=0)).sum(axis=1)
    width = max(1, int(round(0.03 * rate)))
    energy = np.convolve(slope, np.ones(width) / width, mode="same")
    peaks, _ = find_peaks(energy, distance=int(0.25 * rate),
                          height=0.35 * np.percentile(energy, 99))
    if len(peaks) < 2:
        return peaks
    # Move each detection to the largest absolute deflection nearby (the R or S wave).
    half = max(1, int(0.04 * rate))
    magnitude = np.abs(record - np.median(record, axis=0)).sum(axis=1)
    return np.array([max(0, p - half) + int(np.argmax(magnitude[max(0, p - half):p + half + 1]))
                     for p in peaks])


def features(record: np.ndarray, rate: int) -> np.ndarray:
    """Hand-crafted features of one record ``(L, 12)``."""
    length = len(record)
    peaks = r_peaks(record, rate)
    before, after = int(BEFORE * rate), int(AFTER * rate)
    usable = peaks[(peaks >= before) & (peaks + after <= length)]
    rr = np.diff(peaks) / rate
    if len(rr) >= 2:
        mean_rr = rr.mean()
        rhythm = [mean_rr, rr.std() / mean_rr, np.sqrt(np.mean(np.diff(rr) ** 2)) / mean_rr,
                  np.mean(np.abs(np.diff(rr)) > 0.05), np.ptp(rr) / mean_rr, len(peaks)]
    else:
        rhythm = [1.0, 0.0, 0.0, 0.0, 0.0, len(peaks)]

    bins = int(round((BEFORE + AFTER) / BIN))
    if len(usable):
        beats = np.stack([record[p - before:p + after] for p in usable])  # (beats, W, 12)
        median = np.median(beats, axis=0)
        pr = slice(before - int(0.10 * rate), before - int(0.04 * rate))
        median = median - median[pr].mean(axis=0)
        per_bin = len(median) // bins
        binned = median[:per_bin * bins].reshape(bins, per_bin, 12).mean(axis=1)
        p_window = slice(before - int(0.25 * rate), before - int(0.08 * rate))
        p_var = beats[:, p_window].std(axis=0).mean()
    else:
        binned, p_var = np.zeros((bins, 12)), 0.0

    spectrum = np.abs(np.fft.rfft(record - record.mean(axis=0), axis=0)) ** 2
    freq = np.fft.rfftfreq(length, 1 / rate)
    band = spectrum[(freq >= 4) & (freq <= 9)].sum(axis=0)
    total = spectrum[freq >= 0.7].sum(axis=0) + 1e-12
    return np.concatenate([rhythm, binned.ravel(), [p_var], band / total]).astype(np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test", action="store_true", help="also report fold 10")
    parser.add_argument("--model", choices=("logreg", "hgb"), default="logreg")
    parser.add_argument("--level", default="default", choices=tuple(LEVELS),
                        help="difficulty level of make_synthetic")
    parser.add_argument("--knob", action="append", default=[],
                        help="difficulty override NAME=VALUE on top of the level (repeatable)")
    args = parser.parse_args()
    knobs = {}
    for item in args.knob:
        name, value = item.split("=")
        knobs[name] = float(value)

    start = time.perf_counter()
    data = make_synthetic(args.n, args.rate, args.seed, difficulty=args.level, **knobs)
    generated = time.perf_counter() - start
    x = np.stack([features(r, args.rate) for r in data.signals])
    print(f"level {args.level}{''.join(f', {k}={v}' for k, v in knobs.items())}: "
          f"{args.n} records at {args.rate} Hz generated in {generated:.1f} s; "
          f"{x.shape[1]} features in {time.perf_counter() - start - generated:.1f} s")

    train, valid, test = (np.isin(data.folds, f) for f in (range(1, 9), [9], [10]))
    scaler = StandardScaler().fit(x[train])
    x = scaler.transform(x)

    def fit(k: int, c: float):
        if args.model == "hgb":
            model = HistGradientBoostingClassifier(max_iter=200, early_stopping=False,
                                                   random_state=0)
        else:
            model = LogisticRegression(C=c, max_iter=2000)
        return model.fit(x[train], data.labels[train, k])

    grid = (0.003, 0.01, 0.03, 0.1) if args.model == "logreg" else ("-",)
    rows = []
    for k, name in enumerate(data.classes):
        y = data.labels[:, k]
        scores = {c: roc_auc_score(y[valid], fit(k, c).decision_function(x[valid]))
                  for c in grid}
        best = max(scores, key=scores.get)
        row = {"class": name, "C": best, "valid": scores[best]}
        if args.test:
            row["test"] = roc_auc_score(y[test], fit(k, best).decision_function(x[test]))
        rows.append(row)

    print(f"{'class':<6} {'C':>6} {'fold 9':>8}" + (f" {'fold 10':>8}" if args.test else ""))
    for row in rows:
        line = f"{row['class']:<6} {row['C']:>6} {row['valid']:>8.3f}"
        print(line + (f" {row['test']:>8.3f}" if args.test else ""))
    macro_valid = np.mean([r["valid"] for r in rows])
    line = f"{'macro':<6} {'':>6} {macro_valid:>8.3f}"
    if args.test:
        line += f" {np.mean([r['test'] for r in rows]):>8.3f}"
    print(line)


if __name__ == "__main__":
    main()
