"""Gradient-based post-hoc explainers: saliency, input x gradient, integrated gradients and
expected gradients ("GradientSHAP").

Every explainer is a pure function of ``target_logit(x (N, L, C), target (N,) int) -> (N,)``
(the scalar explained for each ECG, see :func:`imn.explain.model_fns.target_logit_fn`), an
ECG batch ``x (B, L, C)`` and ``target (B,)``; it returns an attribution ``(B, L, C)`` in
``x``'s dtype. The functions are jittable (pass the keyword options as static arguments);
:func:`imn.explain.attribute` wraps them with the jit cache.

Gradients of the batch sum ``sum_b target_logit(x)[b]`` are per-sample gradients because
each ECG's output depends on that ECG only (true for every model in evaluation mode).

``target`` may also be a Python int (the same class for every ECG).

Memory is bounded by ``chunk_size``, the number of ECGs (or path points) sent through the
model in one forward/backward pass: ECGs are processed in groups, one after another
(:func:`map_batches`, like ``lax.map(batch_size=...)`` but each group is one ordinary batch
for the model), and the integration path / expectation samples in chunks whose
contributions are summed as they come (:func:`accumulate`), so nothing of size
``steps x B x L x C`` is ever stored. When everything fits in one pass there is no loop.

XLA:CPU caveat (measured with jax 0.10.2 on this project's models): inside a ``while`` loop
(and for ``vmap``-ed per-ECG gradients) XLA:CPU emits a convolution's input-gradient with
the reversed kernel in ``...01oi`` layout instead of transposing it, which takes a slow
generic kernel: 6-25x slower than the same gradient at top level. On the CPU backend loops
with at most :data:`CPU_UNROLL_LIMIT` model passes in all are therefore unrolled into
straight-line code; longer ones stay loops (bounded compile time, slow on CPU).
Accelerators always loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
TargetLogit = Callable[[Array, Array], Array]

INTEGRATION_RULES = ("midpoint", "trapezoid")
DEFAULT_CHUNK_SIZE = 64
CPU_UNROLL_LIMIT = 16


def loop_unroll(total_passes: int) -> bool:
    """Whether to unroll loops making ``total_passes`` model passes (module docstring)."""
    return total_passes <= CPU_UNROLL_LIMIT and jax.default_backend() == "cpu"


def map_batches(
    fn: Callable, xs: tuple[Array, ...], batch_size: int, *, unroll: bool | None = None
) -> Array:
    """Apply ``fn`` to groups of at most ``batch_size`` items, one group after another.

    ``fn`` maps a batch (leading axis: items) to outputs with the same leading axis, like
    ``lax.map(batch_size=...)`` but without ``vmap``: each group reaches the model as one
    ordinary batch. A batch that fits in one group is a single call without a loop; a
    remainder group is a second call. ``unroll=None`` decides with :func:`loop_unroll`.
    """
    batch = jax.tree.leaves(xs)[0].shape[0]
    batch_size = max(1, min(int(batch_size), batch))
    if batch <= batch_size:
        return fn(xs)
    num_groups, remainder = divmod(batch, batch_size)
    if unroll is None:
        unroll = loop_unroll(num_groups + bool(remainder))
    split = num_groups * batch_size
    grouped = jax.tree.map(
        lambda a: a[:split].reshape(num_groups, batch_size, *a.shape[1:]), xs
    )
    ys = scan_or_unroll(lambda group: fn(group), grouped, unroll)
    ys = jax.tree.map(lambda a: a.reshape(split, *a.shape[2:]), ys)
    if remainder:
        rest = fn(jax.tree.map(lambda a: a[split:], xs))
        ys = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), ys, rest)
    return ys


def scan_or_unroll(fn: Callable, xs: Any, unroll: bool) -> Any:
    """``lax.map(fn, xs)`` as a loop, or, with ``unroll``, as straight-line code (stacked)."""
    length = jax.tree.leaves(xs)[0].shape[0]
    if unroll or length == 1:
        outputs = [fn(jax.tree.map(lambda a, i=i: a[i], xs)) for i in range(length)]
        return jax.tree.map(lambda *parts: jnp.stack(parts), *outputs)
    return jax.lax.map(fn, xs)


def accumulate(fn: Callable, init: Array, xs: Any, unroll: bool) -> Array:
    """``init + sum_i fn(xs[i])`` as a loop, or, with ``unroll``, as straight-line code."""
    length = jax.tree.leaves(xs)[0].shape[0]
    if unroll or length == 1:
        total = init
        for i in range(length):
            total = total + fn(jax.tree.map(lambda a, i=i: a[i], xs))
        return total
    total, _ = jax.lax.scan(lambda acc, item: (acc + fn(item), None), init, xs)
    return total


def batch_gradient(target_logit: TargetLogit, x: Array, target: Array) -> Array:
    """``d target_logit(x)[n] / d x[n]`` for every ECG: ``(N, L, C)``."""
    return jax.grad(lambda z: target_logit(z, target).sum())(x)


def check_batch(x: Array, target: Array | int) -> Array:
    """Validate ``x (B, L, C)``; return ``target`` as a ``(B,)`` int32 array."""
    if x.ndim != 3:
        raise ValueError(f"x must be (batch, time, leads), got shape {x.shape}")
    target = jnp.asarray(target)
    if not jnp.issubdtype(target.dtype, jnp.integer):
        raise TypeError(f"target must be integer class indices, got dtype {target.dtype}")
    if target.ndim == 0:
        target = jnp.full((x.shape[0],), target)
    if target.shape != (x.shape[0],):
        raise ValueError(f"target must be an int or have shape ({x.shape[0]},), got {target.shape}")
    return target.astype(jnp.int32)


def _check_chunk(chunk_size: int) -> int:
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size}")
    return int(chunk_size)


def saliency(
    target_logit: TargetLogit,
    x: Array,
    target: Array | int,
    *,
    absolute: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Array:
    """Vanilla gradient (Simonyan et al. 2014): ``d s_target / d x``, ``(B, L, C)``.

    ``absolute=True`` returns ``|gradient|`` (the original saliency map); the default keeps
    the sign, which the faithfulness metrics can use.
    """
    target = check_batch(x, target)
    chunk_size = _check_chunk(chunk_size)
    grads = map_batches(lambda args: batch_gradient(target_logit, *args), (x, target), chunk_size)
    return jnp.abs(grads) if absolute else grads


def input_x_gradient(
    target_logit: TargetLogit,
    x: Array,
    target: Array | int,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Array:
    """Input times gradient (Shrikumar et al. 2016): ``x * d s_target / d x``, ``(B, L, C)``."""
    return x * saliency(target_logit, x, target, chunk_size=chunk_size)


def integration_points(steps: int, rule: str = "midpoint") -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``alpha (S,)`` in [0, 1] and weights ``(S,)`` (summing to 1) of a quadrature rule.

    * ``"midpoint"``: ``alpha_s = (s + 1/2) / S``, weights ``1/S`` (Riemann midpoint sum;
      error O(1/S^2), never evaluates the baseline or the input itself).
    * ``"trapezoid"``: ``alpha_s = s / (S - 1)``, weights ``1/(S-1)``, halved at both ends
      (error O(1/S^2); needs S >= 2).
    """
    steps = int(steps)
    if rule not in INTEGRATION_RULES:
        raise ValueError(f"rule must be one of {INTEGRATION_RULES}, got {rule!r}")
    if steps < 1 or (rule == "trapezoid" and steps < 2):
        raise ValueError(f"steps must be >= {1 if rule == 'midpoint' else 2}, got {steps}")
    if rule == "midpoint":
        alphas = (np.arange(steps) + 0.5) / steps
        weights = np.full(steps, 1.0 / steps)
    else:
        alphas = np.arange(steps) / (steps - 1)
        weights = np.full(steps, 1.0 / (steps - 1))
        weights[[0, -1]] *= 0.5
    return alphas.astype(np.float32), weights.astype(np.float32)


def _chunk_layout(num_points: int, batch: int, chunk_size: int) -> tuple[int, int, int]:
    """Split ``num_points`` per ECG into chunks: (points per chunk, chunks, ECGs per pass).

    A pass through the model sees ``ecgs_per_pass * points_per_chunk <= max(chunk_size,
    points_per_chunk)`` inputs.
    """
    per_chunk = min(num_points, chunk_size)
    num_chunks = -(-num_points // per_chunk)
    ecgs_per_pass = max(1, min(batch, chunk_size // per_chunk))
    return per_chunk, num_chunks, ecgs_per_pass


def _unroll_nested(batch: int, ecgs_per_pass: int, num_chunks: int) -> bool:
    """Unroll both loops (ECG groups, chunks per ECG) or neither: an unrolled loop nested in
    a rolled one would still run its passes inside a ``while`` body."""
    return loop_unroll(-(-batch // ecgs_per_pass) * num_chunks)


def integrated_gradients(
    target_logit: TargetLogit,
    x: Array,
    target: Array | int,
    *,
    baseline: Array | float | None = None,
    steps: int = 50,
    rule: str = "midpoint",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Array:
    """Integrated gradients (Sundararajan et al. 2017), ``(B, L, C)``:

        IG(x) = (x - x') * integral_0^1 grad s(x' + alpha (x - x')) d alpha

    approximated by the quadrature rule of :func:`integration_points` (``rule``, ``steps``).
    Completeness: ``sum IG = s(x) - s(x')`` up to the quadrature error.

    Args:
      baseline: the reference ``x'``: ``None`` or a number (a constant signal; ``None`` is
        0, the mean of a z-scored lead), or an array ``(L, C)`` or ``(B, L, C)``.
      steps: number of gradient evaluations per ECG.
      chunk_size: path points through the model per pass (memory bound).
    """
    target = check_batch(x, target)
    chunk_size = _check_chunk(chunk_size)
    baseline = jnp.broadcast_to(
        jnp.asarray(0.0 if baseline is None else baseline, x.dtype), x.shape
    )
    alphas, weights = integration_points(steps, rule)
    per_chunk, num_chunks, ecgs_per_pass = _chunk_layout(steps, x.shape[0], chunk_size)
    padding = per_chunk * num_chunks - steps
    # Padded nodes get weight 0: they cost a little compute but change nothing.
    alphas = np.pad(alphas, (0, padding)).reshape(num_chunks, per_chunk)
    weights = np.pad(weights, (0, padding)).reshape(num_chunks, per_chunk)

    def one_group(args: tuple[Array, Array, Array]) -> Array:
        xs, ts, bases = args  # (E, L, C), (E,), (E, L, C)
        deltas = xs - bases
        group = xs.shape[0]

        def chunk_sum(chunk: tuple[Array, Array]) -> Array:
            """``sum_s w_s grad s(x' + alpha_s delta)`` over one chunk of nodes: (E, L, C)."""
            alpha, weight = chunk
            points = bases[:, None] + alpha.astype(x.dtype)[None, :, None, None] * deltas[:, None]
            grads = batch_gradient(
                target_logit,
                points.reshape(group * per_chunk, *x.shape[1:]),
                jnp.repeat(ts, per_chunk),
            ).reshape(group, per_chunk, *x.shape[1:])
            return jnp.einsum("s,esld->eld", weight.astype(grads.dtype), grads)

        mean_grad = accumulate(
            chunk_sum, jnp.zeros_like(xs), (jnp.asarray(alphas), jnp.asarray(weights)), unroll
        )
        return deltas * mean_grad

    unroll = _unroll_nested(x.shape[0], ecgs_per_pass, num_chunks)
    return map_batches(one_group, (x, target, baseline), ecgs_per_pass, unroll=unroll)


def as_key(seed: int | Array) -> Array:
    """An int seed or a (typed or raw uint32) PRNG key -> a typed key."""
    if isinstance(seed, int):
        return jax.random.key(seed)
    seed = jnp.asarray(seed)
    if jnp.issubdtype(seed.dtype, jax.dtypes.prng_key):
        return seed
    if seed.shape == ():  # a traced integer seed
        return jax.random.key(seed)
    return jax.random.wrap_key_data(seed)


def gradient_shap(
    target_logit: TargetLogit,
    x: Array,
    target: Array | int,
    *,
    background: Array,
    n_samples: int = 50,
    local_smoothing: float = 0.0,
    seed: int | Array = 0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Array:
    """Expected gradients (Erion et al. 2021), what ``shap.GradientExplainer`` computes.

    For each ECG, ``n_samples`` draws of a reference ``x'`` uniformly from ``background``
    and ``alpha ~ U(0, 1)`` (and, when ``local_smoothing > 0``, a noisy copy
    ``x~ = x + local_smoothing * N(0, 1)`` as shap does):

        phi(x) = mean_j (x~_j - x'_j) * grad s(x'_j + alpha_j (x~_j - x'_j))

    which converges to ``E_{x', alpha}[...]``: integrated gradients averaged over the
    background. For a linear model it is ``w * (x - mean(background))``.

    Args:
      background: ``(M, L, C)`` references, e.g. training ECGs.
      seed: int or PRNG key. Draw ``j`` uses ``fold_in(key, j)`` for every ECG (the same
        references, path points and noise for all: common random numbers), so an ECG's map
        depends neither on ``chunk_size`` nor on the other ECGs of its batch or its place
        among them. Max-sensitivity, which re-explains noisy copies elsewhere in a batch,
        then measures the map's change, not the gap between two independent estimates.
    Returns:
      ``(B, L, C)`` in ``x``'s dtype.
    """
    target = check_batch(x, target)
    chunk_size = _check_chunk(chunk_size)
    background = jnp.asarray(background, x.dtype)
    if background.ndim != 3 or background.shape[1:] != x.shape[1:] or background.shape[0] < 1:
        raise ValueError(
            f"background must be (M, {x.shape[1]}, {x.shape[2]}) with M >= 1, got "
            f"{background.shape}"
        )
    n_samples = int(n_samples)
    if n_samples < 1:
        raise ValueError(f"n_samples must be positive, got {n_samples}")
    key = as_key(seed)
    per_chunk, num_chunks, ecgs_per_pass = _chunk_layout(n_samples, x.shape[0], chunk_size)
    draw_index = jnp.arange(num_chunks * per_chunk).reshape(num_chunks, per_chunk)
    num_references = background.shape[0]

    def draw(j: Array) -> tuple[Array, Array, Array | None]:
        """Draw ``j``, shared by every ECG (see ``seed``): reference ``(L, C)``, ``alpha``
        and, with ``local_smoothing``, the noise added to the input ``(L, C)``."""
        k_ref, k_alpha, k_noise = jax.random.split(jax.random.fold_in(key, j), 3)
        reference = background[jax.random.randint(k_ref, (), 0, num_references)]
        alpha = jax.random.uniform(k_alpha, (), x.dtype)
        noise = (local_smoothing * jax.random.normal(k_noise, x.shape[1:], x.dtype)
                 if local_smoothing > 0 else None)
        return reference, alpha, noise

    def one_group(args: tuple[Array, Array]) -> Array:
        xs, ts = args  # (E, L, C), (E,)
        group = xs.shape[0]

        def chunk_sum(indices: Array) -> Array:
            """``sum_j (x~_j - x'_j) * grad s(point_j)`` over one chunk of draws: (E, L, C)."""
            references, alphas, noise = jax.vmap(draw)(indices)  # (c, L, C), (c,), (c, L, C)
            noisy = xs[:, None] if noise is None else xs[:, None] + noise[None]
            deltas = noisy - references[None]  # (E, c, L, C)
            points = references[None] + alphas[None, :, None, None] * deltas
            grads = batch_gradient(
                target_logit,
                points.reshape(group * per_chunk, *x.shape[1:]),
                jnp.repeat(ts, per_chunk),
            ).reshape(deltas.shape)
            valid = (indices < n_samples).astype(grads.dtype)[None, :, None, None]
            return (valid * deltas * grads).sum(axis=1)

        return accumulate(chunk_sum, jnp.zeros_like(xs), draw_index, unroll) / n_samples

    unroll = _unroll_nested(x.shape[0], ecgs_per_pass, num_chunks)
    return map_batches(one_group, (x, target), ecgs_per_pass, unroll=unroll)
