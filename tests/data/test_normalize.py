import numpy as np
import pytest

from imn.data.normalize import StandardScaler, normalize_splits, zscore_per_record


def test_zscore_gives_each_lead_of_each_record_zero_mean_unit_std():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(5, 400, 12)) * rng.uniform(0.1, 5, size=(5, 1, 12))
    z = zscore_per_record(x)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z.mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=1), 1, atol=1e-4)


def test_zscore_keeps_a_flat_lead_finite():
    x = np.zeros((1, 100, 12), np.float32)
    x[0, :, 1] = np.sin(np.arange(100))
    z = zscore_per_record(x)
    assert np.isfinite(z).all()
    assert (z[0, :, 0] == 0).all()


def test_standard_scaler_matches_numpy_statistics_and_uses_train_only():
    rng = np.random.default_rng(1)
    train = rng.normal(1.0, 3.0, size=(37, 50, 12)).astype(np.float32)
    test = rng.normal(-5.0, 0.1, size=(9, 50, 12)).astype(np.float32)
    scaler = StandardScaler.fit(train, chunk=8)  # chunking must not change the statistics
    np.testing.assert_allclose(scaler.mean, train.reshape(-1, 12).mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(scaler.std, train.reshape(-1, 12).std(axis=0), rtol=1e-5)
    train_n, (test_n,), fitted = normalize_splits(train, [test], "standard")
    np.testing.assert_allclose(fitted.mean, scaler.mean)
    # The test split is transformed with the training statistics, so it is far from 0.
    assert abs(test_n.mean()) > 1.0
    np.testing.assert_allclose(train_n.reshape(-1, 12).mean(axis=0), 0, atol=1e-4)


def test_standard_scaler_round_trips_through_json(tmp_path):
    scaler = StandardScaler(mean=np.arange(12, dtype=np.float32), std=np.ones(12, np.float32) * 2)
    scaler.save(tmp_path / "scaler.json")
    again = StandardScaler.load(tmp_path / "scaler.json")
    np.testing.assert_array_equal(again.mean, scaler.mean)
    np.testing.assert_array_equal(again.std, scaler.std)


def test_unknown_normalisation_is_an_error():
    with pytest.raises(ValueError, match="unknown normalisation"):
        normalize_splits(np.zeros((1, 4, 12)), [], "minmax")
