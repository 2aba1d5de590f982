"""Calibration of predicted probabilities: ECE, Brier score, temperature scaling.

Plain NumPy in float64 on the host, like :mod:`imn.train.metrics`.

Conventions
-----------
* ``labels`` are 0/1 ``(N, K)`` (or ``(N,)``); every class is a binary problem, as in the
  metrics module (for a 2-class softmax head the class-1 column).
* ``logits`` are the *binary* logits ``z`` with ``p = sigmoid(z)`` per column: a sigmoid
  head's logits as they are, for a 2-logit softmax head ``z = l_1 - l_0`` (then
  ``sigmoid(z) = softmax(l)_1``; :func:`binary_logits`).
* Temperature scaling (Guo et al. 2017) divides every logit by one scalar ``T > 0`` fitted
  by minimising the unweighted binary cross-entropy on the **validation** split only. A
  positive temperature is a monotone map of each class's scores, so it never changes a
  ranking metric (AUROC, AUPRC); it changes calibration (ECE, Brier) only.
* ECE uses **equal-mass** bins: each class's records sorted by probability and split into
  ``n_bins`` groups of (nearly) equal size; ECE = sum over bins of ``n_b / N * |mean p -
  mean y|``. Reported per class and as the macro mean.
* ECE is biased upwards on few records: labels are Bernoulli draws, so a bin's observed rate
  scatters around its mean probability even for a perfectly calibrated model (Roelofs et al.,
  AISTATS 2022, "Mitigating bias in calibration error estimation"). :func:`ece_floor` measures
  that bias for the probabilities and record count at hand (labels drawn from the model's own
  probabilities), so an ECE can be read against what perfect calibration would show. With 52
  records and 10 bins it is about 0.1 for unsaturated probabilities.
* A class-weighted loss moves the logits it is minimised by: BCE with positive terms
  weighted by ``w`` has its optimum at ``logit(q) + log w`` for a true probability ``q``
  (class weights ``(w0, w1)`` of a 2-logit cross-entropy: ``+ log(w1 / w0)``).
  :func:`prior_offset` gives that shift; subtracting it is the closed-form prior correction
  (no fitting), which a temperature cannot make: dividing by ``T`` rescales, it never shifts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

DEFAULT_BINS = 10


def _as_2d(labels: Any, values: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels, np.float64)
    values = np.asarray(values, np.float64)
    if labels.ndim == 1:
        labels = labels[:, None]
    if values.ndim == 1:
        values = values[:, None]
    if labels.shape != values.shape or labels.ndim != 2 or len(labels) == 0:
        raise ValueError(f"expected labels and {name} of the same shape (N, K), N > 0; got "
                         f"{labels.shape} and {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} contain {int((~np.isfinite(values)).sum())} NaN/inf value(s)")
    if np.any((labels != 0) & (labels != 1)):
        raise ValueError("labels must be 0/1")
    return labels, values


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Numerically safe logistic function in float64."""
    z = np.asarray(z, np.float64)
    return np.exp(-np.logaddexp(0.0, -z))


def binary_logits(logits: np.ndarray, head: str) -> np.ndarray:
    """Per-class binary logits ``(N, K')`` from a model's logits: as they are for a sigmoid
    head, ``l_1 - l_0`` as ``(N, 1)`` for a 2-logit softmax head."""
    logits = np.asarray(logits, np.float64)
    if head == "softmax":
        if logits.ndim != 2 or logits.shape[1] != 2:
            raise ValueError(f"a softmax head's binary logit needs (N, 2) logits, got {logits.shape}")
        return logits[:, 1:2] - logits[:, 0:1]
    if head != "sigmoid":
        raise ValueError(f"head must be 'sigmoid' or 'softmax', got {head!r}")
    return logits


def expected_calibration_error(labels: Any, probs: Any, n_bins: int = DEFAULT_BINS) -> np.ndarray:
    """Equal-mass-bin ECE per class: ``(K,)``.

    With ``N < n_bins`` records a class gets ``N`` bins of one record.
    """
    labels, probs = _as_2d(labels, probs, "probs")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    n = len(labels)
    ece = np.zeros(labels.shape[1])
    for k in range(labels.shape[1]):
        for group in _equal_mass_bins(probs[:, k], n_bins):
            ece[k] += len(group) / n * abs(probs[group, k].mean() - labels[group, k].mean())
    return ece


def _equal_mass_bins(probs: np.ndarray, n_bins: int) -> list[np.ndarray]:
    """Indices of ``probs (N,)`` sorted ascending and cut into ``min(n_bins, N)`` groups
    whose sizes differ by at most one (the larger ones first, as ``np.array_split``)."""
    order = np.argsort(probs, kind="stable")
    return np.array_split(order, min(n_bins, len(probs)))


def ece_floor(probs: Any, n_bins: int = DEFAULT_BINS, *, draws: int = 1000,
              seed: int = 0) -> dict[str, np.ndarray]:
    """The ECE a perfectly calibrated model with these probabilities would show on this many
    records: labels drawn ``y ~ Bernoulli(p)`` ``draws`` times, each draw's equal-mass ECE.

    ``probs`` is ``(N, K)`` (or ``(N,)``). Returns ``{'mean', 'p95'}``, each ``(K,)``: the
    expected ECE under perfect calibration and its 95th percentile. An observed ECE near
    ``mean`` cannot be told from perfect calibration at this ``N``; saturated probabilities
    (every p near 0 or 1) have a floor near 0, so their ECE is all miscalibration.
    """
    probs = np.asarray(probs, np.float64)
    _, probs = _as_2d(np.zeros(probs.shape), probs, "probs")
    if n_bins < 1 or draws < 1:
        raise ValueError(f"n_bins and draws must be >= 1, got {n_bins} and {draws}")
    if np.any((probs < 0) | (probs > 1)):
        raise ValueError("probs must lie in [0, 1]")
    rng = np.random.default_rng(seed)
    n, k = probs.shape
    mean, p95 = np.zeros(k), np.zeros(k)
    for c in range(k):
        groups = _equal_mass_bins(probs[:, c], n_bins)
        labels = rng.random((draws, n)) < probs[:, c]  # (draws, N)
        per_draw = np.zeros(draws)
        for group in groups:
            gap = labels[:, group].mean(axis=1) - probs[group, c].mean()
            per_draw += len(group) / n * np.abs(gap)
        mean[c], p95[c] = per_draw.mean(), np.percentile(per_draw, 95)
    return {"mean": mean, "p95": p95}


def prior_offset(class_weight: Any, head: str) -> np.ndarray:
    """The shift ``(K,)`` a class-weighted loss adds to the binary logits at its optimum.

    Sigmoid head, BCE with positive weights ``w (K,)``: ``log w``. Softmax head, 2-logit
    cross-entropy with class weights ``(w0, w1)``: ``log(w1 / w0)`` as ``(1,)`` (for the
    binary logit ``l_1 - l_0`` of :func:`binary_logits`). Subtract it from the logits to undo
    the weighting's prior shift. A weight of 0 (a class positive in every training record,
    so ``n_neg / n_pos = 0``) has no finite optimum: its offset is ``-inf``.
    """
    weights = np.asarray(class_weight, np.float64).ravel()
    if np.any(weights < 0) or not np.all(np.isfinite(weights)):
        raise ValueError(f"class weights must be finite and non-negative, got {weights}")
    if head not in ("sigmoid", "softmax"):
        raise ValueError(f"head must be 'sigmoid' or 'softmax', got {head!r}")
    if head == "softmax" and weights.shape != (2,):
        raise ValueError(f"a softmax head's offset needs 2 class weights, got {weights.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        if head == "softmax":
            return np.log(weights[1:]) - np.log(weights[:1])
        return np.log(weights)


def reliability_bins(labels: Any, probs: Any, n_bins: int = DEFAULT_BINS) -> dict[str, np.ndarray]:
    """The equal-mass bins of :func:`expected_calibration_error`, every class pooled:
    ``{'confidence', 'frequency', 'count'}`` each ``(bins,)``: mean predicted probability,
    observed positive rate and records per bin (for a reliability diagram)."""
    labels, probs = _as_2d(labels, probs, "probs")
    p, y = probs.ravel(), labels.ravel()
    groups = _equal_mass_bins(p, n_bins)
    return {
        "confidence": np.array([p[g].mean() for g in groups]),
        "frequency": np.array([y[g].mean() for g in groups]),
        "count": np.array([len(g) for g in groups]),
    }


def brier_score(labels: Any, probs: Any) -> np.ndarray:
    """Mean squared error of the probabilities per class: ``(K,)``."""
    labels, probs = _as_2d(labels, probs, "probs")
    return ((probs - labels) ** 2).mean(axis=0)


def _bce_slope(inverse_t: float, labels: np.ndarray, logits: np.ndarray) -> float:
    """d/da of mean BCE(sigmoid(a z), y): ``mean(z (sigmoid(a z) - y))``, increasing in a."""
    return float(np.mean(logits * (sigmoid(inverse_t * logits) - labels)))


def fit_temperature(labels: Any, logits: Any, *, max_temperature: float = 1e6) -> float:
    """The temperature ``T`` minimising the mean binary cross-entropy of
    ``sigmoid(logits / T)`` (one scalar for every class), fitted on the data given, which
    must be the validation split.

    The loss is convex in ``a = 1 / T`` (``a z`` is linear in ``a``), so its minimiser is
    the root of a monotone slope, found by bisection in log space. When the logits rank
    the records worse than chance the optimum is ``a <= 0``; ``T`` is then clamped to
    ``max_temperature`` (every probability close to 1/2), never made negative.
    """
    labels, logits = _as_2d(labels, logits, "logits")
    if not np.any(logits):
        return 1.0  # every logit 0: any temperature gives the same probabilities
    low, high = 1.0 / max_temperature, 1.0
    if _bce_slope(low, labels, logits) >= 0:
        return max_temperature
    while _bce_slope(high, labels, logits) < 0:
        high *= 10.0
        if high > max_temperature:
            return 1.0 / max_temperature  # separable data: sharpen as far as allowed
    for _ in range(200):
        mid = np.sqrt(low * high)
        if _bce_slope(mid, labels, logits) < 0:
            low = mid
        else:
            high = mid
        if high / low < 1 + 1e-10:
            break
    return float(1.0 / np.sqrt(low * high))


def calibrated_probabilities(logits: Any, temperature: float,
                             logit_offset: Any = None) -> dict[str, np.ndarray]:
    """The readings of binary ``logits (N, K)`` that calibration compares, each ``(N, K)``:
    ``raw`` (sigmoid), ``T-scaled`` (``logits / temperature``, the temperature fitted on
    validation) and, when ``logit_offset (K,)`` is given and finite, ``prior-corrected``
    (``logits - logit_offset``: the class weighting's shift undone)."""
    logits = np.asarray(logits, np.float64)
    out = {"raw": sigmoid(logits), "T-scaled": sigmoid(logits / float(temperature))}
    if logit_offset is not None:
        offset = np.broadcast_to(np.asarray(logit_offset, np.float64).ravel(), logits.shape[1:])
        if np.all(np.isfinite(offset)):
            out["prior-corrected"] = sigmoid(logits - offset)
    return out


# calibration_summary's key suffix for each reading of calibrated_probabilities.
_SUMMARY_SUFFIX = {"raw": "", "T-scaled": "_scaled", "prior-corrected": "_prior_corrected"}


def _macro(values: np.ndarray) -> float:
    return float(np.mean(values))


def calibration_summary(labels: Any, logits: Any, temperature: float,
                        n_bins: int = DEFAULT_BINS, *,
                        logit_offset: Any = None) -> dict[str, Any]:
    """Calibration of one split's binary ``logits`` before and after dividing by
    ``temperature`` (fitted elsewhere, on validation), as a JSON-ready dict:
    ``temperature``, ``ece`` / ``brier`` (raw, macro over classes), ``ece_scaled`` /
    ``brier_scaled``, per-class lists of the four, ``n_bins``, ``saturated`` (how many
    raw probabilities round to exactly 0 or 1 in float32), and ``ece_floor`` /
    ``ece_floor_p95`` (:func:`ece_floor` of the raw probabilities: what perfect calibration
    would show on this many records, the macro mean of each class's mean and 95th
    percentile).

    With ``logit_offset`` ``(K,)`` (:func:`prior_offset` of the training loss's class
    weights) also ``ece_prior_corrected`` / ``brier_prior_corrected`` (and per class): the
    calibration of ``sigmoid(logits - logit_offset)``, with the offset itself; an offset that
    is not finite (a class weight of 0) leaves them out, with ``prior_correction`` saying why.
    """
    labels, logits = _as_2d(labels, logits, "logits")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    readings = calibrated_probabilities(logits, temperature, logit_offset)
    raw = readings["raw"]
    raw32 = raw.astype(np.float32)
    out: dict[str, Any] = {"temperature": float(temperature), "n_bins": int(n_bins),
                           "saturated": int(np.sum((raw32 == 0) | (raw32 == 1)))}
    if "prior-corrected" in readings:
        out["logit_offset"] = np.broadcast_to(
            np.asarray(logit_offset, np.float64).ravel(), logits.shape[1:]).tolist()
    elif logit_offset is not None:
        out["prior_correction"] = "undefined: a class weight of the training loss is 0"
    for name, probs in readings.items():
        suffix = _SUMMARY_SUFFIX[name]
        ece = expected_calibration_error(labels, probs, n_bins)
        brier = brier_score(labels, probs)
        out[f"ece{suffix}"] = _macro(ece)
        out[f"brier{suffix}"] = _macro(brier)
        out[f"per_class_ece{suffix}"] = ece.tolist()
        out[f"per_class_brier{suffix}"] = brier.tolist()
    floor = ece_floor(raw, n_bins)
    out["ece_floor"] = _macro(floor["mean"])
    out["ece_floor_p95"] = _macro(floor["p95"])
    out["per_class_ece_floor"] = floor["mean"].tolist()
    return out
