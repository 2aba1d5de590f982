"""Localisation metrics against hand-computed values and sklearn / scipy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from sklearn.metrics import roc_auc_score

from imn.faithfulness import (
    mask_auroc,
    misplaced_attribution,
    oracle_attribution,
    pointing_game,
    rank_correlation,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
)
from imn.faithfulness.localization import midranks


@pytest.fixture(scope="module")
def tiny():
    """Five records of 4 samples x 2 leads (values chosen so every score is hand-checkable).

    0: a generic record; 1: empty mask; 2: all-zero attribution; 3: the maximum is tied
    between a mask sample and a non-mask sample; 4: only negative relevance.
    """
    a = np.zeros((5, 4, 2), np.float32)
    m = np.zeros((5, 4, 2), bool)
    a[0] = [[0.1, 0.5], [0.9, -1.0], [0.0, 0.2], [0.3, 0.0]]
    m[0, 1, 0] = m[0, 2, 1] = True
    a[1] = a[0]
    m[2, 0, 0] = m[2, 3, 1] = True
    a[3] = [[0.7, 0.0], [0.0, 0.0], [0.0, 0.7], [0.1, 0.0]]
    m[3, 0, 0] = True
    a[4] = -np.abs(a[0]) - 0.1
    m[4] = m[0]
    return a, m


def test_pointing_game(tiny):
    a, m = tiny
    np.testing.assert_array_equal(np.asarray(pointing_game(a, m)), [1.0, np.nan, 0.0, 0.5, 0.0])
    # |a| peaks at (1, 1) = -1.0, outside the mask; one sample of tolerance along time
    # reaches the mask sample (2, 1).
    np.testing.assert_array_equal(np.asarray(pointing_game(a, m, absolute=True))[[0, 4]],
                                  [0.0, 0.0])
    np.testing.assert_array_equal(
        np.asarray(pointing_game(a, m, absolute=True, tolerance=1))[[0, 4]], [1.0, 1.0]
    )


def test_relevance_mass_accuracy(tiny):
    a, m = tiny
    got = np.asarray(relevance_mass_accuracy(a, m))
    # Positive relevance: total 0.1+0.5+0.9+0.2+0.3 = 2.0, inside 0.9+0.2 = 1.1.
    # Record 3: 0.7 of 0.7 + 0.7 + 0.1.
    np.testing.assert_allclose(got, [0.55, np.nan, 0.0, 0.7 / 1.5, 0.0], rtol=1e-6)
    got_abs = np.asarray(relevance_mass_accuracy(a, m, absolute=True))
    np.testing.assert_allclose(got_abs[0], 1.1 / 3.0, rtol=1e-6)
    # Record 4: |a| = |a0| + 0.1 everywhere: (1.0 + 0.3) / (3.0 + 0.8).
    np.testing.assert_allclose(got_abs[4], 1.3 / 3.8, rtol=1e-6)


def test_relevance_rank_accuracy(tiny):
    a, m = tiny
    got = np.asarray(relevance_rank_accuracy(a, m))
    # 0: K = 2, top two 0.9 (in) and 0.5 (out). 2: all 8 tie, K = 2: each gets 2/8 of a
    # place, 2 mask samples -> 2 * 0.25 / 2. 3: K = 1, the 0.7 tie shares one place: 1/2.
    # 4: no positive relevance: like the all-zero record 2, every sample ties: 0.25.
    np.testing.assert_allclose(got, [0.5, np.nan, 0.25, 0.5, 0.25], rtol=1e-6)
    got_abs = np.asarray(relevance_rank_accuracy(a, m, absolute=True))
    np.testing.assert_allclose(got_abs[0], 0.5, rtol=1e-6)  # 1.0 (out), 0.9 (in)


def test_rank_accuracy_counts_only_positive_relevance_as_evidence():
    # Strongly negative everywhere, least negative on the mask: no evidence *for* the class,
    # so the top K is a tie of zeros (chance, K / F), not the mask (1.0).
    a = -np.ones((1, 10, 2), np.float32)
    m = np.zeros(a.shape, bool)
    m[0, 2:4, 0] = True
    a[m] = -0.01
    np.testing.assert_allclose(np.asarray(relevance_rank_accuracy(a, m)), [2 / 20], rtol=1e-6)
    assert float(np.asarray(pointing_game(a, m))[0]) == 0.0
    assert float(np.asarray(relevance_mass_accuracy(a, m))[0]) == 0.0


@pytest.mark.parametrize("metric", [pointing_game, relevance_mass_accuracy,
                                    relevance_rank_accuracy, mask_auroc])
def test_every_metric_is_undefined_for_a_full_mask_or_a_broken_map(tiny, metric):
    a, m = tiny
    full = np.ones_like(m[:2])
    assert np.isnan(np.asarray(metric(a[:2], full))).all(), "a mask covering the record: any map hits"
    broken = a[[0, 0]].copy()
    broken[1, 3, 0] = np.nan
    got = np.asarray(metric(broken, m[[0, 0]]))
    assert np.isfinite(got[0]) and np.isnan(got[1]), "a NaN in the map is not scored as a miss"


def test_mask_auroc_hand_values(tiny):
    a, m = tiny
    got = np.asarray(mask_auroc(a, m, absolute=False))
    # 2: all relevance 0 -> ties -> 0.5. 3: the positive (0.7) beats 6 negatives, ties 1.
    np.testing.assert_allclose(got[[1, 2, 3]], [np.nan, 0.5, 6.5 / 7], rtol=1e-6)
    full = np.ones((1, 4, 2), bool)
    assert np.isnan(np.asarray(mask_auroc(a[:1], full))[0])


@pytest.mark.parametrize("absolute", [True, False])
def test_mask_auroc_equals_sklearn(absolute):
    rng = np.random.default_rng(0)
    a = np.round(rng.normal(size=(6, 50, 12)), 1).astype(np.float32)  # ties
    m = rng.uniform(size=a.shape) < np.linspace(0.02, 0.6, 6)[:, None, None]
    m[:, 10:20, 3] = True
    a[m] += 0.3  # informative on average
    got = np.asarray(mask_auroc(a, m, absolute=absolute))
    score = np.abs(a) if absolute else np.maximum(a, 0)
    for b in range(6):
        want = roc_auc_score(m[b].ravel(), score[b].ravel())
        np.testing.assert_allclose(got[b], want, atol=1e-6)


def test_mask_auroc_precision_at_500_hz():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(1, 5000, 12)).astype(np.float32)
    m = np.zeros(a.shape, bool)
    m[0, 1000:3500] = True  # 30 000 positives, 30 000 negatives
    a[m] += 0.1
    want = roc_auc_score(m.ravel(), np.abs(a).ravel())
    np.testing.assert_allclose(np.asarray(mask_auroc(a, m))[0], want, atol=1e-5)


def test_midranks_and_rank_correlation_match_scipy():
    rng = np.random.default_rng(2)
    a = np.round(rng.normal(size=(3, 40, 12)), 1).astype(np.float32)
    b = (a + np.round(rng.normal(size=a.shape), 1)).astype(np.float32)
    np.testing.assert_array_equal(
        np.asarray(midranks(a.reshape(3, -1))),
        np.stack([scipy.stats.rankdata(row) for row in a.reshape(3, -1)]),
    )
    for absolute in (True, False):
        got = np.asarray(rank_correlation(a, b, absolute=absolute))
        f = np.abs if absolute else (lambda v: v)
        want = [scipy.stats.spearmanr(f(a[i]).ravel(), f(b[i]).ravel())[0] for i in range(3)]
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_rejects_mismatched_shapes(tiny):
    a, m = tiny
    with pytest.raises(ValueError, match="mask must have"):
        pointing_game(a, m[:, :2])
    with pytest.raises(ValueError, match="batch, time, lead"):
        mask_auroc(a[0], m[0])


# ---------------------------------------------------------------------- reference rows
@pytest.fixture(scope="module")
def planted_masks():
    """``(N, 1000, 12)`` masks of one local planted finding per record (QRSW, STE or TINV)
    from 150 synthetic records at 100 Hz (N = 64), and the records' AFIB labels."""
    from imn.data.synthetic import CLASSES, make_synthetic

    data = make_synthetic(150, 100, seed=11)
    fraction = data.evidence.mean(axis=(2, 3))
    local = (data.labels > 0) & (fraction > 0) & (fraction < 1)
    rows = np.flatnonzero(local.any(axis=1))
    target = local[rows].argmax(axis=1)
    return data.evidence[rows, target], data.labels[rows, CLASSES.index("AFIB")] > 0


def _all_scores(attribution, mask):
    return {name: np.asarray(fn(attribution, mask)) for name, fn in (
        ("pointing_game", pointing_game), ("relevance_mass_accuracy", relevance_mass_accuracy),
        ("relevance_rank_accuracy", relevance_rank_accuracy), ("mask_auroc", mask_auroc))}


def test_oracle_attribution_scores_one_on_every_metric(planted_masks):
    mask, _ = planted_masks
    assert len(mask) >= 50
    scores = _all_scores(oracle_attribution(mask), mask)
    np.testing.assert_array_equal(scores.pop("pointing_game"), 1.0)
    for name, values in scores.items():  # float32 sums: 1 to within a few ulp
        np.testing.assert_allclose(values, 1.0, rtol=0, atol=1e-6, err_msg=name)


def test_random_attribution_has_mask_auroc_one_half(planted_masks):
    """Gaussian noise as a map: each record's mask AUROC is a Mann-Whitney statistic over
    ~12,000 samples, so the mean over 50+ records lands within 0.01 of 0.5."""
    mask, _ = planted_masks
    noise = np.random.default_rng(0).normal(size=mask.shape).astype(np.float32)
    scores = _all_scores(noise, mask)
    assert abs(scores["mask_auroc"].mean() - 0.5) < 0.01
    # Mass accuracy of a map that ignores the mask is the mask's share of the record.
    np.testing.assert_allclose(scores["relevance_mass_accuracy"].mean(), mask.mean(axis=(1, 2)).mean(),
                               atol=0.02)


def test_misplaced_attribution_keeps_the_shape_and_misses(planted_masks):
    mask, _ = planted_masks
    moved = misplaced_attribution(mask)
    # Same size per record and per lead; moved in time only.
    np.testing.assert_array_equal(moved.sum(axis=1), mask.sum(axis=1))
    overlap = (moved.astype(bool) & mask).sum(axis=(1, 2)) / mask.sum(axis=(1, 2))
    # Most masks fit between their own copies; irregular beats leave a little overlap.
    assert np.mean(overlap == 0) > 0.8 and overlap.max() < 0.1
    scores = _all_scores(moved, mask)
    np.testing.assert_allclose(scores["pointing_game"], overlap, atol=1e-6)
    assert scores["mask_auroc"].mean() < 0.5
    assert np.all(scores["mask_auroc"] <= 0.5 + 1e-6)


def test_misplaced_attribution_hand_example():
    mask = np.zeros((2, 8, 2), bool)
    mask[0, 0:2, 0] = True  # two samples: the first shift that clears them is 2
    mask[1, [0, 4], 1] = True  # period 4: shifts 1, 2, 3 clear it; the smallest wins
    moved = misplaced_attribution(mask)
    expected = np.zeros_like(mask)
    expected[0, 2:4, 0] = True
    expected[1, [1, 5], 1] = True
    np.testing.assert_array_equal(moved, expected.astype(np.float32))
    with pytest.raises(ValueError, match="batch, time, lead"):
        misplaced_attribution(mask[0])
