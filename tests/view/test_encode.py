"""The viewer's encodings (imn.view.encode) and the maps it derives (imn.view.page)."""

from __future__ import annotations

import numpy as np
import pytest

from imn.view import encode
from imn.view.collect import RunView, ExplainedEcg
from imn.view.page import imn_weights, method_traits


def test_mulaw_round_trip_stays_within_the_stated_bound():
    rng = np.random.default_rng(0)
    values = rng.standard_normal((1000, 12)) * np.exp(rng.uniform(-8, 0, (1000, 12)))
    codes, peak = encode.mulaw_encode(values)
    assert codes.dtype == np.int8 and peak == pytest.approx(np.abs(values).max())
    decoded = encode.mulaw_decode(codes, peak)
    bound = encode.MULAW_RELATIVE_ERROR * (np.abs(values) + peak / encode.MU)
    assert np.all(np.abs(decoded - values) <= bound * (1 + 1e-9))
    # The sign survives and the peak is exact.
    assert np.all(np.sign(decoded[np.abs(values) > peak / encode.MU]) == np.sign(values[np.abs(values) > peak / encode.MU]))
    assert np.abs(decoded).max() == pytest.approx(peak)


def test_mulaw_keeps_nan_as_undefined_and_all_zero_maps_as_zero():
    codes, peak = encode.mulaw_encode(np.array([[np.nan, 1.0, -2.0]]))
    assert codes[0, 0] == encode.UNDEFINED and peak == 2.0
    assert np.isnan(encode.mulaw_decode(codes, peak)[0, 0])
    codes, peak = encode.mulaw_encode(np.zeros((4, 12)))
    assert peak == 0.0 and not codes.any()


def test_bin_mean_and_rates():
    values = np.arange(20, dtype=float).reshape(10, 2)
    np.testing.assert_array_equal(encode.bin_mean(values, 5), [[4, 5], [14, 15]])
    values[0, 0] = np.nan
    assert encode.bin_mean(values, 5)[0, 0] == pytest.approx(np.mean([2, 4, 6, 8]))
    assert encode.bin_factor(100, encode.OVERLAY_RATE) == 1
    assert encode.bin_factor(500, encode.OVERLAY_RATE) == 5
    assert encode.bin_factor(500, encode.SIGNAL_RATE) == 2


def test_signal_encoding_is_microvolts_little_endian():
    import base64

    signal = np.linspace(-3, 3, 24).reshape(2, 12)
    raw = np.frombuffer(base64.b64decode(encode.encode_signal(signal, 1)), "<i2").reshape(2, 12)
    np.testing.assert_allclose(raw / 1000, signal, atol=5e-4)


def test_spans_in_seconds_per_lead():
    mask = np.zeros((100, 12), bool)
    mask[10:20, 3] = True
    mask[90:, 3] = True
    spans = encode.spans_seconds(mask, 100)
    assert spans[3] == [[0.1, 0.2], [0.9, 1.0]] and spans[0] == []


def _view(maps_per_ecg):
    ecgs = [ExplainedEcg(i, 0, np.zeros((50, 12)), np.ones((50, 12)), maps) for i, maps in enumerate(maps_per_ecg)]
    return RunView("m", None, "m", "t", 100, ("A",), "mV", "", ecgs)


def test_method_traits_find_time_only_and_nonnegative_maps():
    rng = np.random.default_rng(1)
    strip = np.repeat(rng.uniform(0, 1, (50, 1)), 12, axis=1)
    signed = rng.standard_normal((50, 12))
    view = _view([{"gradcam": strip, "saliency": signed}, {"gradcam": strip * 2, "saliency": signed}])
    assert method_traits(view, "gradcam") == {"label": "Grad-CAM", "kind": "magnitude", "time_only": True}
    assert method_traits(view, "saliency")["kind"] == "signed"
    assert not method_traits(view, "saliency")["time_only"]
    # One ECG with a lead-resolved map makes the method lead-resolved.
    view.ecgs[1].maps["gradcam"] = rng.uniform(0, 1, (50, 12))
    assert not method_traits(view, "gradcam")["time_only"]


def test_imn_weights_are_recovered_from_w_times_x():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((50, 12)).astype(np.float32)
    x[3, 4] = 0.0
    weights = rng.standard_normal((50, 12)).astype(np.float32)
    ecg = ExplainedEcg(0, 1, x, x, {"imn": weights * x})
    recovered = imn_weights(ecg)
    assert np.isnan(recovered[3, 4])
    finite = np.isfinite(recovered)
    np.testing.assert_allclose(recovered[finite], weights[finite], rtol=1e-6)
    assert imn_weights(ExplainedEcg(0, 1, x, x, {"saliency": x})) is None
