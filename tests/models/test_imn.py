"""ECG-IMN, IMN-direct and the lead-neighbourhood convolution.

References used here are independent of the code under test: a numpy loop convolution,
XLA's plain 2-D convolution with autodiff, ``jnp.repeat`` upsampling, and (when torch is
installed) the PyTorch twin in ``benchmarks/torch_imn.py``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from imn.models.imn import ECGIMN, IMNDirect
from imn.models.layers import (
    CONV_IMPLS,
    LeadConv,
    conv_2d,
    conv_stacked_channels_major,
    kernel_1d_to_2d,
    kernel_2d_to_1d,
    polyphase_upsample_kernel,
    stack_lead_neighbours,
    stack_lead_neighbours_channels_major,
    upsample_time,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def _ecg(batch: int, length: int, seed: int = 0) -> jax.Array:
    return jax.random.normal(jax.random.key(seed), (batch, length, 12), jnp.float32)


def _param_count(model: nnx.Module) -> int:
    return sum(leaf.size for leaf in jax.tree.leaves(nnx.state(model, nnx.Param)))


def _numpy_conv_same(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Brute-force 'same' 2-D cross-correlation over (lead, time) with zero padding.

    x: (B, leads, T, C_in); kernel: (kl, kt, C_in, C_out).
    """
    batch, leads, time, _ = x.shape
    kl, kt, _, c_out = kernel.shape
    pl, pt = kl // 2, kt // 2
    padded = np.pad(x, ((0, 0), (pl, pl), (pt, pt), (0, 0)))
    out = np.zeros((batch, leads, time, c_out))
    for dl in range(kl):
        for dt in range(kt):
            window = padded[:, dl : dl + leads, dt : dt + time, :]
            out += np.einsum("bltc,co->blto", window, kernel[dl, dt])
    return out


# ----------------------------------------------------------------------------- LeadConv


@pytest.mark.parametrize("impl", sorted(CONV_IMPLS))
def test_lead_conv_matches_numpy_loop(impl):
    layer = LeadConv(3, 4, 5, impl=impl, use_bias=True, rngs=nnx.Rngs(0))
    layer.bias[...] = jnp.arange(4, dtype=jnp.float32)
    x = jax.random.normal(jax.random.key(1), (2, 12, 16, 3))
    kernel = np.asarray(layer.kernel[...], np.float64)
    expected = _numpy_conv_same(np.asarray(x, np.float64), kernel)
    expected += np.arange(4)
    np.testing.assert_allclose(layer(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("impl", ["stacked", "hybrid"])
def test_lead_conv_value_and_gradients_equal_2d_conv(impl):
    """Forward, input gradient and kernel gradient agree with XLA's 2-D conv + autodiff."""
    kernel = jax.random.normal(jax.random.key(0), (3, 15, 4, 6)) * 0.1
    x = jax.random.normal(jax.random.key(1), (2, 12, 40, 4))
    cotangent = jax.random.normal(jax.random.key(2), (2, 12, 40, 6))

    def reference(x, k):
        return jax.lax.conv_general_dilated(
            x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )

    ref_out, ref_vjp = jax.vjp(reference, x, kernel)
    out, vjp = jax.vjp(CONV_IMPLS[impl], x, kernel)
    np.testing.assert_allclose(out, ref_out, rtol=1e-5, atol=1e-5)
    for got, want in zip(vjp(cotangent), ref_vjp(cotangent)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    # forward mode works too (the hybrid's rule is a custom JVP, not a custom VJP)
    tangents = (jnp.flip(x, axis=2), 0.5 * kernel)
    _, got_tangent = jax.jvp(CONV_IMPLS[impl], (x, kernel), tangents)
    _, want_tangent = jax.jvp(reference, (x, kernel), tangents)
    np.testing.assert_allclose(got_tangent, want_tangent, rtol=1e-4, atol=1e-4)


def test_stacked_kernel_layout_round_trip():
    kernel = jax.random.normal(jax.random.key(0), (3, 15, 4, 6))
    flat = kernel_2d_to_1d(kernel)
    assert flat.shape == (15, 12, 6)
    # channel n * C_in + c of the 1-D kernel is neighbour n, channel c of the 2-D kernel
    np.testing.assert_array_equal(flat[7, 2 * 4 + 1], kernel[2, 7, 1])
    np.testing.assert_array_equal(kernel_1d_to_2d(flat), kernel)


def test_stack_lead_neighbours_pads_first_and_last_lead_with_zeros():
    x = jnp.arange(1, 13, dtype=jnp.float32).reshape(1, 12, 1, 1)  # lead i holds i + 1
    rows = stack_lead_neighbours(x)  # (12, 1, 3): [lead - 1, lead, lead + 1]
    np.testing.assert_array_equal(rows[0, 0], [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(rows[5, 0], [5.0, 6.0, 7.0])
    np.testing.assert_array_equal(rows[11, 0], [11.0, 12.0, 0.0])


def test_channels_major_stack_is_the_transposed_stack_and_convolves_the_same():
    """The hybrid's kernel gradient reads the stack channels-major; same entries, same map."""
    x = jax.random.normal(jax.random.key(4), (3, 12, 7, 5))  # odd sizes: no accidental symmetry
    kernel = jax.random.normal(jax.random.key(5), (3, 15, 5, 2))
    np.testing.assert_array_equal(stack_lead_neighbours_channels_major(x),
                                  stack_lead_neighbours(x).transpose(2, 1, 0))
    np.testing.assert_allclose(conv_stacked_channels_major(x, kernel), conv_2d(x, kernel),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("impl", sorted(CONV_IMPLS))
def test_upsampling_folded_into_conv_equals_upsample_then_conv(impl):
    layer = LeadConv(5, 3, 3, upsample_input=True, use_bias=True, impl=impl, rngs=nnx.Rngs(0))
    layer.bias[...] = jnp.array([0.5, -1.0, 2.0])
    x = jax.random.normal(jax.random.key(3), (2, 12, 9, 5))
    expected = conv_2d(jnp.repeat(x, 2, axis=2), layer.kernel[...]) + layer.bias[...]
    got = layer(x)
    assert got.shape == (2, 12, 18, 3)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert polyphase_upsample_kernel(layer.kernel[...]).shape == (3, 3, 5, 6)


def test_one_lead_conv_mixes_only_neighbouring_leads():
    layer = LeadConv(1, 2, 15, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(0), (1, 12, 32, 1))
    grad_lead0 = jax.grad(lambda x: layer(x)[0, 0].sum())(x)[0, :, :, 0]  # (leads, T)
    lead_influence = jnp.abs(grad_lead0).sum(axis=1)
    assert lead_influence[0] > 0 and lead_influence[1] > 0
    np.testing.assert_array_equal(lead_influence[2:], 0.0)  # lead 5 included
    # and along time, the receptive field of output t is t - 7 .. t + 7
    time_grad = jax.grad(lambda x: layer(x)[0, 0, 16].sum())(x)[0, 0, :, 0]
    assert np.all(np.asarray(time_grad[:9]) == 0) and np.all(np.asarray(time_grad[24:]) == 0)


def test_lead_conv_rejects_even_kernel_and_bad_impl():
    with pytest.raises(ValueError, match="odd"):
        LeadConv(1, 1, 4, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="impl"):
        LeadConv(1, 1, 3, impl="fft", rngs=nnx.Rngs(0))


def test_upsample_time_is_nearest():
    x = jnp.arange(3.0).reshape(1, 1, 3, 1)
    np.testing.assert_array_equal(upsample_time(x)[0, 0, :, 0], [0, 0, 1, 1, 2, 2])


# ----------------------------------------------------------------------------- ECGIMN


def test_param_counts_are_pinned():
    # 3 x 15 convs 1->16->32->64 (no bias) + BN scale/bias: 116,144; decoder 3 x 3 convs
    # 64->32->16 (no bias) + BN: 23,136; last conv 16->K with bias: 145 K; Linear 64->K: 65 K.
    assert _param_count(ECGIMN(1, rngs=nnx.Rngs(0))) == 139_490
    assert _param_count(ECGIMN(5, rngs=nnx.Rngs(0))) == 140_330
    assert 116_144 + 23_136 + 210 * 5 == 140_330


def test_batch_stats_are_not_params():
    model = ECGIMN(1, rngs=nnx.Rngs(0))
    stats = jax.tree.leaves(nnx.state(model, nnx.BatchStat))
    assert sum(s.size for s in stats) == 2 * (16 + 32 + 64 + 32 + 16)


@pytest.mark.parametrize("num_classes,length", [(1, 1000), (3, 248)])
def test_logits_are_exactly_sum_of_w_times_x_plus_b(num_classes, length):
    model = ECGIMN(num_classes, rngs=nnx.Rngs(0))
    x = _ecg(2, length)
    model.train()
    model(x)  # move the BN running statistics away from their initial values
    model.eval()
    logits = model(x)
    weights, bias = model.generate(x)
    assert logits.shape == (2, num_classes)
    assert weights.shape == (2, num_classes, length, 12)
    assert bias.shape == (2, num_classes)
    recomposed = jnp.sum(weights * x[:, None], axis=(2, 3)) + bias
    np.testing.assert_allclose(recomposed, logits, rtol=1e-5, atol=1e-4)


def test_decomposition_holds_in_train_mode_within_one_pass():
    model = ECGIMN(3, rngs=nnx.Rngs(0))
    model.train()
    x = _ecg(2, 248)
    out = model.forward(x)
    recomposed = jnp.sum(out.weights * x[:, None], axis=(2, 3)) + out.bias
    np.testing.assert_allclose(recomposed, out.logits, rtol=1e-5, atol=1e-4)


def test_eval_mode_is_deterministic_and_per_sample():
    model = ECGIMN(3, rngs=nnx.Rngs(0))
    x = _ecg(2, 248)
    model.train()
    first, second = model(x), model(x)
    assert not np.allclose(first, second)  # dropout and batch statistics are live
    model.eval()
    np.testing.assert_array_equal(model(x), model(x))
    # running statistics: a sample's logit does not depend on the rest of the batch
    np.testing.assert_allclose(model(x[:1]), model(x)[:1], rtol=1e-5, atol=1e-5)


def test_same_seed_same_model_and_outputs():
    x = _ecg(2, 248)
    a, b, c = (ECGIMN(3, rngs=nnx.Rngs(seed)) for seed in (7, 7, 8))
    state_a, state_b = nnx.state(a, nnx.Param), nnx.state(b, nnx.Param)
    for leaf_a, leaf_b in zip(jax.tree.leaves(state_a), jax.tree.leaves(state_b)):
        np.testing.assert_array_equal(leaf_a, leaf_b)
    np.testing.assert_array_equal(a(x), b(x))  # train mode: the dropout masks match too
    assert not np.allclose(
        nnx.state(a, nnx.Param)["bias_head"]["kernel"][...],
        nnx.state(c, nnx.Param)["bias_head"]["kernel"][...],
    )


def test_weight_init_scale_scales_the_generated_weights_only():
    x = _ecg(2, 1000)
    plain, scaled = (ECGIMN(2, rngs=nnx.Rngs(3), weight_init_scale=s) for s in (1.0, 0.01))
    plain.eval(), scaled.eval()
    w_plain, b_plain = plain.generate(x)
    w_scaled, b_scaled = scaled.generate(x)
    # W is the last conv's output; its initial kernel and bias both scale: W scales exactly.
    np.testing.assert_allclose(w_scaled, 0.01 * w_plain, rtol=1e-5, atol=1e-8)
    np.testing.assert_array_equal(b_scaled, b_plain)
    assert _param_count(scaled) == _param_count(plain)
    # The point of the option: unit-scale weights give saturated initial logits.
    assert float(jnp.abs(plain(x)).max()) > 10 * float(jnp.abs(scaled(x)).max())


def test_jitted_training_step_changes_params_and_batch_stats():
    model = ECGIMN(1, rngs=nnx.Rngs(0))
    model.train()
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    optimizer = optax.adamw(1e-3, weight_decay=1e-4)
    opt_state = optimizer.init(params)
    x, y = _ecg(4, 64), jnp.array([[1.0], [0.0], [1.0], [0.0]])

    @jax.jit
    def step(params, rest, opt_state):
        def loss_fn(params, rest):
            module = nnx.merge(graphdef, params, rest, copy=True)
            out = module.forward(x)
            loss = optax.sigmoid_binary_cross_entropy(out.logits, y).mean()
            loss = loss + 1e-4 * jnp.mean(jnp.abs(out.weights))
            return loss, nnx.state(module, nnx.Not(nnx.Param))

        (loss, rest), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, rest)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), rest, opt_state, loss, grads

    new_params, new_rest, _, loss, grads = step(params, rest, opt_state)
    assert np.isfinite(loss)
    # every parameter gets a gradient (no dead branch) and moves
    for grad in jax.tree.leaves(grads):
        assert np.any(np.asarray(grad) != 0)
    for old, new in zip(jax.tree.leaves(params), jax.tree.leaves(new_params)):
        assert not np.array_equal(old, new)
    old_mean = rest["encoder"]["blocks"][0]["norm"]["mean"][...]
    assert not np.array_equal(old_mean, new_rest["encoder"]["blocks"][0]["norm"]["mean"][...])


def test_softmax_head_and_bad_heads():
    model = ECGIMN(2, rngs=nnx.Rngs(0), head="softmax")
    assert model.head_type == "softmax"
    assert ECGIMN(1, rngs=nnx.Rngs(0)).head_type == "sigmoid"
    with pytest.raises(ValueError, match="at least 2"):
        ECGIMN(1, rngs=nnx.Rngs(0), head="softmax")
    with pytest.raises(ValueError, match="head"):
        ECGIMN(1, rngs=nnx.Rngs(0), head="tanh")


def test_length_not_divisible_by_four_is_rejected():
    model = ECGIMN(1, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="divisible by 4"):
        model(_ecg(1, 250))


def test_no_features_method():
    """IMN is explained by W * x, not Grad-CAM; explainers detect that by hasattr."""
    assert not hasattr(ECGIMN(1, rngs=nnx.Rngs(0)), "features")


def _load_torch_twin():
    pytest.importorskip("torch")
    spec = importlib.util.spec_from_file_location(
        "torch_imn", REPO_ROOT / "benchmarks" / "torch_imn.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_matches_pytorch_twin():
    """The PyTorch model written the paper's way (Conv2d 3x15, MaxPool2d, Upsample) computes
    the same W, b and logits from the same weights, and has the same parameter count."""
    torch_imn = _load_torch_twin()  # skips when the optional torch extra is absent
    import torch
    model = ECGIMN(3, rngs=nnx.Rngs(0))
    x = np.asarray(_ecg(2, 248))
    model.train()
    model(jnp.asarray(x))
    model.eval()
    twin = torch_imn.load_flax_weights(torch_imn.TorchIMN(3), model).eval()
    assert torch_imn.count_params(torch_imn.TorchIMN(1)) == 139_490
    with torch.no_grad():
        logits, weights, bias = (t.numpy() for t in twin(torch.from_numpy(x.copy())))
    out = model.forward(jnp.asarray(x))
    np.testing.assert_allclose(out.weights, weights, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out.bias, bias, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out.logits, logits, rtol=1e-4, atol=1e-3)


# ----------------------------------------------------------------------------- IMN-direct


def test_imn_direct_decomposition_and_count():
    model = IMNDirect(2, input_length=64, rngs=nnx.Rngs(0))
    model.eval()
    x = _ecg(2, 64)
    weights, bias = model.generate(x)
    assert weights.shape == (2, 2, 64, 12) and bias.shape == (2, 2)
    np.testing.assert_allclose(
        jnp.sum(weights * x[:, None], axis=(2, 3)) + bias, model(x), rtol=1e-5, atol=1e-4
    )
    # encoder 116,144 + Linear 64 -> K * (12 L + 1) with bias
    assert _param_count(model) == 116_144 + 65 * 2 * (12 * 64 + 1)
    with pytest.raises(ValueError, match="64"):
        model(_ecg(2, 68))
