"""Hand-written gradients (imn.models.ops) against jax.grad of the plain formulations."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from imn.models import ops


def _reduce_window_max(x, axis, window, stride, padding):
    dims = [1] * x.ndim
    strides = [1] * x.ndim
    pads = [(0, 0)] * x.ndim
    dims[axis], strides[axis], pads[axis] = window, stride, padding
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, dims, strides, pads)


POOLS = [  # (shape, axis, window, stride, padding)
    ((3, 2, 10, 5), 2, 2, 2, (0, 0)),  # IMN's (1, 2) pooling over time
    ((3, 2, 11, 5), 2, 2, 2, (0, 0)),  # odd length: the last sample is dropped
    ((2, 13, 7), 1, 3, 2, (1, 1)),  # the baselines' MaxPool1d(3, 2, padding=1)
    ((2, 13, 7), 1, 3, 1, (1, 1)),  # Inception's stride-1 pool: overlapping windows
    ((2, 9, 4), 1, 4, 3, (2, 1)),  # uneven padding, window > stride
]


@pytest.mark.parametrize("shape, axis, window, stride, padding", POOLS)
def test_max_pool_values_and_gradient_equal_reduce_window(shape, axis, window, stride, padding):
    x = jax.random.normal(jax.random.key(0), shape)
    expected, expected_vjp = jax.vjp(lambda a: _reduce_window_max(a, axis, window, stride, padding), x)
    got, got_vjp = jax.vjp(lambda a: ops.max_pool(a, axis, window, stride, padding), x)
    np.testing.assert_array_equal(got, expected)
    g = jax.random.normal(jax.random.key(1), expected.shape)
    np.testing.assert_allclose(got_vjp(g)[0], expected_vjp(g)[0], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("shape, axis, window, stride, padding", POOLS)
def test_max_pool_ties_go_to_the_first_maximum_like_select_and_scatter(shape, axis, window, stride, padding):
    # Integers in a narrow range make ties in almost every window, including across
    # overlapping windows; zeros as well, as after a ReLU.
    x = jnp.maximum(jax.random.randint(jax.random.key(2), shape, -2, 3), 0).astype(jnp.float32)
    _, expected_vjp = jax.vjp(lambda a: _reduce_window_max(a, axis, window, stride, padding), x)
    y, got_vjp = jax.vjp(lambda a: ops.max_pool(a, axis, window, stride, padding), x)
    g = jax.random.normal(jax.random.key(3), y.shape)
    got = got_vjp(g)[0]
    np.testing.assert_allclose(got, expected_vjp(g)[0], rtol=1e-6, atol=1e-6)
    # Every window passes its gradient on once: the totals agree.
    np.testing.assert_allclose(got.sum(), g.sum(), rtol=1e-5)


def test_max_pool_matches_nnx_max_pool_and_jits():
    x = jax.random.normal(jax.random.key(4), (2, 16, 3))
    got = jax.jit(lambda a: ops.max_pool(a, 1, 3, 2, (1, 1)))(x)
    np.testing.assert_array_equal(got, nnx.max_pool(x, (3,), strides=(2,), padding=((1, 1),)))


def test_max_pool_rejects_a_window_that_does_not_fit():
    with pytest.raises(ValueError, match="do not fit"):
        ops.max_pool(jnp.zeros((1, 2, 1)), 1, 3, 1)


def test_gelu_value_and_gradient_equal_jax_exact_gelu():
    x = jnp.concatenate([jnp.linspace(-9.0, 9.0, 2001), jax.random.normal(jax.random.key(5), (999,)) * 3])
    expected, expected_vjp = jax.vjp(lambda a: jax.nn.gelu(a, approximate=False), x)
    got, got_vjp = jax.vjp(ops.gelu, x)
    # erf instead of erfc: equal to float32 rounding at the activations' unit scale (in the
    # far negative tail, where GELU is below 1e-6, the two differ in relative terms).
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    g = jax.random.normal(jax.random.key(6), x.shape)
    np.testing.assert_allclose(got_vjp(g)[0], expected_vjp(g)[0], rtol=1e-5, atol=2e-6)
    # Second order (e.g. the Hessian-vector products of some attribution methods) still works.
    second = jax.grad(lambda a: jax.grad(lambda b: ops.gelu(b).sum())(a).sum())(x[:5])
    expected_second = jax.grad(
        lambda a: jax.grad(lambda b: jax.nn.gelu(b, approximate=False).sum())(a).sum())(x[:5])
    np.testing.assert_allclose(second, expected_second, rtol=1e-4, atol=1e-5)


def test_gelu_keeps_bfloat16():
    x = jnp.linspace(-3, 3, 7, dtype=jnp.bfloat16)
    assert ops.gelu(x).dtype == jnp.bfloat16
    assert jax.grad(lambda a: ops.gelu(a).astype(jnp.float32).sum())(x).dtype == jnp.bfloat16
