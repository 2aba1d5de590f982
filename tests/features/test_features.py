"""Clinical features on synthetic ECGs, whose planted effects are known, and on bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("neurokit2")

from imn.data.dataset import LEADS  # noqa: E402
from imn.data.synthetic import CLASSES, EASY_DIFFICULTY, make_synthetic  # noqa: E402
from imn.features import (  # noqa: E402
    FEATURE_NAMES,
    GLOBAL_FEATURES,
    LEAD_FEATURES,
    extract_features,
    feature_unit,
)

N_RECORDS = 80
RATE = 100


@pytest.fixture(scope="module")
def synthetic():
    dataset = make_synthetic(N_RECORDS, RATE, seed=3, difficulty=EASY_DIFFICULTY)
    table = extract_features(dataset.signals, RATE, progress=False, use_cache=False)
    return dataset, table


def _territory_means(dataset, table, cls: str, feature: str):
    """Per record with ``cls``: mean of ``feature`` over the territory's leads and the rest."""
    k = CLASSES.index(cls)
    values = table.per_lead()[:, :, LEAD_FEATURES.index(feature)]
    rows = np.flatnonzero(dataset.labels[:, k] > 0)
    leads = dataset.evidence[rows, k].any(axis=1)  # (records, 12): the territory
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a record's all-NaN lead
        inside = np.array([np.nanmean(values[r, m]) for r, m in zip(rows, leads)])
        outside = np.array([np.nanmean(values[r, ~m]) for r, m in zip(rows, leads)])
    return inside, outside


@pytest.mark.slow
def test_names_units_and_shape(synthetic):
    _, table = synthetic
    assert len(LEAD_FEATURES) >= 34
    assert table.values.shape == (N_RECORDS, 12 * len(LEAD_FEATURES) + len(GLOBAL_FEATURES))
    assert table.names == FEATURE_NAMES and len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert all(name.split("_", 1)[0] in LEADS + ("global",) for name in FEATURE_NAMES)
    assert feature_unit("V2_ST60_mean") == "mV" and feature_unit("global_QTc") == "ms"
    # Easy synthetic records all delineate; most features are measurable in every record.
    assert table.n_failed == 0
    assert np.isfinite(table.values).mean() > 0.95


@pytest.mark.slow
def test_qrs_widened_records_measure_longer_qrs(synthetic):
    dataset, table = synthetic
    qrs = table.column("global_QRS_dur")
    norm = dataset.labels[:, CLASSES.index("NORM")] > 0
    wide = dataset.labels[:, CLASSES.index("QRSW")] > 0
    assert wide.sum() >= 5 and norm.sum() >= 10
    # Tolerance: group medians at least 10 ms apart (one sample at 100 Hz is 10 ms).
    assert np.nanmedian(qrs[wide]) >= np.nanmedian(qrs[norm]) + 10
    assert 60 <= np.nanmedian(qrs[norm]) <= 130  # a normal QRS lasts 80-120 ms


@pytest.mark.slow
def test_st_elevation_is_raised_in_its_territory(synthetic):
    dataset, table = synthetic
    inside, outside = _territory_means(dataset, table, "STE", "ST60_mean")
    assert len(inside) >= 5
    # Tolerance (the shift is drawn per record): 90% of STE records' territories are raised
    # by >= 0.05 mV at J + 60 ms, every one above its other leads; NORM records sit within
    # 0.03 mV of the isoelectric line (median).
    assert np.mean(inside > 0.05) >= 0.9
    assert np.all(inside > outside)
    norm = dataset.labels[:, CLASSES.index("NORM")] > 0
    st = table.per_lead()[norm][:, :, LEAD_FEATURES.index("ST60_mean")]
    assert abs(np.nanmedian(st)) < 0.03


@pytest.mark.slow
def test_t_wave_inversion_is_negative_in_its_territory(synthetic):
    dataset, table = synthetic
    inside, outside = _territory_means(dataset, table, "TINV", "T_amp_mean")
    assert len(inside) >= 5
    # Tolerance: the degree of inversion is drawn per record (some only flatten the T), so
    # the median territory T is negative and most records have it below their other leads;
    # NORM records' T waves are positive on average.
    assert np.nanmedian(inside) < 0
    assert np.nanmean(inside < outside) >= 0.7
    norm = dataset.labels[:, CLASSES.index("NORM")] > 0
    t_norm = table.per_lead()[norm][:, :, LEAD_FEATURES.index("T_amp_mean")]
    assert np.nanmedian(t_norm) > 0.05


def test_failed_record_is_nan_and_counted():
    dataset = make_synthetic(2, RATE, seed=0, difficulty=EASY_DIFFICULTY)
    signals = dataset.signals.copy()
    signals[1] = 0.0  # a flat line: no beats to find
    table = extract_features(signals, RATE, progress=False, use_cache=False)
    assert table.failed.tolist() == [False, True] and table.n_failed == 1
    assert np.isnan(table.values[1]).all() and np.isfinite(table.values[0]).any()
    assert "R peak" in table.failure_reasons[1] or "QRS" in table.failure_reasons[1]


def test_cache_round_trip(tmp_path):
    dataset = make_synthetic(3, RATE, seed=0, difficulty=EASY_DIFFICULTY)
    first = extract_features(dataset.signals, RATE, progress=False, cache_dir=tmp_path)
    assert len(list((tmp_path / "features").glob("*.npz"))) == 1
    second = extract_features(dataset.signals, RATE, progress=False, cache_dir=tmp_path)
    np.testing.assert_array_equal(first.values, second.values)
    np.testing.assert_array_equal(first.fiducials, second.fiducials)
    assert list(second.fiducial_leads) == list(first.fiducial_leads)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"\(N, L, 12\)"):
        extract_features(np.zeros((2, 100, 8)), RATE, use_cache=False)
    signals = np.zeros((2, 1000, 12))
    signals[1, 5, 3] = np.nan
    with pytest.raises(ValueError, match="row 1"):
        extract_features(signals, RATE, use_cache=False)
    with pytest.raises(ValueError, match="fiducial_leads"):
        extract_features(np.zeros((1, 1000, 12)), RATE, fiducial_leads=("X",), use_cache=False)


@pytest.mark.slow
def test_worker_processes_give_the_same_table():
    dataset = make_synthetic(20, RATE, seed=2, difficulty=EASY_DIFFICULTY)
    serial = extract_features(dataset.signals, RATE, progress=False, use_cache=False)
    parallel = extract_features(dataset.signals, RATE, progress=False, use_cache=False, workers=2)
    np.testing.assert_array_equal(serial.values, parallel.values)
    np.testing.assert_array_equal(serial.fiducials, parallel.fiducials)
