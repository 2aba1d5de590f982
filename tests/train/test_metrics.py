"""Cross-checks of imn.train.metrics against scikit-learn and brute-force references."""

from __future__ import annotations

import json
import time
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from imn.train import metrics


def _multilabel(n: int, k: int, seed: int, prevalence=(0.3, 0.1, 0.5, 0.03), decimals=1):
    """Labels (n, k) with the given per-class prevalences and tied, informative scores."""
    rng = np.random.default_rng(seed)
    prevalence = np.resize(np.asarray(prevalence), k)
    labels = (rng.random((n, k)) < prevalence).astype(int)
    # Rounding makes many ties, including ties between positives and negatives.
    scores = np.round(rng.normal(size=(n, k)) + 0.8 * labels, decimals)
    return labels, scores


# ------------------------------------------------------------------------------- ranking


@pytest.mark.parametrize("seed", range(6))
def test_roc_auc_and_average_precision_match_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 300))
    prevalence = [0.5, 0.05, 0.9][seed % 3]
    y = (rng.random(n) < prevalence).astype(int)
    y[:2] = [0, 1]  # both classes present
    scores = np.round(rng.normal(size=n) + y, int(rng.integers(0, 2)))
    assert len(np.unique(scores)) < n  # the case is really about ties
    assert metrics.roc_auc(y, scores) == pytest.approx(skm.roc_auc_score(y, scores), abs=1e-12)
    assert metrics.average_precision(y, scores) == pytest.approx(
        skm.average_precision_score(y, scores), abs=1e-12
    )


def test_per_class_and_macro_match_sklearn_multilabel():
    labels, scores = _multilabel(400, 4, seed=1)
    np.testing.assert_allclose(
        metrics.per_class_auroc(labels, scores), skm.roc_auc_score(labels, scores, average=None)
    )
    np.testing.assert_allclose(
        metrics.per_class_auprc(labels, scores),
        skm.average_precision_score(labels, scores, average=None),
    )
    assert metrics.macro_auroc(labels, scores) == pytest.approx(
        skm.roc_auc_score(labels, scores, average="macro")
    )
    assert metrics.macro_auprc(labels, scores) == pytest.approx(
        skm.average_precision_score(labels, scores, average="macro")
    )


def test_single_label_classes_are_nan_and_skipped_by_macro():
    labels, scores = _multilabel(200, 4, seed=2)
    labels[:, 1] = 0  # no positive
    labels[:, 3] = 1  # no negative
    auroc = metrics.per_class_auroc(labels, scores)
    auprc = metrics.per_class_auprc(labels, scores)
    assert np.isnan(auroc[[1, 3]]).all() and np.isfinite(auroc[[0, 2]]).all()
    assert np.isnan(auprc[[1, 3]]).all() and np.isfinite(auprc[[0, 2]]).all()
    kept = [0, 2]
    assert metrics.macro_auroc(labels, scores) == pytest.approx(
        skm.roc_auc_score(labels[:, kept], scores[:, kept], average="macro")
    )
    assert metrics.macro_auprc(labels, scores) == pytest.approx(
        skm.average_precision_score(labels[:, kept], scores[:, kept], average="macro")
    )
    # Nothing scorable at all: NaN, not an exception.
    assert np.isnan(metrics.macro_auroc(labels[:, [1, 3]], scores[:, [1, 3]]))


def test_degenerate_binary_cases():
    y = np.array([0, 1, 1, 0, 1, 0, 0, 0])
    constant = np.full(8, 0.3)
    assert metrics.roc_auc(y, constant) == 0.5
    # One threshold containing everything: AP = prevalence, as in sklearn.
    assert metrics.average_precision(y, constant) == pytest.approx(3 / 8)
    assert metrics.average_precision(y, constant) == pytest.approx(
        skm.average_precision_score(y, constant)
    )
    assert np.isnan(metrics.roc_auc(np.zeros(5), np.arange(5.0)))
    assert np.isnan(metrics.roc_auc(np.ones(5), np.arange(5.0)))
    assert np.isnan(metrics.average_precision(np.zeros(5), np.arange(5.0)))
    assert metrics.average_precision(np.ones(5), np.arange(5.0)) == 1.0
    # Perfect and reversed rankings; bool labels and float32 scores are accepted.
    scores32 = np.linspace(0, 1, 8, dtype=np.float32)
    ranked = np.arange(8) >= 5
    assert metrics.roc_auc(ranked, scores32) == 1.0
    assert metrics.roc_auc(ranked, -scores32) == 0.0
    assert metrics.average_precision(ranked, scores32) == 1.0


def test_bad_input_gives_clear_errors():
    with pytest.raises(ValueError, match="0/1"):
        metrics.roc_auc(np.array([0, 2, 1]), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="NaN"):
        metrics.per_class_auroc(np.array([[0], [1]]), np.array([[0.1], [np.nan]]))
    with pytest.raises(ValueError, match="same shape"):
        metrics.per_class_auroc(np.zeros((4, 2)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="criterion"):
        metrics.choose_thresholds(np.array([0, 1]), np.array([0.1, 0.2]), criterion="auc")


# ------------------------------------------------------------------------------ thresholds


def test_threshold_metrics_match_sklearn():
    labels, scores = _multilabel(300, 5, seed=3)
    labels[:, 4] = 0  # a class without positives exercises the zero-division conventions
    # Class 1's threshold is above every score: nothing predicted positive.
    thresholds = np.array([0.4, 10.0, 0.5, 0.9, 0.0])
    out = metrics.threshold_metrics(labels, scores, thresholds)
    predictions = (scores >= thresholds).astype(int)
    per_class = out["per_class"]

    def each(fn):
        return np.array([fn(labels[:, k], predictions[:, k]) for k in range(5)])

    with warnings.catch_warnings():  # sklearn warns about class 4, which has no positive
        warnings.simplefilter("ignore")
        expected = {
            "f1": skm.f1_score(labels, predictions, average=None, zero_division=0),
            "precision": skm.precision_score(labels, predictions, average=None, zero_division=0),
            "recall": skm.recall_score(labels, predictions, average=None, zero_division=0),
            "accuracy": each(skm.accuracy_score),
            "balanced_accuracy": each(skm.balanced_accuracy_score),
            "mcc": each(skm.matthews_corrcoef),
            "specificity": each(lambda y, p: skm.recall_score(1 - y, 1 - p)),
        }
    for name, values in expected.items():
        np.testing.assert_allclose(per_class[name], values, atol=1e-12, err_msg=name)
        assert out["macro"][name] == pytest.approx(values.mean(), abs=1e-12), name
    assert out["macro"]["f1"] == pytest.approx(
        skm.f1_score(labels, predictions, average="macro", zero_division=0)
    )
    assert out["micro"]["f1"] == pytest.approx(skm.f1_score(labels, predictions, average="micro"))
    assert out["micro"]["precision"] == pytest.approx(
        skm.precision_score(labels, predictions, average="micro")
    )
    assert out["samples"]["f1"] == pytest.approx(
        skm.f1_score(labels, predictions, average="samples", zero_division=0)
    )
    assert out["samples"]["subset_accuracy"] == pytest.approx(
        skm.accuracy_score(labels, predictions)
    )
    np.testing.assert_array_equal(per_class["tp"], (labels & predictions).sum(axis=0))


def test_threshold_metrics_binary_1d_has_no_samples_block():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 50)
    p1 = rng.random(50)  # class-1 probability of a 2-way softmax
    out = metrics.threshold_metrics(y, p1, 0.5)
    assert "samples" not in out
    assert out["macro"]["f1"] == pytest.approx(skm.f1_score(y, p1 >= 0.5))
    assert out["macro"]["mcc"] == pytest.approx(skm.matthews_corrcoef(y, p1 >= 0.5))


def _criterion(name, y, predicted):
    with np.errstate(all="ignore"):
        if name == "f1":
            return skm.f1_score(y, predicted, zero_division=0)
        if name == "mcc":
            return skm.matthews_corrcoef(y, predicted)
        return skm.balanced_accuracy_score(y, predicted)


@pytest.mark.parametrize("criterion", ["f1", "mcc", "balanced_accuracy"])
def test_chosen_thresholds_are_optimal_by_brute_force(criterion):
    labels, scores = _multilabel(120, 4, seed=5)
    labels[:, 3] = 0  # no positives: expect a threshold above every score
    thresholds = metrics.choose_thresholds(labels, scores, criterion=criterion)
    assert thresholds.shape == (4,)
    for k in range(3):
        y, s = labels[:, k], scores[:, k]
        candidates = np.r_[np.unique(s), np.nextafter(s.max(), np.inf)]
        values = np.array([_criterion(criterion, y, s >= t) for t in candidates])
        best = values.max()
        assert thresholds[k] in candidates
        assert _criterion(criterion, y, s >= thresholds[k]) == pytest.approx(best, abs=1e-12)
        # Ties in the criterion go to the highest threshold.
        assert thresholds[k] == candidates[np.flatnonzero(values >= best - 1e-12)].max()
    assert thresholds[3] > scores[:, 3].max()
    assert not (scores[:, 3] >= thresholds[3]).any()


def test_f1_threshold_on_a_hand_made_case():
    # Predicting the top three (t = 0.6) gives F1 = 2*2/(2*2+1+0) = 0.8, the best.
    y = np.array([1, 0, 1, 0, 0])
    s = np.array([0.9, 0.8, 0.6, 0.3, 0.1])
    assert metrics.choose_thresholds(y, s)[0] == 0.6


# ------------------------------------------------------------------------------- bootstrap


def test_vectorised_bootstrap_equals_slow_loop():
    labels, scores = _multilabel(150, 4, seed=6)
    n_boot, seed = 6, 11
    fast_auroc = metrics.bootstrap_auroc(labels, scores, n_boot=n_boot, seed=seed)
    fast_auprc = metrics.bootstrap_auprc(labels, scores, n_boot=n_boot, seed=seed)
    indices = metrics.bootstrap_indices(150, n_boot, seed)
    for b, rows in enumerate(indices):
        y, s = labels[rows], scores[rows]
        for k in range(4):
            if y[:, k].min() == y[:, k].max():
                assert np.isnan(fast_auroc["per_class_replicates"][b, k])
                continue
            assert fast_auroc["per_class_replicates"][b, k] == pytest.approx(
                skm.roc_auc_score(y[:, k], s[:, k]), abs=1e-12
            )
            assert fast_auprc["per_class_replicates"][b, k] == pytest.approx(
                skm.average_precision_score(y[:, k], s[:, k]), abs=1e-12
            )
        assert fast_auroc["macro_replicates"][b] == pytest.approx(metrics.macro_auroc(y, s))


def test_fast_macro_ci_equals_generic_bootstrap_ci():
    labels, scores = _multilabel(100, 3, seed=7)
    fast = metrics.bootstrap_auroc(labels, scores, n_boot=60, seed=3)
    generic = metrics.bootstrap_ci(metrics.macro_auroc, labels, scores, n_boot=60, seed=3)
    np.testing.assert_allclose(fast["macro_ci"], generic, atol=1e-12)
    fast_pr = metrics.bootstrap_auprc(labels, scores, n_boot=60, seed=3)
    generic_pr = metrics.bootstrap_ci(metrics.macro_auprc, labels, scores, n_boot=60, seed=3)
    np.testing.assert_allclose(fast_pr["macro_ci"], generic_pr, atol=1e-12)


def test_chunked_bootstrap_equals_single_chunk(monkeypatch):
    labels, scores = _multilabel(90, 3, seed=8)
    whole = metrics.bootstrap_auroc(labels, scores, n_boot=40, seed=1)
    monkeypatch.setattr(metrics, "_CHUNK_ELEMENTS", 90 * 7)  # chunks of 7 replicates
    chunked = metrics.bootstrap_auroc(labels, scores, n_boot=40, seed=1)
    np.testing.assert_array_equal(
        whole["per_class_replicates"], chunked["per_class_replicates"]
    )


def test_single_label_resamples_are_skipped_and_counted():
    rng = np.random.default_rng(9)
    n = 25
    labels = np.zeros((n, 2), dtype=int)
    labels[3, 0] = 1  # one positive: about (24/25)^25 = 36% of resamples miss it
    labels[rng.permutation(n)[:10], 1] = 1
    scores = rng.random((n, 2))
    result = metrics.bootstrap_auroc(labels, scores, n_boot=300, seed=2)
    missing = ~(metrics.bootstrap_indices(n, 300, 2) == 3).any(axis=1)
    assert 50 < missing.sum() < 200
    assert result["n_skipped"][0] == missing.sum()
    assert np.isnan(result["per_class_replicates"][missing, 0]).all()
    assert result["n_skipped_macro"] == 0  # class 1 is scorable in every resample
    # The macro of a resample without class 0 is class 1's AUROC alone.
    np.testing.assert_allclose(
        result["macro_replicates"][missing], result["per_class_replicates"][missing, 1]
    )


def test_bootstrap_ci_contains_estimate_narrows_with_n_and_is_deterministic():
    widths = []
    for n in (200, 3000):
        labels, scores = _multilabel(n, 3, seed=10, prevalence=(0.3, 0.2, 0.4), decimals=2)
        point = metrics.macro_auroc(labels, scores)
        first = metrics.bootstrap_auroc(labels, scores, n_boot=400, seed=4)
        low, high = first["macro_ci"]
        assert low < point < high
        for k, (k_low, k_high) in enumerate(first["per_class_ci"]):
            assert k_low < metrics.roc_auc(labels[:, k], scores[:, k]) < k_high
        again = metrics.bootstrap_auroc(labels, scores, n_boot=400, seed=4)
        other = metrics.bootstrap_auroc(labels, scores, n_boot=400, seed=5)
        assert again["macro_ci"] == first["macro_ci"]
        assert other["macro_ci"] != first["macro_ci"]
        widths.append(high - low)
    # Width scales like 1/sqrt(N): expected ratio sqrt(15) ~ 3.9.
    assert widths[1] < 0.5 * widths[0]


def test_generic_bootstrap_ci_skips_nan_replicates():
    y = np.array([0] * 9 + [1])
    s = np.linspace(0, 1, 10)
    low, high = metrics.bootstrap_ci(metrics.roc_auc, y, s, n_boot=200, seed=0)
    assert np.isfinite([low, high]).all() and 0 <= low <= high <= 1
    assert metrics.percentile_interval([np.nan, np.nan]) != metrics.percentile_interval([0.5])
    assert all(np.isnan(metrics.percentile_interval([np.nan, np.nan])))


def test_auroc_bootstrap_is_fast_enough():
    labels, scores = _multilabel(2000, 5, seed=12, decimals=3)
    metrics.bootstrap_auroc(labels[:50], scores[:50], n_boot=5)  # warm caches
    start = time.perf_counter()
    metrics.bootstrap_auroc(labels, scores, n_boot=1000, seed=0)
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, f"1000 AUROC replicates for N=2000, K=5 took {elapsed:.2f} s"


# ------------------------------------------------------------------------------- summarize


def test_summarize_is_json_ready_and_consistent():
    labels, scores = _multilabel(300, 4, seed=13, prevalence=(0.3, 0.1, 0.5, 0.2))
    labels[:, 2] = 0  # a class with no positives in this split
    names = ["NORM", "MI", "STTC", "CD"]
    val_labels, val_scores = _multilabel(200, 4, seed=14)
    thresholds = metrics.choose_thresholds(val_labels, val_scores)
    summary = metrics.summarize(
        labels, scores, thresholds=thresholds, n_boot=200, seed=0, class_names=names
    )
    text = json.dumps(summary, allow_nan=False)  # strict JSON: NaN became None
    assert json.loads(text) == summary

    assert summary["n_records"] == 300
    assert summary["positives"] == dict(zip(names, labels.sum(axis=0).tolist()))
    assert summary["skipped_classes"] == ["STTC"] and summary["n_classes_scored"] == 3
    assert summary["per_class"]["STTC"]["auroc"] is None
    assert summary["per_class"]["STTC"]["bootstrap_skipped"] == 200
    assert summary["macro_auroc"] == pytest.approx(metrics.macro_auroc(labels, scores))
    assert summary["macro_auprc"] == pytest.approx(metrics.macro_auprc(labels, scores))
    assert summary["per_class"]["MI"]["auroc"] == pytest.approx(
        skm.roc_auc_score(labels[:, 1], scores[:, 1])
    )
    fixed = metrics.threshold_metrics(labels, scores, thresholds)
    for name in ("f1", "accuracy", "balanced_accuracy", "mcc"):
        assert summary[name] == pytest.approx(fixed["macro"][name])
        assert summary[f"{name}_ci_low"] <= summary[name] <= summary[f"{name}_ci_high"]
    for name in ("auroc", "auprc"):
        assert (
            summary[f"macro_{name}_ci_low"]
            < summary[f"macro_{name}"]
            < summary[f"macro_{name}_ci_high"]
        )
    assert summary["micro_f1"] == pytest.approx(fixed["micro"]["f1"])
    assert summary["per_class"]["CD"]["threshold"] == pytest.approx(thresholds[3])

    # The macro-F1 interval is the generic bootstrap of sklearn's macro F1 at fixed thresholds.
    def sklearn_macro_f1(y, s):
        return skm.f1_score(y, s >= thresholds, average="macro", zero_division=0)

    with np.errstate(all="ignore"):
        generic = metrics.bootstrap_ci(sklearn_macro_f1, labels, scores, n_boot=200, seed=0)
    np.testing.assert_allclose(
        [summary["f1_ci_low"], summary["f1_ci_high"]], generic, atol=1e-12
    )


def test_summarize_binary_without_bootstrap_or_thresholds():
    rng = np.random.default_rng(15)
    y = rng.integers(0, 2, 80)
    p1 = rng.random(80)
    summary = metrics.summarize(y, p1, n_boot=0)
    assert summary["class_names"] == ["class_0"]
    assert summary["macro_auroc"] == pytest.approx(skm.roc_auc_score(y, p1))
    assert summary["macro_auroc_ci_low"] is None
    assert "f1" not in summary and "samples_f1" not in summary
    json.dumps(summary, allow_nan=False)
    with pytest.raises(ValueError, match="class names"):
        metrics.summarize(y, p1, n_boot=0, class_names=["a", "b"])


def test_multilabel_metrics_of_the_cpsc_studies_against_sklearn():
    """Subset accuracy (with its bootstrap CI), per-class F1 and macro F1 at thresholds chosen
    on a separate validation split, as xECGNet and the ResNet34 study report them."""
    labels, scores = _multilabel(250, 9, seed=21)
    val_labels, val_scores = _multilabel(150, 9, seed=22)
    thresholds = metrics.choose_thresholds(val_labels, val_scores)
    names = [f"c{k}" for k in range(9)]
    summary = metrics.summarize(labels, scores, thresholds=thresholds, n_boot=200, seed=3,
                                class_names=names)
    predictions = scores >= thresholds
    assert summary["subset_accuracy"] == pytest.approx(skm.accuracy_score(labels, predictions))
    assert summary["f1"] == pytest.approx(
        skm.f1_score(labels, predictions, average="macro", zero_division=0))
    per_class = skm.f1_score(labels, predictions, average=None, zero_division=0)
    assert [summary["per_class"][n]["f1"] for n in names] == pytest.approx(per_class.tolist())

    def sklearn_subset_accuracy(y, s):
        return skm.accuracy_score(y, s >= thresholds)

    generic = metrics.bootstrap_ci(sklearn_subset_accuracy, labels, scores, n_boot=200, seed=3)
    np.testing.assert_allclose(
        [summary["subset_accuracy_ci_low"], summary["subset_accuracy_ci_high"]], generic, atol=1e-12)
