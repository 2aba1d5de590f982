"""Elementwise and pooling operations with hand-written gradients, for the CPU training step.

Each function computes what its plain JAX formulation computes, forwards and backwards
(tests compare both against ``jax.grad`` of the plain formulation, ties included; GELU to
float32 rounding); only the way XLA evaluates them differs. Why each exists, from the
per-operation profile of the IMN training step (``imn bench profile --model imn``, 2-core CPU):

* :func:`max_pool` -- the gradient of ``reduce_window`` max is XLA's select-and-scatter, and
  the gradient of a reshape-and-max is a compare, a count of ties and a division over the
  whole input. Here the backward pass is one fused elementwise pass per window offset: the
  output gradient routed to the first maximum of each window (what select-and-scatter does).
* :func:`gelu` -- exact GELU through ``erf`` (one polynomial) rather than ``erfc`` (two
  rational approximations and an exp per element, what ``jax.nn.gelu`` uses), and its
  derivative ``Phi(x) + x phi(x)`` in one fused pass from the saved input.

Together they made the IMN step about 7% faster on a quiet 2-core AMD EPYC (README,
Benchmarks); the convolutions are most of the step.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


# --------------------------------------------------------------------------------------------
# Max pooling over one axis


def _pool_geometry(length: int, window: int, stride: int, padding: tuple[int, int]) -> int:
    low, high = padding
    padded = length + low + high
    if window < 1 or stride < 1 or padded < window:
        raise ValueError(
            f"max_pool: window {window}, stride {stride} and padding {padding} do not fit "
            f"an axis of length {length}"
        )
    return (padded - window) // stride + 1


def _window_taps(x: jax.Array, axis: int, window: int, stride: int,
                 padding: tuple[int, int]) -> list[jax.Array]:
    """The ``window`` strided views of the (-inf padded) input: ``taps[j][i] = x[i s + j - low]``."""
    length = x.shape[axis]
    out_len = _pool_geometry(length, window, stride, padding)
    pad = [(0, 0)] * x.ndim
    pad[axis] = padding
    fill = jnp.array(-jnp.inf, x.dtype) if jnp.issubdtype(x.dtype, jnp.floating) else jnp.iinfo(x.dtype).min
    padded = jnp.pad(x, pad, constant_values=fill)
    taps = []
    for j in range(window):
        taps.append(
            jax.lax.slice_in_dim(padded, j, j + (out_len - 1) * stride + 1, stride, axis=axis)
        )
    return taps


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3, 4))
def max_pool(x: jax.Array, axis: int, window: int, stride: int,
             padding: tuple[int, int] = (0, 0)) -> jax.Array:
    """Max over windows of ``window`` samples every ``stride`` samples along ``axis``.

    ``padding = (low, high)`` pads with -inf (padded samples never win). The output length
    is ``(n + low + high - window) // stride + 1``. Same values as
    ``jax.lax.reduce_window(x, -inf, max, ...)`` and the same gradient as ``jax.grad`` of it:
    each window's output gradient goes to the first sample attaining its maximum.
    """
    taps = _window_taps(x, axis, window, stride, padding)
    return functools.reduce(jnp.maximum, taps)


def _max_pool_fwd(x, axis, window, stride, padding):
    return max_pool(x, axis, window, stride, padding), x


def _max_pool_bwd(axis, window, stride, padding, x, g):
    taps = _window_taps(x, axis, window, stride, padding)
    # The winner of each window is found by comparing the taps with one another, never
    # with the saved output: XLA may recompute x in the backward pass in another fusion,
    # and a last-bit difference against a saved maximum would drop the window's gradient.
    # Strictly greater keeps the first maximum, as select-and-scatter does.
    best, winner = taps[0], jnp.zeros(taps[0].shape, jnp.int8)
    for j, tap in enumerate(taps[1:], start=1):
        better = tap > best
        best = jnp.where(better, tap, best)
        winner = jnp.where(better, jnp.int8(j), winner)
    length = x.shape[axis]
    low, high = padding
    padded_len = length + low + high
    out_len = g.shape[axis]
    zero = jnp.zeros((), g.dtype)
    grad_padded = None
    for j in range(window):
        contribution = jnp.where(winner == j, g, zero)
        # Back onto the padded axis: sample i*stride + j, zeros elsewhere (interior padding).
        config = [(0, 0, 0)] * x.ndim
        config[axis] = (j, padded_len - j - ((out_len - 1) * stride + 1), stride - 1)
        spread = jax.lax.pad(contribution, zero, config)
        grad_padded = spread if grad_padded is None else grad_padded + spread
    grad = jax.lax.slice_in_dim(grad_padded, low, low + length, axis=axis)
    return (grad,)


max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)


# --------------------------------------------------------------------------------------------
# Exact GELU


def _normal_cdf(x: jax.Array) -> jax.Array:
    # erf, not erfc: XLA's erfc evaluates two rational approximations and an exp for every
    # element; erf is one polynomial. Both are exact to float32 rounding where GELU's
    # output is not negligible (|x Phi(x)| < 1e-7 where they differ).
    return 0.5 * (1.0 + jax.lax.erf(x * _INV_SQRT2))


@jax.custom_vjp
def gelu(x: jax.Array) -> jax.Array:
    """Exact GELU ``x Phi(x)`` (``jax.nn.gelu(x, approximate=False)`` to float32 rounding),
    with the derivative ``Phi(x) + x phi(x)`` computed in one pass from the saved input."""
    xf = x.astype(jnp.float32)
    return (xf * _normal_cdf(xf)).astype(x.dtype)


def _gelu_fwd(x):
    return gelu(x), x


def _gelu_bwd(x, g):
    xf = x.astype(jnp.float32)
    pdf = jnp.exp(-0.5 * xf * xf) * _INV_SQRT_2PI
    return ((g.astype(jnp.float32) * (_normal_cdf(xf) + xf * pdf)).astype(g.dtype),)


gelu.defvjp(_gelu_fwd, _gelu_bwd)
