"""ECE (equal-mass bins), Brier score and temperature scaling, against independent references:
a per-bin loop written from the definition, scikit-learn's Brier score, SciPy's scalar
minimiser, and the invariance of AUROC under a positive temperature."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from sklearn.metrics import brier_score_loss, roc_auc_score

from imn.train import calibration
from imn.train.metrics import macro_auroc


def _labels_from(logits: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random(logits.shape) < calibration.sigmoid(logits)).astype(np.float64)


def test_ece_matches_the_definition_with_equal_mass_bins():
    rng = np.random.default_rng(0)
    probs = rng.random((103, 2))
    labels = (rng.random((103, 2)) < 0.3).astype(float)
    got = calibration.expected_calibration_error(labels, probs, n_bins=10)
    for k in range(2):
        order = np.argsort(probs[:, k])
        bins = np.array_split(order, 10)  # sizes differ by at most one: equal mass
        assert {len(b) for b in bins} <= {10, 11}
        expected = sum(len(b) / 103 * abs(probs[b, k].mean() - labels[b, k].mean()) for b in bins)
        assert got[k] == pytest.approx(expected, abs=1e-12)


def test_ece_small_when_calibrated_large_when_overconfident():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 2, (20_000, 1))
    labels = _labels_from(logits, 2)
    assert calibration.expected_calibration_error(labels, calibration.sigmoid(logits))[0] < 0.02
    overconfident = calibration.sigmoid(10 * logits)
    assert calibration.expected_calibration_error(labels, overconfident)[0] > 0.1


def test_brier_matches_sklearn():
    rng = np.random.default_rng(3)
    probs, labels = rng.random((50, 3)), (rng.random((50, 3)) < 0.5).astype(int)
    got = calibration.brier_score(labels, probs)
    for k in range(3):
        assert got[k] == pytest.approx(brier_score_loss(labels[:, k], probs[:, k]), abs=1e-12)


def test_temperature_minimises_the_validation_cross_entropy():
    rng = np.random.default_rng(4)
    true_logits = rng.normal(0, 1.5, (5_000, 2))
    labels = _labels_from(true_logits, 5)
    fitted = calibration.fit_temperature(labels, 40.0 * true_logits)  # a saturated model

    def nll(log_t):
        p = calibration.sigmoid(40.0 * true_logits / np.exp(log_t))
        p = np.clip(p, 1e-300, 1 - 1e-16)
        return -np.mean(labels * np.log(p) + (1 - labels) * np.log1p(-p))

    reference = np.exp(minimize_scalar(nll, bounds=(-5, 10), method="bounded",
                                       options={"xatol": 1e-9}).x)
    assert fitted == pytest.approx(reference, rel=1e-4)
    assert fitted == pytest.approx(40.0, rel=0.1)  # it undoes the factor the data came from


def test_temperature_edge_cases():
    labels = np.array([[0.0], [1.0], [0.0], [1.0]])
    assert calibration.fit_temperature(labels, np.zeros((4, 1))) == 1.0
    # Logits that rank worse than chance: no positive temperature helps, clamp to flat.
    assert calibration.fit_temperature(labels, np.array([[3.0], [-3.0], [2.0], [-1.0]])) == 1e6
    with pytest.raises(ValueError, match="NaN"):
        calibration.fit_temperature(labels, np.array([[np.nan], [1.0], [0.0], [1.0]]))


@pytest.mark.parametrize("temperature", [0.01, 0.7, 300.0, 1e4])
def test_temperature_scaling_never_changes_auroc(temperature):
    rng = np.random.default_rng(6)
    logits = rng.normal(0, 300, (400, 3))  # saturated: float32 sigmoids would tie at 0 and 1
    labels = (rng.random((400, 3)) < calibration.sigmoid(logits / 300)).astype(float)
    # The scaled model ranks by logits / T: exactly the raw model's ranking.
    assert macro_auroc(labels, logits / temperature) == macro_auroc(labels, logits)
    assert roc_auc_score(labels[:, 0], logits[:, 0] / temperature) == pytest.approx(
        roc_auc_score(labels[:, 0], logits[:, 0]), abs=1e-12)
    # Its probabilities rank the same wherever they do not round to 0 or 1; saturated ones
    # tie (why the trainer scores the scaled model's AUROC on logits / T, not on sigmoids).
    scaled = calibration.sigmoid(logits / temperature)
    if np.all((scaled > 0) & (scaled < 1)) and len(np.unique(scaled)) == scaled.size:
        assert macro_auroc(labels, scaled) == pytest.approx(macro_auroc(labels, logits), abs=1e-12)


def test_summary_reports_raw_and_scaled_and_counts_saturated_probabilities():
    rng = np.random.default_rng(7)
    true_logits = rng.normal(0, 1, (2_000, 1))
    labels = _labels_from(true_logits, 8)
    logits = 200.0 * true_logits
    temperature = calibration.fit_temperature(labels, logits)
    summary = calibration.calibration_summary(labels, logits, temperature)
    assert summary["ece_scaled"] < summary["ece"] and summary["brier_scaled"] < summary["brier"]
    expected = int(np.sum(np.isin(calibration.sigmoid(logits).astype(np.float32), (0.0, 1.0))))
    assert summary["saturated"] == expected > 0
    with pytest.raises(ValueError, match="positive"):
        calibration.calibration_summary(labels, logits, 0.0)


def test_binary_logits_of_a_softmax_head_give_its_class_one_probability():
    logits = np.array([[0.3, 2.0], [5.0, -1.0]])
    softmax_p1 = np.exp(logits[:, 1]) / np.exp(logits).sum(axis=1)
    np.testing.assert_allclose(
        calibration.sigmoid(calibration.binary_logits(logits, "softmax"))[:, 0], softmax_p1)
    assert calibration.binary_logits(logits, "sigmoid") is not None
    with pytest.raises(ValueError, match="head"):
        calibration.binary_logits(logits, "tanh")


def test_ece_floor_with_one_bin_is_the_exact_mean_absolute_deviation_of_a_binomial():
    # One bin, every p = 0.5: ECE = |k/N - 0.5| with k ~ Binomial(N, 0.5), whose mean is
    # known exactly from the pmf.
    from scipy.stats import binom

    n = 40
    k = np.arange(n + 1)
    exact = float(np.sum(binom.pmf(k, n, 0.5) * np.abs(k / n - 0.5)))
    floor = calibration.ece_floor(np.full((n, 1), 0.5), n_bins=1, draws=20_000, seed=3)
    assert floor["mean"][0] == pytest.approx(exact, rel=0.03)
    assert floor["p95"][0] > floor["mean"][0]


def test_ece_floor_is_what_calibrated_labels_show_and_vanishes_when_saturated():
    rng = np.random.default_rng(4)
    probs = rng.uniform(0.05, 0.95, (52, 2))
    floor = calibration.ece_floor(probs, draws=2_000, seed=0)
    # An independent estimate: labels drawn by another generator from the same
    # probabilities, scored with expected_calibration_error.
    other = np.random.default_rng(99)
    observed = np.mean([calibration.expected_calibration_error(
        (other.random(probs.shape) < probs).astype(float), probs) for _ in range(2_000)], axis=0)
    np.testing.assert_allclose(floor["mean"], observed, rtol=0.05)
    assert np.all(floor["mean"] > 0.05)  # 52 records: far from 0 even when calibrated
    many = calibration.ece_floor(rng.uniform(0.05, 0.95, (5_000, 1)), draws=200)
    assert many["mean"][0] < floor["mean"].min() / 3  # the bias shrinks with more records
    saturated = calibration.ece_floor(np.array([[0.0], [1.0], [1.0], [0.0]]), n_bins=2)
    assert saturated["mean"][0] == 0.0
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        calibration.ece_floor(np.array([[1.5]]))


@pytest.mark.parametrize("head,weights", [("sigmoid", np.array([4.6, 0.5])),
                                          ("softmax", np.array([0.6, 2.8]))])
def test_prior_offset_is_where_the_weighted_loss_has_its_optimum(head, weights):
    # For a true probability q, minimise the expected weighted loss over the binary logit
    # numerically; its minimiser sits at logit(q) + prior_offset.
    q = np.array([0.1, 0.35, 0.8])
    offset = calibration.prior_offset(weights, head)
    for k in range(len(offset)):
        w_pos, w_neg = (weights[k], 1.0) if head == "sigmoid" else (weights[1], weights[0])
        for q_i in q:
            def loss(z, q_i=q_i, w_pos=w_pos, w_neg=w_neg):
                return -(w_pos * q_i * np.log(calibration.sigmoid(z))
                         + w_neg * (1 - q_i) * np.log(1 - calibration.sigmoid(z)))
            best = minimize_scalar(loss, bounds=(-20, 20), method="bounded",
                                   options={"xatol": 1e-10}).x
            assert best == pytest.approx(np.log(q_i / (1 - q_i)) + offset[k], abs=1e-5)
    with pytest.raises(ValueError, match="non-negative"):
        calibration.prior_offset(np.array([-1.0, 1.0]), head)


def test_a_class_weight_of_zero_leaves_the_prior_correction_out_instead_of_failing():
    # A class positive in every training record: pos_weight n_neg / n_pos = 0.
    offset = calibration.prior_offset(np.array([0.0, 2.0]), "sigmoid")
    assert offset[0] == -np.inf and offset[1] == pytest.approx(np.log(2.0))
    labels = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0]])
    summary = calibration.calibration_summary(labels, np.zeros((3, 2)), 1.0, logit_offset=offset)
    assert "ece_prior_corrected" not in summary and "logit_offset" not in summary
    assert "class weight" in summary["prior_correction"] and np.isfinite(summary["ece_floor"])


def test_summary_prior_correction_undoes_a_weighted_shift_that_temperature_cannot():
    rng = np.random.default_rng(11)
    true_logits = rng.normal(-1.0, 1.0, (4_000, 1))
    labels = _labels_from(true_logits, 12)
    offset = calibration.prior_offset(np.array([5.0]), "sigmoid")
    logits = true_logits + offset  # what a pos_weight-5 BCE converges to
    temperature = calibration.fit_temperature(labels, logits)
    summary = calibration.calibration_summary(labels, logits, temperature, logit_offset=offset)
    assert summary["logit_offset"] == pytest.approx([np.log(5.0)])
    assert summary["ece"] > 0.15 and summary["ece_scaled"] > 0.1
    assert summary["ece_prior_corrected"] < 0.03 < summary["ece_scaled"]
    assert summary["brier_prior_corrected"] < summary["brier"]
    # The floor is the ECE of labels drawn from the raw probabilities themselves.
    floor = calibration.ece_floor(calibration.sigmoid(logits))
    assert summary["ece_floor"] == pytest.approx(float(floor["mean"].mean()))
    assert "ece_prior_corrected" not in calibration.calibration_summary(labels, logits, temperature)
