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


def _macro(values: np.ndarray) -> float:
    return float(np.mean(values))


def calibration_summary(labels: Any, logits: Any, temperature: float,
                        n_bins: int = DEFAULT_BINS) -> dict[str, Any]:
    """Calibration of one split's binary ``logits`` before and after dividing by
    ``temperature`` (fitted elsewhere, on validation), as a JSON-ready dict:
    ``temperature``, ``ece`` / ``brier`` (raw, macro over classes), ``ece_scaled`` /
    ``brier_scaled``, per-class lists of the four, ``n_bins``, and ``saturated``: how many
    raw probabilities round to exactly 0 or 1 in float32."""
    labels, logits = _as_2d(labels, logits, "logits")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    raw = sigmoid(logits)
    scaled = sigmoid(logits / temperature)
    raw32 = raw.astype(np.float32)
    out: dict[str, Any] = {"temperature": float(temperature), "n_bins": int(n_bins),
                           "saturated": int(np.sum((raw32 == 0) | (raw32 == 1)))}
    for suffix, probs in (("", raw), ("_scaled", scaled)):
        ece = expected_calibration_error(labels, probs, n_bins)
        brier = brier_score(labels, probs)
        out[f"ece{suffix}"] = _macro(ece)
        out[f"brier{suffix}"] = _macro(brier)
        out[f"per_class_ece{suffix}"] = ece.tolist()
        out[f"per_class_brier{suffix}"] = brier.tolist()
    return out
