"""Exact tree SHAP of the feature route and its map onto the ECG."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("neurokit2")
xgboost = pytest.importorskip("xgboost")

from baselines.tabular import make_estimator  # noqa: E402
from baselines.tree_shap import shap_to_ecg, tree_shap  # noqa: E402
from imn.data.dataset import LEADS  # noqa: E402
from imn.data.synthetic import CLASSES, EASY_DIFFICULTY, make_synthetic  # noqa: E402
from imn.faithfulness.localization import dilate_time, relevance_mass_accuracy  # noqa: E402
from imn.features import GLOBAL_FEATURES, LEAD_FEATURES, extract_features  # noqa: E402
from imn.features.delineate import FID  # noqa: E402

RATE = 100


@pytest.fixture(scope="module")
def fitted():
    dataset = make_synthetic(48, RATE, seed=5, difficulty=EASY_DIFFICULTY)
    table = extract_features(dataset.signals, RATE, progress=False, use_cache=False)
    labels = dataset.labels[:, CLASSES.index("STE")]
    model = make_estimator("xgboost", {"n_estimators": 20, "max_depth": 3}).fit(table.values, labels)
    return dataset, table, model


@pytest.mark.slow
def test_tree_shap_is_exact_and_the_map_keeps_each_leads_sum(fitted):
    dataset, table, model = fitted
    values, bias = tree_shap(model, table.values)
    margin = model.predict(table.values, output_margin=True)
    np.testing.assert_allclose(values.sum(1) + bias, margin, rtol=1e-4, atol=1e-4)

    attribution = shap_to_ecg(values, table)
    assert attribution.shape == dataset.signals.shape
    n_lead = len(LEADS) * len(LEAD_FEATURES)
    per_lead = values[:, :n_lead].reshape(len(values), len(LEADS), -1).sum(2)
    expected = per_lead + values[:, n_lead:].sum(1, keepdims=True) / len(LEADS)
    np.testing.assert_allclose(attribution.sum(1), expected, rtol=1e-4, atol=1e-5)
    assert len(GLOBAL_FEATURES) == values.shape[1] - n_lead


def _unit_map(table, feature_per_lead: str, leads) -> np.ndarray:
    values = np.zeros_like(table.values)
    for lead in leads:
        values[:, table.names.index(f"{lead}_{feature_per_lead}")] = 1.0
    return shap_to_ecg(values, table)


@pytest.mark.slow
@pytest.mark.parametrize("cls, feature", [("QRSW", "QRS_area"), ("STE", "ST60_mean"),
                                          ("TINV", "T_amp_mean")])
def test_spans_lie_on_the_planted_waves(fitted, cls, feature):
    dataset, table, _ = fitted
    k = CLASSES.index(cls)
    rows = np.flatnonzero(dataset.labels[:, k] > 0)
    assert len(rows) >= 3
    masks = dataset.evidence[rows, k]  # (R, L, 12)
    attribution = np.stack([
        _unit_map(table.subset([r]), feature, [LEADS[j] for j in np.flatnonzero(masks[i].any(0))])[0]
        for i, r in enumerate(rows)
    ])
    # Tolerance: the delineated wave may overrun the planted window by up to 20 ms (2 samples).
    mass = np.asarray(relevance_mass_accuracy(attribution, dilate_time(masks, 2)))
    assert np.median(mass) >= 0.8, mass


def test_bad_shapes_are_named(fitted):
    _, table, _ = fitted
    with pytest.raises(ValueError, match="do not match the feature table"):
        shap_to_ecg(np.zeros((2, 3)), table)
    with pytest.raises(TypeError, match="XGBoost"):
        tree_shap(make_estimator("decision_tree"), table.values)


def test_a_max_or_min_feature_lands_on_the_beat_that_sets_it(fitted):
    """V2_R_amp_max is one beat's R wave: its SHAP value goes to that beat's QRS in V2, not to
    every beat's. A table without the beats (built before they were kept) spreads it."""
    import dataclasses

    from baselines.tree_shap import extreme_beat_spans
    from imn.features import EXTREME_FEATURES

    _, table, _ = fitted
    lead, e = LEADS.index("V2"), EXTREME_FEATURES.index("R_amp_max")
    first, last = extreme_beat_spans(table)
    rows = np.flatnonzero(first[:, lead, e] >= 0)
    assert len(rows) >= 40
    one_beat = _unit_map(table, "R_amp_max", ["V2"])
    spread = _unit_map(dataclasses.replace(table, extreme_beats=None), "R_amp_max", ["V2"])
    for i in rows:
        column = one_beat[i, :, lead]
        inside = np.zeros(column.shape, bool)
        inside[first[i, lead, e]:last[i, lead, e] + 1] = True
        np.testing.assert_allclose(column[inside].sum(), 1.0, rtol=1e-5)
        assert not np.any(column[~inside])
        assert np.count_nonzero(spread[i, :, lead]) > 2 * inside.sum()  # several beats
        np.testing.assert_allclose(spread[i, :, lead].sum(), 1.0, rtol=1e-5)
    # The beat is one of the record's: its QRS holds the record's R peak of that beat.
    peaks = table.fiducials[rows, table.extreme_beats[rows, lead, e], FID["R_peak"]]
    assert np.all((first[rows, lead, e] <= peaks) & (peaks <= last[rows, lead, e]))
