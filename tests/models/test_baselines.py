"""Tests of the PTB-XL benchmark baselines (Inception1D, ResNet1dWang, XResNet1d101).

Parameter counts are pinned *and* re-derived layer by layer from the benchmark's architecture
(an independent hand count). PyTorch semantics that the port relies on (padding, ceil-mode
pooling) are checked against torch itself when it is installed.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from baselines.inception1d import Inception1D, inception_kernel_sizes
from baselines.layers1d import (
    ConcatPoolHead,
    avg_pool2_ceil,
    concat_pool,
    conv1d,
    count_params,
    head_dropout_rates,
    max_pool_same,
)
from baselines.resnet1d import ResNet1dWang, XResNet1d101

# ---------------------------------------------------------------------------------------------
# independent parameter counts, written from the benchmark's layer lists


def _conv(c_in: int, c_out: int, k: int) -> int:  # every conv is bias-free
    return c_in * c_out * k


def _bn(c: int) -> int:  # scale + shift; running statistics are not parameters
    return 2 * c


def _head(c: int, k: int, hidden: int = 128) -> int:
    # concat pool -> BN(2c) -> Linear(2c, 128) -> ReLU -> BN(128) -> Linear(128, K)
    return _bn(2 * c) + (2 * c * hidden + hidden) + _bn(hidden) + (hidden * k + k)


def hand_count_inception(k: int, leads: int = 12) -> int:
    def block(c_in: int) -> int:
        bottleneck = _conv(c_in, 32, 1)
        branches = sum(_conv(32, 32, ks) for ks in (39, 19, 9))
        pool_branch = _conv(c_in, 32, 1)
        return bottleneck + branches + pool_branch + _bn(128)

    blocks = block(leads) + 5 * block(128)
    shortcuts = (_conv(leads, 128, 1) + _bn(128)) + (_conv(128, 128, 1) + _bn(128))
    return blocks + shortcuts + _head(128, k)


def hand_count_resnet_wang(k: int, leads: int = 12) -> int:
    stem = _conv(leads, 128, 7) + _bn(128)
    basic = _conv(128, 128, 5) + _bn(128) + _conv(128, 128, 3) + _bn(128)
    projection = _conv(128, 128, 1) + _bn(128)  # stride-2 shortcut of blocks 2 and 3
    return stem + 3 * basic + 2 * projection + _head(128, k)


def hand_count_xresnet101(k: int, leads: int = 12) -> int:
    stem = sum(_conv(c_in, c_out, 5) + _bn(c_out) for c_in, c_out in [(leads, 32), (32, 32), (32, 64)])

    def bottleneck(c_in: int) -> int:
        squeeze = _conv(c_in, 64, 1) + _bn(64)
        middle = _conv(64, 64, 5) + _bn(64)
        expand = _conv(64, 256, 1) + _bn(256)
        return squeeze + middle + expand

    first = bottleneck(64) + _conv(64, 256, 1) + _bn(256)  # only block whose width changes
    rest = (3 + 4 + 23 + 3 - 1) * bottleneck(256)
    return stem + first + rest + _head(256, k)


# Pinned (K=5, K=1) counts; a change here is a change of architecture.
PINNED = {
    Inception1D: (507_653, 507_137, hand_count_inception),
    ResNet1dWang: (473_349, 472_833, hand_count_resnet_wang),
    XResNet1d101: (1_872_261, 1_871_745, hand_count_xresnet101),
}


# ---------------------------------------------------------------------------------------------
# fixtures: each model is built once (XResNet1d101 is slow to initialise on a shared CPU)


# Built the way a trainer should build them: a separate 'dropout' stream, so that
# nnx.reseed(model, dropout=key) controls the head's dropout masks.
@pytest.fixture(scope="module")
def inception() -> Inception1D:
    return Inception1D(5, rngs=nnx.Rngs(params=0, dropout=1))


@pytest.fixture(scope="module")
def resnet_wang() -> ResNet1dWang:
    return ResNet1dWang(5, rngs=nnx.Rngs(params=0, dropout=1))


@pytest.fixture(scope="module")
def xresnet() -> XResNet1d101:
    return XResNet1d101(5, rngs=nnx.Rngs(params=0, dropout=1))


def _ecg(batch: int, length: int, seed: int = 0) -> jax.Array:
    return jax.random.normal(jax.random.key(seed), (batch, length, 12))


# ---------------------------------------------------------------------------------------------
# parameter counts


@pytest.mark.parametrize("fixture", ["inception", "resnet_wang", "xresnet"])
def test_parameter_count_k5_pinned_and_matches_hand_count(fixture, request):
    model = request.getfixturevalue(fixture)
    pinned_k5, _, hand = PINNED[type(model)]
    assert hand(5) == pinned_k5
    assert count_params(model) == pinned_k5


@pytest.mark.parametrize("cls", [Inception1D, ResNet1dWang])
def test_parameter_count_k1_pinned_and_matches_hand_count(cls):
    _, pinned_k1, hand = PINNED[cls]
    assert hand(1) == pinned_k1
    assert count_params(cls(1, rngs=nnx.Rngs(0))) == pinned_k1


def test_xresnet_k1_count_differs_from_k5_only_in_last_linear():
    # Building a second XResNet1d101 costs seconds; the head is the only K-dependent part.
    _, pinned_k1, hand = PINNED[XResNet1d101]
    assert hand(1) == pinned_k1 == PINNED[XResNet1d101][0] - 4 * (128 + 1)


def test_inception_kernel_sizes_follow_benchmark():
    assert inception_kernel_sizes(40) == (39, 19, 9)
    assert inception_kernel_sizes(41) == (41, 19, 9)


# ---------------------------------------------------------------------------------------------
# shapes and the features/head split used by Grad-CAM


@pytest.mark.parametrize(
    ("fixture", "length", "feature_shape"),
    [
        ("inception", 1000, (2, 1000, 128)),
        ("inception", 250, (2, 250, 128)),
        ("resnet_wang", 1000, (2, 250, 128)),
        ("resnet_wang", 250, (2, 63, 128)),  # ceil(ceil(250 / 2) / 2)
        ("xresnet", 250, (2, 8, 256)),  # 250 -> 125 -> 63 -> 32 -> 16 -> 8
    ],
)
def test_shapes_and_forward_equals_head_of_features(fixture, length, feature_shape, request):
    model = request.getfixturevalue(fixture)
    model.eval()
    x = _ecg(2, length)
    features = model.features(x)
    logits = model(x)
    assert features.shape == feature_shape
    assert logits.shape == (2, 5)
    assert bool(jnp.all(jnp.isfinite(logits)))
    np.testing.assert_array_equal(np.asarray(logits), np.asarray(model.head(features)))


# ---------------------------------------------------------------------------------------------
# train / eval modes


def test_eval_mode_is_deterministic_and_per_sample(resnet_wang):
    resnet_wang.eval()
    x = _ecg(2, 250)
    first = resnet_wang(x)
    np.testing.assert_array_equal(np.asarray(first), np.asarray(resnet_wang(x)))
    # Running statistics, not batch statistics: changing sample 1 leaves sample 0's logits.
    changed = resnet_wang(x.at[1].multiply(3.0))
    np.testing.assert_allclose(np.asarray(changed[0]), np.asarray(first[0]), rtol=1e-5, atol=1e-6)
    assert not np.allclose(np.asarray(changed[1]), np.asarray(first[1]))


def test_train_mode_uses_batch_statistics_and_dropout(inception):
    inception.train()
    x = _ecg(2, 250)
    mean_before = np.asarray(inception.blocks[0].norm.mean[...]).copy()
    one = inception(x, rngs=nnx.Rngs(dropout=1))
    same = inception(x, rngs=nnx.Rngs(dropout=1))
    other = inception(x, rngs=nnx.Rngs(dropout=2))
    # running statistics move in train mode
    assert not np.allclose(np.asarray(inception.blocks[0].norm.mean[...]), mean_before)
    # the same dropout key reproduces the logits (running stats do not enter the train-mode
    # output); another key changes them
    np.testing.assert_allclose(np.asarray(one), np.asarray(same), rtol=1e-5, atol=1e-6)
    assert not np.allclose(np.asarray(one), np.asarray(other))
    # batch statistics: with the same dropout mask, changing sample 1 changes sample 0's logits
    changed = inception(x.at[1].multiply(3.0), rngs=nnx.Rngs(dropout=1))
    assert not np.allclose(np.asarray(changed[0]), np.asarray(one[0]))
    # without an explicit key the model's own dropout stream advances between calls
    assert not np.allclose(np.asarray(inception(x)), np.asarray(inception(x)))
    inception.eval()
    assert inception.classifier.dropouts[0].deterministic
    assert inception.blocks[0].norm.use_running_average


def test_dropout_follows_reseed_when_built_with_a_dropout_stream(resnet_wang):
    # A pure train step reseeds the 'dropout' stream with a key folded with the step count;
    # that only reaches the head if the model was built with a 'dropout' stream (the fixture's).
    resnet_wang.train()
    x = _ecg(2, 250)

    def logits_after_reseed(seed: int) -> np.ndarray:
        nnx.reseed(resnet_wang, dropout=jax.random.key(seed))
        return np.asarray(resnet_wang(x))

    np.testing.assert_allclose(logits_after_reseed(3), logits_after_reseed(3), rtol=1e-5, atol=1e-6)
    assert not np.allclose(logits_after_reseed(3), logits_after_reseed(4))
    resnet_wang.eval()


def test_jitted_gradient_step_updates_parameters_and_batch_stats():
    model = ResNet1dWang(3, rngs=nnx.Rngs(0))
    model.train()
    optimizer = nnx.Optimizer(model, optax.adamw(1e-3), wrt=nnx.Param)
    x = _ecg(2, 250)
    y = jnp.array([[1, 0, 0], [0, 1, 1]], jnp.float32)

    @nnx.jit
    def train_step(model, optimizer, x, y):
        def loss_fn(model):
            return optax.sigmoid_binary_cross_entropy(model(x), y).mean()

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss, grads

    stem_before = np.asarray(model.stem.conv.kernel[...]).copy()
    stats_before = np.asarray(model.stem.norm.mean[...]).copy()
    loss, grads = train_step(model, optimizer, x, y)
    assert np.isfinite(float(loss))
    assert float(jnp.abs(grads.stem.conv.kernel[...]).max()) > 0
    assert not np.allclose(np.asarray(model.stem.conv.kernel[...]), stem_before)
    assert not np.allclose(np.asarray(model.stem.norm.mean[...]), stats_before)


# ---------------------------------------------------------------------------------------------
# the head and pooling building blocks


def test_head_dropout_rates_follow_fastai():
    assert head_dropout_rates(0.5, 2) == (0.25, 0.5)
    assert head_dropout_rates(0.5, 1) == (0.5,)
    with pytest.raises(ValueError):
        head_dropout_rates((0.1, 0.2, 0.3), 2)


def test_concat_pool_is_max_then_mean():
    features = jnp.array([[[1.0, -2.0], [3.0, 0.0], [-1.0, 5.0]]])  # (1, 3, 2)
    np.testing.assert_allclose(np.asarray(concat_pool(features)), [[3.0, 5.0, 1.0, 1.0]])


def test_head_layout_matches_benchmark():
    head = ConcatPoolHead(128, 5, rngs=nnx.Rngs(0))
    assert [n.num_features for n in head.norms] == [256, 128]
    assert [d.rate for d in head.dropouts] == [0.25, 0.5]
    assert [lin.kernel[...].shape for lin in head.linears] == [(256, 128), (128, 5)]


@pytest.fixture(scope="module")
def torch_functional():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)  # the CPU is shared; these tensors are tiny
    return torch, torch.nn.functional


@pytest.mark.parametrize("length", [9, 10])
def test_pooling_matches_pytorch(torch_functional, length):
    torch, F = torch_functional
    x = np.random.default_rng(0).normal(size=(2, length, 3)).astype(np.float32)
    x_torch = torch.from_numpy(x.transpose(0, 2, 1).copy())  # PyTorch is channels-first
    avg = F.avg_pool1d(x_torch, 2, ceil_mode=True).numpy().transpose(0, 2, 1)
    np.testing.assert_allclose(np.asarray(avg_pool2_ceil(jnp.asarray(x))), avg, rtol=1e-6)
    for stride in (1, 2):
        mx = F.max_pool1d(x_torch, 3, stride=stride, padding=1).numpy().transpose(0, 2, 1)
        np.testing.assert_array_equal(np.asarray(max_pool_same(jnp.asarray(x), 3, stride)), mx)


@pytest.mark.parametrize(("kernel", "stride"), [(5, 2), (1, 2)])
def test_conv_padding_matches_pytorch(torch_functional, kernel, stride):
    torch, F = torch_functional
    conv = conv1d(3, 4, kernel, stride, rngs=nnx.Rngs(0))
    x = np.random.default_rng(1).normal(size=(2, 11, 3)).astype(np.float32)
    # Flax kernels are (k, in, out); PyTorch's are (out, in, k).
    kernel_torch = torch.from_numpy(np.asarray(conv.kernel[...]).transpose(2, 1, 0).copy())
    x_torch = torch.from_numpy(x.transpose(0, 2, 1).copy())
    padding = (kernel - 1) // 2
    expected = F.conv1d(x_torch, kernel_torch, stride=stride, padding=padding)
    expected = expected.numpy().transpose(0, 2, 1)
    np.testing.assert_allclose(np.asarray(conv(jnp.asarray(x))), expected, rtol=1e-5, atol=1e-5)
