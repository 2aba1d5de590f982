"""The two comparison systems of issue 18: ``resnet34_1d`` (CPSC 2018 study) and ``xecgnet``.

Parameter counts are pinned *and* re-derived layer by layer from the architectures as the
papers describe them (an independent hand count); counting uses ``nnx.eval_shape`` so the full
models cost no initialisation here. Forward checks run on narrowed variants (fewer blocks,
fewer channels) that exercise the same code paths.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from baselines.resnet34 import ResNet34_1D
from baselines.xecgnet import XECGNet, pooled_length
from imn.models import MODEL_NAMES, count_params, create_model


def _conv(c_in: int, c_out: int, k: int, bias: bool = False) -> int:
    return c_in * c_out * k + (c_out if bias else 0)


def _bn(c: int) -> int:
    return 2 * c


def hand_count_resnet34(k: int, leads: int = 12) -> int:
    stem = _conv(leads, 64, 15) + _bn(64)
    total, c_in = stem, 64
    for stage, (blocks, width) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512))):
        for b in range(blocks):
            total += _conv(c_in, width, 7) + _bn(width) + _conv(width, width, 7) + _bn(width)
            if stage > 0 and b == 0:  # stride 2 and a width change: 1x1 conv + BN shortcut
                total += _conv(c_in, width, 1) + _bn(width)
            c_in = width
    return total + (2 * 512 * k + k)  # [avg, max] pooled -> Linear(1024, K)


def hand_count_xecgnet(k: int, leads: int = 12) -> int:
    total, c_in = 0, leads
    for widths in ((64, 64), (128, 128), (256,) * 3, (512,) * 3, (512, 256, 128)):
        for width in widths:
            total += _conv(c_in, width, 3, bias=True) + _bn(width)
            c_in = width
    attention = _bn(128) + _conv(128, k, 1) + _conv(k, k, 1) + _conv(k, 1, 1) + _bn(1)
    perception = (128 * 512 + 512) + (512 * k + k)
    return total + attention + perception


PINNED = {("resnet34_1d", 9): 16_610_185, ("resnet34_1d", 1): 16_601_985,
          ("xecgnet", 9): 3_906_789, ("xecgnet", 5): 3_904_165}
HAND = {"resnet34_1d": hand_count_resnet34, "xecgnet": hand_count_xecgnet}


@pytest.mark.parametrize("name,k", sorted(PINNED))
def test_parameter_counts_pinned_and_match_hand_count(name, k):
    model = nnx.eval_shape(lambda: create_model(name, num_classes=k, sampling_rate=500))
    assert HAND[name](k) == PINNED[(name, k)]
    assert count_params(model) == PINNED[(name, k)]


def test_both_are_registered():
    assert {"resnet34_1d", "xecgnet"} <= set(MODEL_NAMES)


@pytest.mark.parametrize("length,steps", [(15000, 469), (999, 32)])
def test_resnet34_time_axis_halves_five_times(length, steps):
    # abstract: the model is built and run on shapes only, no parameters are computed
    shape = nnx.eval_shape(
        lambda: ResNet34_1D(9, rngs=nnx.Rngs(0)).features(jnp.zeros((2, length, 12)))).shape
    assert shape == (2, steps, 512)


@pytest.mark.parametrize("length", [15000, 1000])
def test_xecgnet_attention_length(length):
    def run():
        model = XECGNet(9, rngs=nnx.Rngs(0))
        model.eval()
        return model.branches(jnp.zeros((2, length, 12)))

    out = nnx.eval_shape(run)
    steps = pooled_length(length)
    assert out.attention.shape == (2, steps) and out.responses.shape == (2, steps, 9)
    assert out.logits.shape == out.attention_logits.shape == (2, 9)
    assert pooled_length(2880) == 12 and pooled_length(15000) == 62  # the authors' 12 steps


# ---------------------------------------------------------------------------------------------
# narrowed models: real forward passes at CPU-test cost


# Built and run under nnx.jit: eagerly, every small op compiles on its own (minutes on CPU).
@pytest.fixture(scope="module")
def small_resnet() -> ResNet34_1D:
    return nnx.jit(lambda: ResNet34_1D(3, rngs=nnx.Rngs(params=0, dropout=1), layers=(1, 1, 1, 1),
                                       widths=(8, 8, 16, 16)))()


@pytest.fixture(scope="module")
def small_xecgnet() -> XECGNet:
    return nnx.jit(lambda: XECGNet(3, rngs=nnx.Rngs(params=0, dropout=1),
                                   widths=((8,), (8,), (16,), (16,), (8,)), dense=16))()


def _ecg(batch: int, length: int, seed: int = 0) -> jax.Array:
    return jax.random.normal(jax.random.key(seed), (batch, length, 12))


@pytest.mark.parametrize("fixture", ["small_resnet", "small_xecgnet"])
def test_call_is_head_of_features_and_eval_is_per_sample(fixture, request):
    model = request.getfixturevalue(fixture)
    model.eval()
    x = _ecg(3, 300)

    @nnx.jit
    def outputs(m, x):
        return m(x), m.head(m.features(x)), m(x[1:2])

    logits, split, single = outputs(model, x)
    np.testing.assert_allclose(logits, split, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(single, logits[1:2], rtol=1e-5, atol=1e-5)
    model.train()


def test_xecgnet_attention_is_applied_as_f_times_a_plus_f(small_xecgnet):
    model = small_xecgnet
    model.eval()
    x = _ecg(2, 300, seed=3)

    @nnx.jit
    def outputs(m, x):
        return m.branches(x), m.attention_map(x), m(x), m._backbone(x), m.features(x)

    out, attention, logits, backbone, features = outputs(model, x)
    assert np.all((np.asarray(out.attention) > 0) & (np.asarray(out.attention) < 1))
    np.testing.assert_allclose(out.attention, attention, rtol=1e-6)
    np.testing.assert_allclose(out.logits, logits, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(features, backbone * (1 + out.attention[..., None]),
                               rtol=1e-5, atol=1e-6)
    # the attention branch's prediction is the time-average of a 1x1 conv of the responses
    expected = jnp.einsum("btk,kj->bj", out.responses, model.attention_pred_conv.kernel[0]) / out.responses.shape[1]
    np.testing.assert_allclose(out.attention_logits, expected, rtol=1e-4, atol=1e-5)
    model.train()


def test_resnet34_dropout_is_active_in_training_only(small_resnet):
    model = small_resnet
    x = _ecg(2, 200)
    call = nnx.jit(lambda m, x: m(x))
    model.train()
    nnx.reseed(model, dropout=jax.random.key(0))
    first = call(model, x)
    nnx.reseed(model, dropout=jax.random.key(1))
    assert not np.allclose(first, call(model, x))
    model.eval()
    np.testing.assert_array_equal(call(model, x), call(model, x))
    model.train()


def test_resnet34_matches_a_pytorch_build_of_the_same_architecture(small_resnet):
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class Block(nn.Module):  # written from the study's description, not its code
        def __init__(self, c_in, c_out, stride):
            super().__init__()
            self.c1 = nn.Conv1d(c_in, c_out, 7, stride, 3, bias=False)
            self.b1 = nn.BatchNorm1d(c_out)
            self.c2 = nn.Conv1d(c_out, c_out, 7, 1, 3, bias=False)
            self.b2 = nn.BatchNorm1d(c_out)
            self.short = None
            if stride != 1 or c_in != c_out:
                self.short = nn.Sequential(nn.Conv1d(c_in, c_out, 1, stride, bias=False),
                                           nn.BatchNorm1d(c_out))

        def forward(self, x):
            out = self.b2(self.c2(torch.relu(self.b1(self.c1(x)))))
            return torch.relu(out + (x if self.short is None else self.short(x)))

    model = small_resnet
    model.eval()
    widths = (8, 8, 16, 16)
    stem = nn.Conv1d(12, 8, 15, 2, 7, bias=False)
    stem_bn = nn.BatchNorm1d(8)
    blocks = [Block(c_in, c_out, 1 if i == 0 else 2)
              for i, (c_in, c_out) in enumerate(zip((8, *widths[:-1]), widths))]
    fc = nn.Linear(32, 3)

    def conv_weight(conv):  # flax (k, in, out) -> torch (out, in, k)
        return torch.tensor(np.asarray(conv.kernel).transpose(2, 1, 0).copy())

    def load_bn(torch_bn, flax_bn):
        torch_bn.weight.data = torch.tensor(np.asarray(flax_bn.scale))
        torch_bn.bias.data = torch.tensor(np.asarray(flax_bn.bias))
        torch_bn.running_mean.data = torch.tensor(np.asarray(flax_bn.mean)) + 0.1
        torch_bn.running_var.data = torch.tensor(np.asarray(flax_bn.var)) * 1.5
        flax_bn.mean[...] = jnp.asarray(torch_bn.running_mean.numpy())
        flax_bn.var[...] = jnp.asarray(torch_bn.running_var.numpy())

    stem.weight.data = conv_weight(model.stem_conv)
    load_bn(stem_bn, model.stem_norm)
    for torch_block, block in zip(blocks, model.blocks):
        torch_block.c1.weight.data = conv_weight(block.conv1)
        torch_block.c2.weight.data = conv_weight(block.conv2)
        load_bn(torch_block.b1, block.norm1)
        load_bn(torch_block.b2, block.norm2)
        if torch_block.short is not None:
            torch_block.short[0].weight.data = conv_weight(block.shortcut_conv)
            load_bn(torch_block.short[1], block.shortcut_norm)
    fc.weight.data = torch.tensor(np.asarray(model.classifier.kernel).T.copy())
    fc.bias.data = torch.tensor(np.asarray(model.classifier.bias))

    x = np.asarray(_ecg(2, 301, seed=5))
    with torch.no_grad():
        h = torch.tensor(x.transpose(0, 2, 1))
        h = nn.functional.max_pool1d(torch.relu(stem_bn.eval()(stem(h))), 3, 2, 1)
        for torch_block in blocks:
            h = torch_block.eval()(h)
        expected = fc(torch.cat([h.mean(-1), h.amax(-1)], dim=1)).numpy()
    np.testing.assert_allclose(nnx.jit(lambda m, x: m(x))(model, jnp.asarray(x)), expected,
                               rtol=1e-4, atol=1e-4)
    model.train()
