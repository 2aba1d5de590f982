"""Classification metrics for binary and multi-label ECG tasks, in NumPy.

These run on the host after evaluation (the trainer's per-epoch validation AUROC, early
stopping, and the final ``metrics.json`` / results tables), so they are plain vectorised
NumPy rather than JAX. scikit-learn is a test-only dependency; the tests cross-check every
function here against it.

Conventions
-----------
* ``labels`` are 0/1 (or bool) arrays of shape ``(N, K)``: ``N`` records, ``K`` classes, each
  class scored independently (multi-label), or ``K = 1`` for a binary task. 1-D inputs of
  shape ``(N,)`` are accepted wherever ``(N, K)`` is and treated as ``K = 1``.
* ``scores`` have the same shape and rank records: probabilities, logits, anything monotone.
  For a two-class *softmax* head pass the class-1 probability ``p[:, 1:2]`` as an ``(N, 1)``
  array; the binary metrics then apply unchanged.
* A class whose labels are all 0 or all 1 has no defined AUROC / AUPRC; its value is NaN
  (never an exception) and macro averages are taken over the remaining classes. The number
  of such classes is reported by :func:`summarize`.
* A prediction is positive when ``score >= threshold`` (scikit-learn's convention).
* Ties in scores are handled exactly like scikit-learn: AUROC counts a tied positive/negative
  pair as 1/2 (Mann-Whitney U with midranks); average precision treats a run of tied scores
  as one threshold.

Bootstrap confidence intervals resample records (rows) with replacement; all metrics in one
:func:`summarize` call share the same resamples (paired). The fast paths do not sort each
replicate: a replicate is the vector of multiplicities ``c_i`` of the original records, and
AUROC / AP / confusion counts are weighted sums over the original records sorted once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "roc_auc",
    "average_precision",
    "per_class_auroc",
    "per_class_auprc",
    "macro_auroc",
    "macro_auprc",
    "choose_thresholds",
    "threshold_metrics",
    "bootstrap_indices",
    "bootstrap_ci",
    "percentile_interval",
    "bootstrap_auroc",
    "bootstrap_auprc",
    "summarize",
]

# Upper bound on elements of one (replicates, N) float64 work array in the bootstrap paths
# (32 MiB): replicates are processed in chunks so memory does not grow with n_boot * N.
_CHUNK_ELEMENTS = 1 << 22


# ---------------------------------------------------------------------------------------------
# Input checking
# ---------------------------------------------------------------------------------------------


def _check_binary(labels: np.ndarray, name: str = "labels") -> np.ndarray:
    labels = np.asarray(labels)
    if labels.dtype == bool:
        return labels
    bad = (labels != 0) & (labels != 1)
    if np.any(bad):
        raise ValueError(
            f"{name} must be 0/1 (or bool); found {int(bad.sum())} other value(s), "
            f"e.g. {labels[bad].ravel()[0]!r}"
        )
    return labels.astype(bool)


def _check_scores(scores: np.ndarray, name: str = "scores") -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(scores)
    if not np.all(finite):
        raise ValueError(
            f"{name} contain {int((~finite).sum())} NaN/inf value(s); "
            "a diverged model or an unmasked padding row?"
        )
    return scores


def _as_1d(y_true: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    y_true = _check_binary(y_true, "y_true")
    scores = _check_scores(scores)
    if y_true.ndim != 1 or scores.shape != y_true.shape:
        raise ValueError(
            f"expected y_true and scores of the same shape (N,); got {y_true.shape} and "
            f"{scores.shape}"
        )
    return y_true, scores


def _as_2d(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate and return ``(labels bool (N, K), scores float64 (N, K))``."""
    labels = _check_binary(labels)
    scores = _check_scores(scores)
    if labels.ndim == 1:
        labels = labels[:, None]
    if scores.ndim == 1:
        scores = scores[:, None]
    if labels.ndim != 2 or labels.shape != scores.shape:
        raise ValueError(
            f"expected labels and scores of the same shape (N, K); got {labels.shape} and "
            f"{scores.shape}"
        )
    if labels.shape[0] == 0:
        raise ValueError("labels and scores are empty (N = 0)")
    return labels, scores


# ---------------------------------------------------------------------------------------------
# Ranking metrics: AUROC and average precision
# ---------------------------------------------------------------------------------------------


def _midranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of a 1-D array, tied values sharing the mean of their ranks. (N,) -> (N,)."""
    n = values.shape[0]
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    is_new = np.r_[True, sorted_values[1:] != sorted_values[:-1]]
    starts = np.flatnonzero(is_new)
    ends = np.r_[starts[1:], n]
    # A tie group occupying sorted positions start..end-1 has ranks start+1..end: mean below.
    group_rank = (starts + 1 + ends) / 2.0
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = group_rank[np.cumsum(is_new) - 1]
    return ranks


def roc_auc(y_true: Any, scores: Any) -> float:
    """Area under the ROC curve of one binary problem.

    Args:
      y_true: (N,) 0/1 labels.
      scores: (N,) real scores, higher = more positive.

    Returns:
      P(score of a random positive > score of a random negative) + 1/2 P(tie), i.e. the
      Mann-Whitney U statistic with midranks divided by ``n_pos * n_neg``; equal to
      ``sklearn.metrics.roc_auc_score``. NaN when only one class is present.
    """
    y_true, scores = _as_1d(y_true, scores)
    n_pos = int(y_true.sum())
    n_neg = y_true.shape[0] - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    rank_sum = _midranks(scores)[y_true].sum()
    u_statistic = rank_sum - n_pos * (n_pos + 1) / 2.0
    return float(u_statistic / (n_pos * n_neg))


def _tie_groups(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ascending sort order of a 1-D score vector and the start of each run of equal scores.

    Returns ``(order (N,), starts (G,))`` with ``G`` the number of distinct scores.
    """
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    return order, starts


def _group_weights(
    weights: np.ndarray, is_positive: np.ndarray, order: np.ndarray, starts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Total positive and negative weight per tie group, groups in ascending score order.

    Args:
      weights: (B, N) non-negative record weights (bootstrap multiplicities; ones for the
        plain metric).
      is_positive: (N,) bool labels of one class.
      order, starts: from :func:`_tie_groups` on that class's scores.

    Returns:
      ``(positive, negative)``, each (B, G).
    """
    sorted_weights = weights[:, order]
    positive_mask = is_positive[order].astype(np.float64)
    positive = np.add.reduceat(sorted_weights * positive_mask, starts, axis=1)
    total = np.add.reduceat(sorted_weights, starts, axis=1)
    return positive, total - positive


def _auroc_from_groups(positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """Weighted Mann-Whitney AUROC from (B, G) group weights (ascending scores). -> (B,).

    Each positive beats the negatives in lower groups and ties (1/2) with its own group's.
    NaN where the total positive or negative weight is zero.
    """
    negative_below = np.cumsum(negative, axis=1) - negative
    wins = np.sum(positive * (negative_below + 0.5 * negative), axis=1)
    n_pos = positive.sum(axis=1)
    n_neg = negative.sum(axis=1)
    denominator = n_pos * n_neg
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, wins / denominator, np.nan)


def _average_precision_from_groups(positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """Weighted average precision from (B, G) group weights (ascending scores). -> (B,).

    AP = sum over thresholds t (distinct scores, descending) of (R_t - R_{t-1}) * P_t, the
    step-wise sum of scikit-learn's ``average_precision_score``. A group adds recall only
    through its positives, so the sum is ``sum_g positive_g * precision_g / n_pos``.
    NaN where the total positive weight is zero.
    """
    positive_desc = positive[:, ::-1]
    true_pos = np.cumsum(positive_desc, axis=1)
    predicted_pos = true_pos + np.cumsum(negative[:, ::-1], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        # predicted_pos == 0 only before the first weighted record, where positive_desc == 0.
        precision = np.where(predicted_pos > 0, true_pos / predicted_pos, 0.0)
        n_pos = positive.sum(axis=1)
        return np.where(n_pos > 0, np.sum(positive_desc * precision, axis=1) / n_pos, np.nan)


def average_precision(y_true: Any, scores: Any) -> float:
    """Average precision (area under the step-wise precision-recall curve), one binary problem.

    Args:
      y_true: (N,) 0/1 labels.
      scores: (N,) real scores.

    Returns:
      ``sklearn.metrics.average_precision_score``'s value (ties grouped into one threshold).
      NaN when there is no positive (sklearn returns 0 with a warning there); 1.0 when every
      record is positive.
    """
    y_true, scores = _as_1d(y_true, scores)
    order, starts = _tie_groups(scores)
    positive, negative = _group_weights(np.ones((1, y_true.shape[0])), y_true, order, starts)
    return float(_average_precision_from_groups(positive, negative)[0])


def _single_label_classes(labels: np.ndarray) -> np.ndarray:
    """(N, K) bool -> (K,) bool: True where a class has only positives or only negatives."""
    n_pos = labels.sum(axis=0)
    return (n_pos == 0) | (n_pos == labels.shape[0])


def per_class_auroc(labels: Any, scores: Any) -> np.ndarray:
    """AUROC of each class. (N, K), (N, K) -> (K,); NaN for single-label classes."""
    labels, scores = _as_2d(labels, scores)
    return np.array([roc_auc(labels[:, k], scores[:, k]) for k in range(labels.shape[1])])


def per_class_auprc(labels: Any, scores: Any) -> np.ndarray:
    """Average precision of each class. (N, K), (N, K) -> (K,).

    NaN for single-label classes, including all-positive ones (where AP would trivially be
    1), so that macro AUROC and macro AUPRC average over the same classes.
    """
    labels, scores = _as_2d(labels, scores)
    values = np.array(
        [average_precision(labels[:, k], scores[:, k]) for k in range(labels.shape[1])]
    )
    return np.where(_single_label_classes(labels), np.nan, values)


def _nanmean(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Mean over non-NaN entries; NaN (without a warning) where all entries are NaN."""
    valid = ~np.isnan(values)
    count = valid.sum(axis=axis)
    total = np.where(valid, values, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def macro_auroc(labels: Any, scores: Any) -> float:
    """Mean AUROC over classes with at least one positive and one negative (NaN if none)."""
    return float(_nanmean(per_class_auroc(labels, scores)))


def macro_auprc(labels: Any, scores: Any) -> float:
    """Mean average precision over classes with both labels present (NaN if none)."""
    return float(_nanmean(per_class_auprc(labels, scores)))


# ---------------------------------------------------------------------------------------------
# Threshold metrics
# ---------------------------------------------------------------------------------------------


def _rates(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, tn: np.ndarray) -> dict[str, np.ndarray]:
    """Binary metrics from confusion counts of any (matching) shape, elementwise.

    Undefined ratios follow scikit-learn's defaults: precision, recall, F1 and MCC are 0 when
    their denominator is 0; balanced accuracy averages only the defined rates (sensitivity
    needs a positive, specificity a negative).
    """
    tp, fp, fn, tn = (np.asarray(c, dtype=np.float64) for c in (tp, fp, fn, tn))
    n_pos, n_neg = tp + fn, tn + fp

    def ratio(numerator, denominator, undefined=0.0):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(denominator > 0, numerator / denominator, undefined)

    sensitivity = ratio(tp, n_pos, np.nan)
    specificity = ratio(tn, n_neg, np.nan)
    both = np.stack([sensitivity, specificity])
    mcc_denominator = np.sqrt((tp + fp) * n_pos * n_neg * (tn + fn))
    return {
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "precision": ratio(tp, tp + fp),
        "recall": np.nan_to_num(sensitivity, nan=0.0),
        "specificity": np.nan_to_num(specificity, nan=0.0),
        "accuracy": ratio(tp + tn, n_pos + n_neg),
        "balanced_accuracy": _nanmean(both, axis=0),
        "mcc": ratio(tp * tn - fp * fn, mcc_denominator),
    }


_CRITERIA = ("f1", "mcc", "balanced_accuracy")


def choose_thresholds(labels_val: Any, scores_val: Any, criterion: str = "f1") -> np.ndarray:
    """Per-class decision thresholds that maximise ``criterion`` on the validation set.

    Every distinct score value of a class is a candidate (prediction = ``score >= t``), plus
    "predict nothing" (a threshold just above the maximum score); all candidates are scored
    at once from cumulative counts over the sorted scores. Among equally good candidates the
    highest threshold wins. A class without positives gets the "predict nothing" threshold.

    Args:
      labels_val: (N, K) 0/1 validation labels (or (N,)).
      scores_val: (N, K) validation scores (or (N,)).
      criterion: "f1", "mcc" or "balanced_accuracy" (Youden's J / 2 + 1/2).

    Returns:
      (K,) float64 thresholds, each one of the class's validation scores or the float just
      above its maximum.
    """
    if criterion not in _CRITERIA:
        raise ValueError(f"unknown threshold criterion {criterion!r}; expected one of {_CRITERIA}")
    labels, scores = _as_2d(labels_val, scores_val)
    n_records = labels.shape[0]

    # Descending sort per class; position i predicts the first i+1 records positive.
    order = np.argsort(-scores, axis=0, kind="stable")
    sorted_scores = np.take_along_axis(scores, order, axis=0)
    sorted_labels = np.take_along_axis(labels, order, axis=0).astype(np.float64)
    tp = np.cumsum(sorted_labels, axis=0)
    fp = np.arange(1, n_records + 1)[:, None] - tp
    n_pos = labels.sum(axis=0)
    fn = n_pos - tp
    tn = (n_records - n_pos) - fp
    value = _rates(tp, fp, fn, tn)[criterion]
    # Only the last record of a run of tied scores is a threshold one can actually realise.
    is_group_end = np.ones_like(labels)
    is_group_end[:-1] = sorted_scores[1:] != sorted_scores[:-1]
    value = np.where(is_group_end, value, -np.inf)
    best = np.argmax(value, axis=0)  # first maximum = highest threshold among ties
    columns = np.arange(labels.shape[1])
    thresholds = sorted_scores[best, columns]

    zero = np.zeros_like(n_pos, dtype=np.float64)
    nothing_value = _rates(zero, zero, n_pos, n_records - n_pos)[criterion]
    predict_nothing = (nothing_value > value[best, columns]) | (n_pos == 0)
    above_max = np.nextafter(scores.max(axis=0), np.inf)
    return np.where(predict_nothing, above_max, thresholds)


def _confusion(
    labels: np.ndarray, predictions: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Confusion counts per class: (N, K) bool labels / predictions -> four (K,) arrays, or
    (B, K) arrays with (B, N) record weights (bootstrap multiplicities)."""
    indicators = [labels & predictions, ~labels & predictions, labels & ~predictions]
    if weights is None:
        tp, fp, fn = (m.sum(axis=0).astype(np.float64) for m in indicators)
        total = float(labels.shape[0])
    else:
        tp, fp, fn = (weights @ m.astype(np.float64) for m in indicators)
        total = weights.sum(axis=1, keepdims=True)
    return tp, fp, fn, total - tp - fp - fn


def threshold_metrics(labels: Any, scores: Any, thresholds: Any) -> dict[str, Any]:
    """F1, accuracy, balanced accuracy, MCC, ... at fixed per-class thresholds.

    Args:
      labels: (N, K) 0/1 labels (or (N,)).
      scores: (N, K) scores (or (N,)).
      thresholds: (K,) thresholds (a scalar is broadcast); predicted positive iff
        ``score >= threshold``.

    Returns:
      ``{"thresholds": (K,), "per_class": {metric: (K,)}, "macro": {metric: float},
      "micro": {...}}`` and, for K > 1, ``"samples": {"f1", "subset_accuracy"}``.
      ``per_class`` has f1, precision, recall, specificity, accuracy, balanced_accuracy, mcc
      and the counts tp, fp, fn, tn; ``macro`` is the unweighted mean over all K classes
      (scikit-learn's ``average="macro"``); ``micro`` pools the counts of all classes
      (f1, precision, recall); ``samples`` averages per-record F1 over records (0 for a
      record with no true and no predicted label, as in scikit-learn) and gives the
      exact-match ratio.
    """
    labels, scores = _as_2d(labels, scores)
    n_classes = labels.shape[1]
    thresholds = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (n_classes,))
    predictions = scores >= thresholds

    tp, fp, fn, tn = _confusion(labels, predictions)
    per_class = _rates(tp, fp, fn, tn)
    macro = {name: float(values.mean()) for name, values in per_class.items()}
    micro_rates = _rates(tp.sum(), fp.sum(), fn.sum(), tn.sum())
    result: dict[str, Any] = {
        "thresholds": thresholds.copy(),
        "per_class": {**per_class, "tp": tp, "fp": fp, "fn": fn, "tn": tn},
        "macro": macro,
        "micro": {name: float(micro_rates[name]) for name in ("f1", "precision", "recall")},
    }
    if n_classes > 1:
        record_tp = (labels & predictions).sum(axis=1)
        record_size = labels.sum(axis=1) + predictions.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            record_f1 = np.where(record_size > 0, 2 * record_tp / record_size, 0.0)
        result["samples"] = {
            "f1": float(record_f1.mean()),
            "subset_accuracy": float(np.all(labels == predictions, axis=1).mean()),
        }
    return result


# ---------------------------------------------------------------------------------------------
# Bootstrap
# ---------------------------------------------------------------------------------------------


def bootstrap_indices(n: int, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """Record indices of ``n_boot`` resamples with replacement: (n_boot, n) int64.

    Every bootstrap in this module draws from this function, so a given seed gives the same
    resamples to the generic :func:`bootstrap_ci` and to the vectorised fast paths.
    """
    if n < 1 or n_boot < 1:
        raise ValueError(f"need n >= 1 and n_boot >= 1; got n={n}, n_boot={n_boot}")
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n), dtype=np.int64)


def _multiplicity_chunks(n: int, n_boot: int, seed: int):
    """Yield (b, n) float64 counts of each record in consecutive chunks of the resamples."""
    indices = bootstrap_indices(n, n_boot, seed)
    chunk = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, n_boot, chunk):
        rows = indices[start : start + chunk]
        offsets = np.arange(rows.shape[0])[:, None] * n
        counts = np.bincount((rows + offsets).ravel(), minlength=rows.shape[0] * n)
        yield counts.reshape(rows.shape[0], n).astype(np.float64)


def percentile_interval(replicates: Any, alpha: float = 0.05) -> tuple[float, float]:
    """Percentile interval ``(q_{alpha/2}, q_{1-alpha/2})`` of the non-NaN replicates.

    (NaN, NaN) when no replicate is finite. Quantiles use NumPy's default linear rule.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1); got {alpha}")
    values = np.asarray(replicates, dtype=np.float64).ravel()
    values = values[~np.isnan(values)]
    if values.size == 0:
        return math.nan, math.nan
    low, high = np.quantile(values, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def bootstrap_ci(
    metric_fn: Callable[[np.ndarray, np.ndarray], float],
    labels: Any,
    scores: Any,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> tuple[float, float]:
    """Percentile bootstrap interval of any ``metric_fn(labels, scores) -> float``.

    The generic (Python-loop) path: records (first axis) are resampled ``n_boot`` times and
    ``metric_fn`` is called on each resample; NaN replicates (e.g. a resample with a single
    class) are skipped. Prefer :func:`bootstrap_auroc` / :func:`bootstrap_auprc` for those
    metrics, which give the same replicates for the same seed, vectorised.

    Returns:
      ``(low, high)``, the ``1 - alpha`` percentile interval.
    """
    labels = np.asarray(labels)
    scores = np.asarray(scores)
    if labels.shape[0] != scores.shape[0]:
        raise ValueError(
            f"labels and scores disagree on the number of records: {labels.shape[0]} vs "
            f"{scores.shape[0]}"
        )
    indices = bootstrap_indices(labels.shape[0], n_boot, seed)
    replicates = np.array([metric_fn(labels[rows], scores[rows]) for rows in indices], float)
    return percentile_interval(replicates, alpha)


def _bootstrap_replicates(
    labels: np.ndarray,
    scores: np.ndarray,
    n_boot: int,
    seed: int,
    predictions: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """All vectorised replicates in one pass over shared resamples.

    Returns ``{"auroc": (n_boot, K), "auprc": (n_boot, K)}`` (NaN where a resample has a
    single label for the class) and, if ``predictions`` (N, K) bool is given, the
    threshold metrics of :func:`_rates` as (n_boot, K) arrays under ``"rates"`` and the
    subset accuracy (exact-match ratio) as an (n_boot,) array under ``"subset_accuracy"``.
    """
    n_records, n_classes = labels.shape
    groups = [_tie_groups(scores[:, k]) for k in range(n_classes)]
    auroc_chunks, auprc_chunks, confusion_chunks, exact_chunks = [], [], [], []
    exact = None if predictions is None else np.all(labels == predictions, axis=1).astype(np.float64)
    for weights in _multiplicity_chunks(n_records, n_boot, seed):
        auroc = np.empty((weights.shape[0], n_classes))
        auprc = np.empty_like(auroc)
        for k, (order, starts) in enumerate(groups):
            positive, negative = _group_weights(weights, labels[:, k], order, starts)
            auroc[:, k] = _auroc_from_groups(positive, negative)
            # Same skip rule as per_class_auprc: a resample without negatives is skipped too.
            auprc[:, k] = np.where(
                negative.sum(axis=1) > 0, _average_precision_from_groups(positive, negative), np.nan
            )
        auroc_chunks.append(auroc)
        auprc_chunks.append(auprc)
        if predictions is not None:
            confusion_chunks.append(_confusion(labels, predictions, weights))
            exact_chunks.append(weights @ exact / weights.sum(axis=1))
    result = {"auroc": np.concatenate(auroc_chunks), "auprc": np.concatenate(auprc_chunks)}
    if predictions is not None:
        counts = [np.concatenate([c[i] for c in confusion_chunks]) for i in range(4)]
        result["rates"] = _rates(*counts)
        result["subset_accuracy"] = np.concatenate(exact_chunks)
    return result


def _bootstrap_ranking(
    metric: str, labels: Any, scores: Any, n_boot: int, seed: int, alpha: float
) -> dict[str, Any]:
    labels, scores = _as_2d(labels, scores)
    # A class that is single-label in the data is single-label in every resample, so it is
    # NaN in every replicate and stays out of the replicate macros, as in the point estimate.
    per_class = _bootstrap_replicates(labels, scores, n_boot, seed)[metric]
    macro = _nanmean(per_class, axis=1)
    intervals = [percentile_interval(per_class[:, k], alpha) for k in range(labels.shape[1])]
    return {
        "macro_ci": percentile_interval(macro, alpha),
        "per_class_ci": np.array(intervals).reshape(labels.shape[1], 2),
        "macro_replicates": macro,
        "per_class_replicates": per_class,
        "n_skipped": np.isnan(per_class).sum(axis=0),
        "n_skipped_macro": int(np.isnan(macro).sum()),
    }


def bootstrap_auroc(
    labels: Any, scores: Any, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05
) -> dict[str, Any]:
    """Vectorised bootstrap of per-class and macro AUROC.

    Args:
      labels, scores: (N, K) (or (N,)).
      n_boot: number of resamples; seed: their seed (see :func:`bootstrap_indices`).
      alpha: 1 - coverage of the percentile intervals.

    Returns:
      ``macro_ci`` (low, high); ``per_class_ci`` (K, 2); ``macro_replicates`` (n_boot,),
      each the mean over the classes with both labels in that resample;
      ``per_class_replicates`` (n_boot, K) with NaN for skipped (single-label) resamples;
      ``n_skipped`` (K,) how many resamples were skipped per class; ``n_skipped_macro``
      how many resamples had no scorable class at all.
    """
    return _bootstrap_ranking("auroc", labels, scores, n_boot, seed, alpha)


def bootstrap_auprc(
    labels: Any, scores: Any, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05
) -> dict[str, Any]:
    """Vectorised bootstrap of per-class and macro average precision; as :func:`bootstrap_auroc`."""
    return _bootstrap_ranking("auprc", labels, scores, n_boot, seed, alpha)


# ---------------------------------------------------------------------------------------------
# Summary for metrics.json and the results tables
# ---------------------------------------------------------------------------------------------


def _json_float(value: Any) -> float | None:
    """A Python float, or None for NaN (strict JSON has no NaN)."""
    value = float(value)
    return None if math.isnan(value) else value


def summarize(
    labels: Any,
    scores: Any,
    thresholds: Any = None,
    n_boot: int = 1000,
    seed: int = 0,
    class_names: Sequence[str] | None = None,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Everything the results tables report about one evaluation, as a JSON-ready dict.

    Args:
      labels: (N, K) 0/1 labels (or (N,)).
      scores: (N, K) scores (or (N,)); for a 2-class softmax pass ``p[:, 1:2]``.
      thresholds: optional (K,) thresholds, typically ``choose_thresholds`` on validation;
        adds the threshold metrics.
      n_boot: bootstrap resamples for the intervals (0 disables them; the CI keys are then
        None). seed: their seed. alpha: 1 - coverage.
      class_names: K names used as keys of ``per_class`` (default "class_0", ...).

    Returns:
      A dict of plain Python values; undefined numbers (a single-label class) are None:
      ``n_records``, ``n_classes``, ``class_names``, ``positives`` {name: int},
      ``macro_auroc`` / ``macro_auroc_ci_low`` / ``macro_auroc_ci_high``, the same for
      ``macro_auprc``, ``n_classes_scored`` and ``skipped_classes`` (names of single-label
      classes left out of the macros), ``per_class`` {name: {positives, negatives, auroc,
      auroc_ci_low, auroc_ci_high, auprc, auprc_ci_low, auprc_ci_high, bootstrap_skipped}},
      and with thresholds: ``f1``, ``accuracy``, ``balanced_accuracy``, ``mcc`` (macro over
      classes, each with ``_ci_low`` / ``_ci_high``), ``micro_f1``, ``samples_f1`` and
      ``subset_accuracy`` (K > 1, with ``_ci_low`` / ``_ci_high``), and per-class threshold, f1, precision, recall,
      specificity, accuracy, balanced_accuracy, mcc. Also ``bootstrap`` {n_boot, seed,
      alpha}.
    """
    labels, scores = _as_2d(labels, scores)
    n_records, n_classes = labels.shape
    if class_names is None:
        class_names = [f"class_{k}" for k in range(n_classes)]
    class_names = [str(name) for name in class_names]
    if len(class_names) != n_classes or len(set(class_names)) != n_classes:
        raise ValueError(f"need {n_classes} distinct class names; got {class_names}")

    auroc = per_class_auroc(labels, scores)
    auprc = per_class_auprc(labels, scores)
    single_label = _single_label_classes(labels)
    positives = labels.sum(axis=0).astype(int)

    predictions = None
    fixed = None
    if thresholds is not None:
        fixed = threshold_metrics(labels, scores, thresholds)
        predictions = scores >= fixed["thresholds"]

    nan_pair = (math.nan, math.nan)
    ci = {"auroc": nan_pair, "auprc": nan_pair}
    class_ci = {"auroc": np.full((n_classes, 2), np.nan), "auprc": np.full((n_classes, 2), np.nan)}
    bootstrap_skipped = np.zeros(n_classes, dtype=int)
    rate_ci: dict[str, tuple[float, float]] = {}
    if n_boot > 0:
        replicates = _bootstrap_replicates(labels, scores, n_boot, seed, predictions)
        for metric in ("auroc", "auprc"):
            per_class = replicates[metric]
            ci[metric] = percentile_interval(_nanmean(per_class, axis=1), alpha)
            class_ci[metric] = np.array(
                [percentile_interval(per_class[:, k], alpha) for k in range(n_classes)]
            )
        bootstrap_skipped = np.isnan(replicates["auroc"]).sum(axis=0)
        if predictions is not None:
            for name in ("f1", "accuracy", "balanced_accuracy", "mcc"):
                rate_ci[name] = percentile_interval(replicates["rates"][name].mean(axis=1), alpha)
            rate_ci["subset_accuracy"] = percentile_interval(replicates["subset_accuracy"], alpha)

    summary: dict[str, Any] = {
        "n_records": int(n_records),
        "n_classes": int(n_classes),
        "class_names": class_names,
        "positives": dict(zip(class_names, positives.tolist())),
    }
    for metric, values in (("auroc", auroc), ("auprc", auprc)):
        summary[f"macro_{metric}"] = _json_float(_nanmean(values))
        summary[f"macro_{metric}_ci_low"] = _json_float(ci[metric][0])
        summary[f"macro_{metric}_ci_high"] = _json_float(ci[metric][1])
    summary["n_classes_scored"] = int((~single_label).sum())
    summary["skipped_classes"] = [name for name, s in zip(class_names, single_label) if s]

    per_class_summary = {}
    for k, name in enumerate(class_names):
        entry = {
            "positives": int(positives[k]),
            "negatives": int(n_records - positives[k]),
            "auroc": _json_float(auroc[k]),
            "auroc_ci_low": _json_float(class_ci["auroc"][k, 0]),
            "auroc_ci_high": _json_float(class_ci["auroc"][k, 1]),
            "auprc": _json_float(auprc[k]),
            "auprc_ci_low": _json_float(class_ci["auprc"][k, 0]),
            "auprc_ci_high": _json_float(class_ci["auprc"][k, 1]),
            "bootstrap_skipped": int(bootstrap_skipped[k]),
        }
        if fixed is not None:
            entry["threshold"] = _json_float(fixed["thresholds"][k])
            for metric in ("f1", "precision", "recall", "specificity", "accuracy",
                           "balanced_accuracy", "mcc"):
                entry[metric] = _json_float(fixed["per_class"][metric][k])
        per_class_summary[name] = entry

    if fixed is not None:
        for name in ("f1", "accuracy", "balanced_accuracy", "mcc"):
            summary[name] = _json_float(fixed["macro"][name])
            low, high = rate_ci.get(name, nan_pair)
            summary[f"{name}_ci_low"] = _json_float(low)
            summary[f"{name}_ci_high"] = _json_float(high)
        summary["micro_f1"] = _json_float(fixed["micro"]["f1"])
        if "samples" in fixed:
            summary["samples_f1"] = _json_float(fixed["samples"]["f1"])
            summary["subset_accuracy"] = _json_float(fixed["samples"]["subset_accuracy"])
            low, high = rate_ci.get("subset_accuracy", nan_pair)
            summary["subset_accuracy_ci_low"] = _json_float(low)
            summary["subset_accuracy_ci_high"] = _json_float(high)
    summary["per_class"] = per_class_summary
    summary["bootstrap"] = {"n_boot": int(n_boot), "seed": int(seed), "alpha": float(alpha)}
    return summary
