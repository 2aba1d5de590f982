"""Random-perturbation faithfulness scores: faithfulness correlation, infidelity and
max-sensitivity.

All three draw random perturbations of each ECG, re-run the model (or the explainer) on every
perturbed copy, and summarise per ECG. Randomness comes from ``seed`` only, one key per
(perturbation, ECG) row, so results do not depend on ``chunk_size``. Conventions (shapes,
``predict_fn``, ``target``, units) are those of :mod:`imn.faithfulness.perturbation`.
"""

from __future__ import annotations

from functools import partial
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from imn.faithfulness.perturbation import (
    DEFAULT_BLUR_SIGMA,
    PredictFn,
    check_attribution,
    check_chunk_size,
    check_ecg_batch,
    check_positive_int,
    check_predict_fn,
    check_target,
    check_unit,
    chunk_indices,
    clean_outputs,
    features_to_samples,
    map_rows,
    num_features,
    resolve_baseline,
    take_target,
    unit_sums,
)

ExplainFn = Callable[[jax.Array, jax.Array], jax.Array]
PERTURBATIONS = ("additive", "multiplicative")


def pearson(a: jax.Array, b: jax.Array, axis: int = -1) -> jax.Array:
    """Pearson correlation along ``axis``; NaN where either side is constant."""
    a = a - jnp.mean(a, axis=axis, keepdims=True)
    b = b - jnp.mean(b, axis=axis, keepdims=True)
    return jnp.sum(a * b, axis=axis) / jnp.sqrt(
        jnp.sum(a * a, axis=axis) * jnp.sum(b * b, axis=axis)
    )


def _row_keys(seed: int, n_draws: int, batch: int) -> jax.Array:
    """One key per row ``draw * B + ecg``."""
    return jax.random.split(jax.random.key(seed), n_draws * batch)


def _draw(sampler, keys: jax.Array, shape: tuple[int, ...], **kwargs) -> jax.Array:
    """``sampler(key, shape)`` for each key: ``(N,) + shape``.

    Drawn flat and reshaped: XLA on CPU takes seconds to compile threefry for a trailing
    axis of 12 (the leads), and milliseconds for a flat one; the values are the same.
    """
    size = int(np.prod(shape))
    flat = jax.vmap(lambda key: sampler(key, (size,), **kwargs))(keys)
    return flat.reshape((keys.shape[0],) + tuple(shape))


# --------------------------------------------------------------------------------------
# Faithfulness correlation (Bhatt et al. 2020)
# --------------------------------------------------------------------------------------


def random_subsets(keys: jax.Array, count: int, subset_size: int) -> jax.Array:
    """A uniformly random subset of ``subset_size`` of ``count`` features per key:
    ``keys (N,) -> (N, count)`` bool with exactly ``subset_size`` True."""
    scores = jax.vmap(lambda k: jax.random.uniform(k, (count,)))(keys)
    _, chosen = jax.lax.top_k(scores, subset_size)
    rows = jnp.arange(keys.shape[0])[:, None]
    return jnp.zeros((keys.shape[0], count), bool).at[rows, chosen].set(True)


@partial(
    jax.jit,
    static_argnames=("predict_fn", "subset_size", "n_runs", "unit", "segments", "chunk_size"),
)
def _faithfulness_correlation(
    predict_fn, x, attribution, target, fill, seed, *, subset_size, n_runs, unit, segments,
    chunk_size,
):
    batch, length, leads = x.shape
    count = num_features(length, leads, unit, segments)
    sums = unit_sums(attribution, unit, segments)
    keys = _row_keys(seed, n_runs, batch)

    def rows(index):
        ecg = index % batch
        subset = random_subsets(keys[index], count, subset_size)
        attribution_sum = jnp.sum(jnp.where(subset, sums[ecg], 0.0), axis=1)
        removed = features_to_samples(subset, unit, length, leads, segments)
        perturbed = jnp.where(removed, fill[ecg], x[ecg])
        return attribution_sum, take_target(predict_fn(perturbed), target[ecg])

    attribution_sums, outputs = map_rows(rows, n_runs * batch, chunk_size)
    drops = clean_outputs(predict_fn, x, target, chunk_size)[None] - outputs.reshape(n_runs, batch)
    return pearson(attribution_sums.reshape(n_runs, batch), drops, axis=0)


def faithfulness_correlation(
    predict_fn: PredictFn,
    x,
    attribution,
    target,
    *,
    subset_size: int | None = None,
    n_runs: int = 100,
    baseline="zero",
    seed: int = 0,
    unit: str = "sample",
    segments: int = 20,
    blur_sigma: float = DEFAULT_BLUR_SIGMA,
    chunk_size: int | None = None,
) -> jax.Array:
    """Faithfulness correlation (Bhatt et al., IJCAI 2020), per ECG.

    For ``n_runs`` uniformly random subsets ``S`` of ``subset_size`` features, the Pearson
    correlation over runs between ``sum_{i in S} a_i`` and ``f(x) - f(x with S set to the
    baseline)``. With ``unit="patch"`` a subset is a set of lead x segment patches and its
    attribution sum covers every sample of those patches.

    Args:
      subset_size: features per subset; default 10 % of the features.
      n_runs: random subsets per ECG (model evaluations per ECG: ``n_runs + 1``).
      baseline: as in :func:`~imn.faithfulness.perturbation.resolve_baseline`.
    Returns:
      ``(B,)`` in ``[-1, 1]``; NaN for a record whose sums or drops are constant over runs.
    """
    x = check_ecg_batch(x)
    attribution = check_attribution(x, attribution)
    target = check_target(target, x.shape[0])
    check_predict_fn(predict_fn, x, target)
    check_unit(unit, segments, x.shape[1])
    count = num_features(x.shape[1], x.shape[2], unit, segments)
    if subset_size is None:
        subset_size = max(1, round(0.1 * count))
    subset_size = check_positive_int(subset_size, "subset_size")
    if subset_size > count:
        raise ValueError(f"subset_size {subset_size} exceeds the number of features {count}")
    n_runs = check_positive_int(n_runs, "n_runs")
    if n_runs < 2:
        raise ValueError("a correlation needs n_runs >= 2")
    fill = resolve_baseline(x, baseline, blur_sigma)
    return _faithfulness_correlation(
        predict_fn, x, attribution, target, fill, int(seed), subset_size=subset_size,
        n_runs=n_runs, unit=unit, segments=int(segments),
        chunk_size=check_chunk_size(chunk_size, x.shape[1]),
    )


# --------------------------------------------------------------------------------------
# Infidelity (Yeh et al. 2019)
# --------------------------------------------------------------------------------------


@partial(
    jax.jit,
    static_argnames=("predict_fn", "n_perturbations", "perturbation", "optimal_scaling",
                     "chunk_size"),
)
def _infidelity(
    predict_fn, x, attribution, target, noise_std, seed, *, n_perturbations, perturbation,
    optimal_scaling, chunk_size,
):
    batch = x.shape[0]
    keys = _row_keys(seed, n_perturbations, batch)

    def rows(index):
        ecg = index % batch
        noise = noise_std * _draw(jax.random.normal, keys[index], x.shape[1:])
        # Additive: I = noise and I.a. Multiplicative: I = noise * x and noise.a, which is
        # I.(a / x) -- the gradient-form of a contribution-type attribution a = g * x.
        shift = noise * x[ecg] if perturbation == "multiplicative" else noise
        explained = jnp.sum(noise * attribution[ecg], axis=(1, 2))
        return explained, take_target(predict_fn(x[ecg] - shift), target[ecg])

    explained, outputs = map_rows(rows, n_perturbations * batch, chunk_size)
    explained = explained.reshape(n_perturbations, batch)
    drops = clean_outputs(predict_fn, x, target, chunk_size)[None] - outputs.reshape(
        n_perturbations, batch
    )
    if optimal_scaling:
        # An all-zero map explains none of the drops: beta = 0, and its infidelity is the
        # drops' mean square (the worst case), not the 0 / 0 that would hide it as NaN.
        # beta >= 0: a free sign would let a map that predicts every drop backwards (-phi)
        # score as well as phi; clipped, it scores as the empty map.
        norm = jnp.mean(explained**2, axis=0)
        beta = jnp.where(norm > 0, jnp.mean(explained * drops, axis=0) / jnp.where(norm > 0, norm, 1.0), 0.0)
        beta = jnp.maximum(beta, 0.0)
        explained = beta[None] * explained
    score = jnp.mean((explained - drops) ** 2, axis=0)
    # An output that no perturbation moves (a saturated probability) scores every map alike
    # (0 with optimal scaling): undefined, NaN, as faithfulness correlation is there.
    return jnp.where(jnp.mean(drops**2, axis=0) > 0, score, jnp.nan)


def infidelity(
    predict_fn: PredictFn,
    x,
    attribution,
    target,
    *,
    n_perturbations: int = 64,
    noise_std: float = 0.1,
    perturbation: str = "additive",
    optimal_scaling: bool = False,
    seed: int = 0,
    chunk_size: int | None = None,
) -> jax.Array:
    """Infidelity (Yeh et al., NeurIPS 2019), per ECG (lower is better):

        INFD = E_I[(I^T phi - (f(x) - f(x - I)))^2]

    estimated with ``n_perturbations`` Gaussian draws ``eps ~ N(0, noise_std^2)`` per sample.

    * ``perturbation="additive"`` (Yeh's definition): ``I = eps`` and ``phi = attribution``.
      The attribution is read as a gradient-like sensitivity: for ``f(x) = w.x + c`` the exact
      answer is ``phi = w``.
    * ``perturbation="multiplicative"``: ``I = eps * x`` and the score compares
      ``eps^T attribution`` with the drop, i.e. ``phi = attribution / x``. This is the right
      reading for contribution-type attributions (IMN's ``W * x``, gradient x input,
      integrated gradients, SHAP): for ``f(x) = w.x + c`` the exact answer is ``w * x``.
      It mirrors Yeh et al.'s pairing of removal perturbations with ``gradient * input``.

    ``optimal_scaling=True`` rescales ``I^T phi`` per ECG by the least-squares factor
    ``beta = E[I^T phi * drop] / E[(I^T phi)^2]`` before squaring, as in the authors' code,
    so that attributions are not penalised for their overall scale (or for being in logit
    units when ``predict_fn`` returns probabilities). The factor is kept non-negative (the
    authors' is free): with a free sign, ``-phi`` (every drop predicted backwards) would score
    exactly as ``phi``; clipped at 0, it scores as an all-zero map, which gets ``beta = 0``
    and the drops' mean square. The default is the plain definition.

    Returns ``(B,)``, NaN for an ECG whose output no perturbation moved (every drop 0, e.g.
    a probability saturated at 1 in float32): there any map scores alike.
    """
    x = check_ecg_batch(x)
    attribution = check_attribution(x, attribution)
    target = check_target(target, x.shape[0])
    check_predict_fn(predict_fn, x, target)
    if perturbation not in PERTURBATIONS:
        raise ValueError(f"perturbation must be one of {PERTURBATIONS}, got {perturbation!r}")
    if not noise_std > 0:
        raise ValueError(f"noise_std must be positive, got {noise_std}")
    return _infidelity(
        predict_fn, x, attribution, target, jnp.float32(noise_std), int(seed),
        n_perturbations=check_positive_int(n_perturbations, "n_perturbations"),
        perturbation=perturbation, optimal_scaling=bool(optimal_scaling),
        chunk_size=check_chunk_size(chunk_size, x.shape[1]),
    )


# --------------------------------------------------------------------------------------
# Max-sensitivity (Yeh et al. 2019)
# --------------------------------------------------------------------------------------


@partial(jax.jit, static_argnames=("n_samples",))
def _perturbed_rows(x, keys, radius, *, n_samples):
    """Rows ``draw * B + ecg``: ``x[ecg]`` plus uniform noise in ``[-radius, radius]``."""
    delta = _draw(jax.random.uniform, keys, x.shape[1:], minval=-radius, maxval=radius)
    return jnp.tile(x, (n_samples, 1, 1)) + delta


@partial(jax.jit, static_argnames=("n_samples", "normalize"))
def _sensitivity(moved, reference, *, n_samples, normalize):
    batch = reference.shape[0]
    moved = moved.reshape((n_samples, batch) + reference.shape[1:])
    distances = jnp.sqrt(jnp.sum((moved - reference[None]) ** 2, axis=(2, 3)))
    sensitivity = jnp.max(distances, axis=0)
    if normalize:
        sensitivity = sensitivity / jnp.sqrt(jnp.sum(reference**2, axis=(1, 2)))
    return sensitivity


def _explain_in_blocks(explain_fn, rows, targets, block: int):
    """``explain_fn`` on at most ``block`` rows at a time, in the equal padded chunks of
    :func:`chunk_indices` (one shape, so a jitted explainer compiles once). Called from
    Python, not traced inside another program: explainers that loop over their own chunks
    (integrated and expected gradients) ran about 5x slower nested in a ``lax.map`` than
    alone (measured on IMN at 100 Hz, 24 integrated-gradients explanations: 92 s against
    3 x 5.4 s)."""
    out = [explain_fn(rows[i], targets[i]) for i in chunk_indices(rows.shape[0], block)]
    return jnp.concatenate(out)[: rows.shape[0]]


def max_sensitivity(
    explain_fn: ExplainFn,
    x,
    target,
    *,
    radius: float = 0.05,
    n_samples: int = 10,
    normalize: bool = True,
    seed: int = 0,
    chunk_size: int | None = None,
    reference=None,
) -> jax.Array:
    """Max-sensitivity (Yeh et al., NeurIPS 2019), per ECG (lower is better):

        max_{delta ~ U[-radius, radius]^(L x C)} ||a(x + delta) - a(x)|| / ||a(x)||

    a Monte-Carlo lower bound of the supremum over the L-infinity ball, from ``n_samples``
    uniform draws. Norms are Frobenius over ``(L, C)``; ``normalize=False`` drops the
    denominator (Yeh's unnormalised form). ``radius`` is in input units (0.05 of a
    z-scored ECG is small next to a QRS complex).

    Args:
      explain_fn: ``(x (N, L, C), target (N,)) -> (N, L, C)``, jittable (e.g.
        ``lambda x, t: attribute("gradient", model, x, t)``); static under ``jit``, so
        build it once. It is called from Python on ``chunk_size`` perturbed ECGs at a time.
      reference: ``a(x)`` ``(B, L, C)`` when it is already computed (the explanation being
        scored), which saves one of the ``n_samples + 1`` explanation passes; by default it
        is recomputed with ``explain_fn``.
    Returns:
      ``(B,)``; NaN where ``a(x)`` is all zero and ``normalize=True``.
    """
    x = check_ecg_batch(x)
    target = check_target(target, x.shape[0])
    if not radius > 0:
        raise ValueError(f"radius must be positive, got {radius}")
    one = jax.ShapeDtypeStruct((1,) + x.shape[1:], x.dtype)
    out = jax.eval_shape(explain_fn, one, jax.ShapeDtypeStruct((1,), target.dtype))
    if getattr(out, "shape", None) != one.shape:
        raise ValueError(
            f"explain_fn must return an attribution shaped like its input {one.shape}, got "
            f"{getattr(out, 'shape', type(out).__name__)}"
        )
    if reference is not None:
        reference = jnp.asarray(reference, jnp.float32)
        if reference.shape != x.shape:
            raise ValueError(f"reference must be shaped like x {x.shape}, got {reference.shape}")
    n_samples = check_positive_int(n_samples, "n_samples")
    block = check_chunk_size(chunk_size, x.shape[1])
    if reference is None:
        reference = _explain_in_blocks(explain_fn, x, target, block)
    # The perturbed copies of every ECG, (n_samples * B, L, C): memory that grows with the
    # batch, as the curves' outputs do; the explainer sees ``block`` of them at a time.
    rows = _perturbed_rows(x, _row_keys(int(seed), n_samples, x.shape[0]), jnp.float32(radius),
                           n_samples=n_samples)
    moved = _explain_in_blocks(explain_fn, rows, jnp.tile(target, n_samples), block)
    return _sensitivity(moved, reference, n_samples=n_samples, normalize=bool(normalize))
