"""Grad-CAM (baselines/gradcam.py via imn.explain.attribute) against a hand computation in
NumPy on tiny models whose head is global average pooling + linear (there the gradient of
logit k w.r.t. feature A[t, c] is kernel[c, k] / T'), and shape/lead checks on the real
baselines."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from baselines.gradcam import upsample_time, window_centres
from baselines.inception1d import Inception1D
from baselines.resnet1d import ResNet1dWang
from imn.explain import attribute

LEADS = 12


def upsample_reference(cam: np.ndarray, length: int) -> np.ndarray:
    """Linear interpolation over axis 0 with half-sample-centred alignment, edges held."""
    steps = cam.shape[0]
    source = np.clip((np.arange(length) + 0.5) * steps / length - 0.5, 0, steps - 1)
    low = np.floor(source).astype(int)
    high = np.minimum(low + 1, steps - 1)
    frac = (source - low).reshape(-1, *([1] * (cam.ndim - 1)))
    return cam[low] * (1 - frac) + cam[high] * frac


class GapLinear1d(nnx.Module):
    """features: tanh(strided conv) ``(B, T', C)`` (signed, so the ReLU bites);
    head: mean over time + linear."""

    def __init__(self, num_classes: int, *, stride: int, head: str = "sigmoid", rngs):
        self.head_type = head
        self.conv = nnx.Conv(LEADS, 5, (7,), strides=(stride,), rngs=rngs)
        self.dense = nnx.Linear(5, num_classes, rngs=rngs)

    def features(self, x):
        return jnp.tanh(self.conv(x))

    def head(self, features):
        return self.dense(features.mean(axis=1))

    def __call__(self, x):
        return self.head(self.features(x))


class GapLinear2d(nnx.Module):
    """features: tanh(conv over (time, lead), stride 2 in time) ``(B, T', 12, C)``;
    head: mean over time and leads + linear."""

    def __init__(self, num_classes: int, *, rngs):
        self.conv = nnx.Conv(1, 4, (5, 3), strides=(2, 1), rngs=rngs)
        self.dense = nnx.Linear(4, num_classes, rngs=rngs)

    def features(self, x):
        return jnp.tanh(self.conv(x[..., None]))

    def head(self, features):
        return self.dense(features.mean(axis=(1, 2)))

    def __call__(self, x):
        return self.head(self.features(x))


def hand_gradcam(features: np.ndarray, contrast: np.ndarray, length: int) -> np.ndarray:
    """``features (T', [12,] C)``, ``contrast (C,)`` = d s / d(pooled feature) -> ``(L, 12)``."""
    positions = np.prod(features.shape[:-1])  # the pooled mean divides by all positions
    channel_weights = contrast / positions
    cam = np.maximum(features @ channel_weights, 0.0)
    cam = upsample_reference(cam, length)
    return cam if cam.ndim == 2 else np.repeat(cam[:, None], LEADS, axis=1)


@pytest.mark.parametrize("length, stride", [(50, 3), (64, 4)])
def test_gradcam_1d_equals_hand_computation(length, stride):
    model = GapLinear1d(3, stride=stride, rngs=nnx.Rngs(0))
    x = np.asarray(jax.random.normal(jax.random.key(1), (2, length, LEADS)))
    target = np.array([2, 0])
    cam = np.asarray(attribute("gradcam", model, x, target))
    features = np.asarray(model.features(jnp.asarray(x)), np.float64)
    assert features.shape[1] == -(-length // stride)
    kernel = np.asarray(model.dense.kernel[...], np.float64)
    for b in range(2):
        expected = hand_gradcam(features[b], kernel[:, target[b]], length)
        np.testing.assert_allclose(cam[b], expected, rtol=1e-5, atol=1e-6)
    assert (cam == 0).any() and (cam > 0).any()  # the ReLU clipped something, not everything
    x_input = np.asarray(attribute("gradcam_x_input", model, x, target))
    np.testing.assert_allclose(x_input, cam * x, rtol=1e-6, atol=1e-7)


def test_gradcam_softmax_head_explains_the_decision_logit():
    model = GapLinear1d(2, stride=2, head="softmax", rngs=nnx.Rngs(2))
    x = np.asarray(jax.random.normal(jax.random.key(3), (2, 40, LEADS)))
    features = np.asarray(model.features(jnp.asarray(x)), np.float64)
    kernel = np.asarray(model.dense.kernel[...], np.float64)
    for target in (0, 1):
        cam = np.asarray(attribute("gradcam", model, x, target))
        contrast = kernel[:, target] - kernel[:, 1 - target]  # d(z_t - z_other)/d pooled
        for b in range(2):
            np.testing.assert_allclose(
                cam[b], hand_gradcam(features[b], contrast, 40), rtol=1e-5, atol=1e-6
            )


def test_gradcam_2d_is_lead_resolved_and_equals_hand_computation():
    model = GapLinear2d(2, rngs=nnx.Rngs(4))
    x = np.asarray(jax.random.normal(jax.random.key(5), (2, 30, LEADS)))
    target = np.array([1, 0])
    cam = np.asarray(attribute("gradcam", model, x, target))
    features = np.asarray(model.features(jnp.asarray(x)), np.float64)  # (B, 15, 12, 4)
    kernel = np.asarray(model.dense.kernel[...], np.float64)
    for b in range(2):
        expected = hand_gradcam(features[b], kernel[:, target[b]], 30)
        np.testing.assert_allclose(cam[b], expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(cam[:, :, 0], cam[:, :, 7])


def test_normalize_scales_each_map_to_max_one():
    model = GapLinear1d(3, stride=3, rngs=nnx.Rngs(0))
    x = np.asarray(jax.random.normal(jax.random.key(6), (3, 50, LEADS)))
    raw = np.asarray(attribute("gradcam", model, x, 1))
    scaled = np.asarray(attribute("gradcam", model, x, 1, normalize=True))
    peaks = raw.max(axis=(1, 2))
    assert (peaks > 0).all()
    np.testing.assert_allclose(scaled.max(axis=(1, 2)), 1.0, rtol=1e-6)
    np.testing.assert_allclose(scaled, raw / peaks[:, None, None], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(
        attribute("gradcam_x_input", model, x, 1, normalize=True), scaled * x, rtol=1e-6,
        atol=1e-7,
    )


@pytest.mark.parametrize("steps, length", [(17, 50), (32, 1000), (250, 1000), (7, 8), (5, 5)])
def test_upsample_time_matches_reference(steps, length):
    cam = np.random.default_rng(steps).random((2, steps, 3)).astype(np.float32)
    got = np.asarray(upsample_time(jnp.asarray(cam), length))
    for b in range(2):
        np.testing.assert_allclose(got[b], upsample_reference(cam[b], length), atol=1e-5)


def test_gradcam_on_inception1d_is_lead_agnostic():
    model = Inception1D(
        2, rngs=nnx.Rngs(0), depth=3, filters=4, kernel_size=8, bottleneck_size=4,
        head_hidden=(8,),
    )
    x = np.asarray(jax.random.normal(jax.random.key(7), (2, 100, LEADS)))
    cam = np.asarray(attribute("gradcam", model, x, 1))
    assert cam.shape == x.shape and cam.dtype == np.float32
    assert (cam >= 0).all() and (cam > 0).any()
    np.testing.assert_array_equal(cam, np.broadcast_to(cam[:, :, :1], cam.shape))


def test_gradcam_on_resnet1d_wang_upsamples_a_quarter_length_map():
    model = ResNet1dWang(3, rngs=nnx.Rngs(0), width=8, head_hidden=(8,))
    x = np.asarray(jax.random.normal(jax.random.key(8), (2, 100, LEADS)))
    assert model.features(jnp.asarray(x)).shape[1] == 25
    cam = np.asarray(attribute("gradcam", model, x, np.array([0, 2])))
    assert cam.shape == x.shape and (cam >= 0).all()
    np.testing.assert_array_equal(cam, np.broadcast_to(cam[:, :, :1], cam.shape))


def _registered_cnn2d():
    # Through the registry, so that a registration that breaks fails here rather than skips.
    from imn.models import create_model

    return create_model("cnn2d", num_classes=2, sampling_rate=100, widths=(4, 8, 8))


def test_gradcam_on_cnn2d_is_lead_resolved():
    model = _registered_cnn2d()
    x = np.asarray(jax.random.normal(jax.random.key(9), (2, 200, LEADS)))
    features = model.features(jnp.asarray(x))
    assert features.ndim == 4 and features.shape[2] == LEADS
    cam = np.asarray(attribute("gradcam", model, x, 1))
    assert cam.shape == x.shape and cam.dtype == np.float32 and (cam >= 0).all()
    assert not np.allclose(cam[:, :, 0], cam[:, :, 6])


def _probe_windows(length, chain):
    """First and last input sample each output step reads, measured by pooling the sample
    index itself through the real pooling ops (max for the last, -max(-x) for the first)."""
    from imn.models import ops

    index = jnp.arange(length, dtype=jnp.float32)[None, :, None]
    first, last = index, index
    for kernel, stride, padding in chain:
        if padding == "same":
            pool = lambda v: nnx.max_pool(v, (kernel,), strides=(stride,), padding="SAME")  # noqa: E731
        else:
            pool = lambda v: ops.max_pool(v, 1, kernel, stride, (padding, padding))  # noqa: E731
        first, last = -pool(-first), pool(last)
    return np.stack([np.asarray(first)[0, :, 0], np.asarray(last)[0, :, 0]], axis=1)


@pytest.mark.parametrize("length, chain", [
    (1000, [(3, 3, "same")] * 5),   # xECGNet
    (250, [(3, 3, "same")] * 5),
    (1000, [(5, 2, 2), (3, 2, 1), (5, 2, 2), (5, 2, 2), (5, 2, 2)]),  # xresnet1d101
    (999, [(7, 2, 3), (5, 2, 2)]),
])
def test_strided_windows_are_the_windows_the_pools_read(length, chain):
    from baselines.gradcam import strided_windows

    np.testing.assert_array_equal(strided_windows(length, chain), _probe_windows(length, chain))


def test_a_map_is_placed_at_the_centres_the_model_gives():
    from baselines.xecgnet import XECGNet

    centres = window_centres(1000, XECGNet(2, rngs=nnx.Rngs(0)).time_ops)
    assert centres == (74.0, 270.0, 513.0, 756.0, 938.5)  # not 100, 300, ..., 900
    spikes = jnp.eye(5)[:, :, None]  # one step lit per map
    placed = np.asarray(upsample_time(spikes, 1000, centres))[:, :, 0]
    for step, centre in enumerate(centres):
        assert placed[step, int(np.ceil(centre))] == pytest.approx(1.0), "the peak sits at its centre"
        assert placed[step, 100 + 200 * step] < 0.95, "not at the uniform guess (t + 1/2) L / T'"
    np.testing.assert_allclose(placed[1], np.interp(np.arange(1000), centres, np.eye(5)[1]), atol=1e-6)


def test_xecgnet_attention_and_gradcam_use_its_centres_also_on_a_binary_task():
    from baselines.xecgnet import XECGNet
    from imn.explain.binary import two_class_view

    model = XECGNet(1, rngs=nnx.Rngs(0), widths=((4,), (4,), (8,), (8,), (4,)), dense=8)
    x = np.asarray(jax.random.normal(jax.random.key(9), (2, 1000, LEADS)))
    view = two_class_view(model)
    got = np.asarray(attribute("attention", view, x, np.array([0, 1])))
    model.eval()
    raw = model.attention_map(jnp.asarray(x))
    want = np.asarray(upsample_time(raw, 1000, window_centres(1000, model.time_ops)))
    np.testing.assert_allclose(got, np.repeat(want[:, :, None], LEADS, axis=2), rtol=1e-5, atol=1e-6)
    cam = np.asarray(attribute("gradcam", view, x, np.array([0, 1])))
    low = np.argmax(cam[:, :, 0], axis=1)
    assert cam.shape == x.shape and np.isin(low, [0, 74, 270, 513, 756, 939]).all()  # at a centre
