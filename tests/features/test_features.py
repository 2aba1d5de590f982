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
    np.testing.assert_array_equal(first.extreme_beats, second.extreme_beats)
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
    np.testing.assert_array_equal(serial.extreme_beats, parallel.extreme_beats)


def test_qrs_bounds_in_the_p_wave_or_before_the_s_peak_are_refilled_from_plausible_beats():
    """An onset 134 ms before R (the P wave, as NeuroKit2's DWT returns it on some records)
    is replaced by the beat's Q peak minus the plausible beats' gap; an offset before the S
    peak by S peak plus their gap."""
    from imn.features.delineate import FID, FIDUCIALS, _fill_qrs_bounds, _screen_qrs_bounds

    rate = 500
    table = np.full((3, len(FIDUCIALS)), np.nan)
    r = np.array([500.0, 1000.0, 1500.0])
    table[:, FID["R_peak"]] = r
    table[:, FID["Q_peak"]] = r - 14
    table[:, FID["S_peak"]] = r + 12
    table[:, FID["QRS_on"]] = r - [22, 67, 22]  # beat 1's onset: 134 ms before R
    table[:, FID["QRS_off"]] = r + [21, 21, 8]  # beat 2's offset: before its S peak
    _screen_qrs_bounds(table, rate)
    _fill_qrs_bounds(table, rate)
    np.testing.assert_array_equal(table[:, FID["QRS_on"]], r - 22)  # gap Q - onset 8 samples
    np.testing.assert_array_equal(table[:, FID["QRS_off"]], r + 21)  # gap offset - S 9 samples


def test_a_real_record_with_an_onset_in_its_p_wave_gets_a_normal_qrs(ptbxl_root):
    """PTB-XL ecg_id 2 (NORM, 500 Hz): NeuroKit2 puts the QRS onset 134 ms before R, in the
    P wave, on every beat; after screening the onsets sit within 60 ms of the Q peak and the
    QRS lasts as a normal one does."""
    from imn.data.ptbxl import read_record
    from imn.features.delineate import FID, bandpass, delineate_best

    digital, gain, baseline = read_record(ptbxl_root, "records500/00000/00002_hr", 500, 2)
    signals = (digital - baseline) / gain
    table, _ = delineate_best(bandpass(signals, 500), 500)
    onset, q = table[:, FID["QRS_on"]], table[:, FID["Q_peak"]]
    both = np.isfinite(onset) & np.isfinite(q)
    assert both.sum() >= len(table) // 2
    assert np.all(q[both] - onset[both] <= 0.06 * 500)
    duration_ms = np.nanmedian(table[:, FID["QRS_off"]] - onset) * 2
    assert 60 <= duration_ms <= 120


@pytest.mark.parametrize("rate", [100, 500])
def test_the_baseline_window_has_one_length_whatever_the_onsets_parity(rate):
    from imn.features.delineate import FID, FIDUCIALS
    from imn.features.measure import wave_spans

    table = np.full((2, len(FIDUCIALS)), np.nan)
    table[:, FID["QRS_on"]] = [400, 401]  # an even and an odd onset
    start, end = wave_spans(table, "baseline", rate)
    assert end[0] - start[0] == end[1] - start[1]
    assert np.all(end < table[:, FID["QRS_on"]])  # the window ends before the onset


def test_the_beat_that_sets_a_max_is_the_one_made_largest():
    """Double one beat's QRS in every lead: R_amp_max's beat is that beat wherever the R wave
    is clearly positive, and R_amp_min's is another one (the beats are alike otherwise)."""
    from imn.features import EXTREME_FEATURES
    from imn.features.delineate import FID

    dataset = make_synthetic(1, RATE, seed=4, difficulty=EASY_DIFFICULTY)
    before = extract_features(dataset.signals, RATE, progress=False, use_cache=False)
    beats = before.fiducials[0][np.isfinite(before.fiducials[0][:, FID["QRS_on"]])
                                & np.isfinite(before.fiducials[0][:, FID["QRS_off"]])]
    assert len(beats) >= 5
    chosen = beats[len(beats) // 2]
    signals = dataset.signals.copy()
    window = slice(int(chosen[FID["QRS_on"]]), int(chosen[FID["QRS_off"]]) + 1)
    signals[0, window] *= 2.0
    after = extract_features(signals, RATE, progress=False, use_cache=False)
    r_peaks = after.fiducials[0][:, FID["R_peak"]]
    row = int(np.nanargmin(np.abs(r_peaks - chosen[FID["R_peak"]])))
    positive = before.per_lead()[0, :, LEAD_FEATURES.index("R_amp_mean")] > 0.2
    assert positive.sum() >= 4
    top = after.extreme_beats[0, :, EXTREME_FEATURES.index("R_amp_max")]
    bottom = after.extreme_beats[0, :, EXTREME_FEATURES.index("R_amp_min")]
    assert np.all(top[positive] == row), (top, row)
    assert np.all((bottom[positive] != row) & (bottom[positive] >= 0))
    # A failed record has no beat for any feature.
    flat = extract_features(np.zeros((1, 1000, 12)), RATE, progress=False, use_cache=False)
    assert flat.extreme_beats.shape == (1, 12, len(EXTREME_FEATURES))
    assert np.all(flat.extreme_beats == -1)
