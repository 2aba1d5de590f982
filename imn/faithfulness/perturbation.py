"""Deletion and insertion curves, AOPC and the shared perturbation machinery.

A perturbation test ranks the input features by an attribution, replaces (deletion) or
reveals (insertion) them cumulatively, and records the model's output for the target class
after every step. Because ECG-IMN's linear weights ``W(x)`` are themselves functions of the
input (DESIGN.md section 2), the whole model is re-run on every perturbed ECG here; nothing
computed on the clean input is reused except the ranking.

Conventions shared by every function in :mod:`imn.faithfulness`:

* ``x`` and ``attribution`` are channels-last ``(B, L, C)`` arrays (C = 12 leads).
* ``predict_fn(x (N, L, C)) -> (N, K)`` is a pure, jittable function (probabilities for the
  curves, any score for AOPC and friends). It is a static argument of the jitted kernels:
  build it once and reuse it, or every call recompiles.
* ``target`` is an int or a ``(B,)`` integer array: the class read from ``predict_fn``.
* A *feature* is either one sample of one lead (``unit="sample"``, ``F = L * C``) or one
  lead x time-segment patch (``unit="patch"``, ``F = C * segments``; time sample ``t`` belongs
  to segment ``floor(t * segments / L)``, so segments differ in length by at most one).
  Flattened feature index = ``time_or_segment * C + lead``. Ranking ties (the zeros of a
  sparse map such as Grad-CAM) are broken in a fixed random order per row of the batch
  (:func:`tie_break_order`), not by position, which would delete the start of the record
  first.
* Work is laid out as ``rows`` (one row = one perturbed ECG) and evaluated ``chunk_size`` rows
  per model call with :func:`jax.lax.map`, which bounds memory (at 500 Hz one IMN forward
  pass holds tens of MB of activations per ECG) while keeping each call batched. The default
  (``chunk_size=None``) depends on the backend, see :func:`default_chunk_size`.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

PredictFn = Callable[[jax.Array], jax.Array]

UNITS = ("sample", "patch")
BASELINE_KINDS = ("zero", "mean", "blur")
ORDERS = ("morf", "lerf")
# Default rows (perturbed ECGs) per model call, as a budget of time samples per call. On a
# GPU/TPU large batches fill the device (64 ECGs at 100 Hz, 12 at 500 Hz: a few GB of IMN
# activations). On CPU a convolutional model is memory-bound and larger batches only spill
# the caches: 1-4 ECGs per call measured as fast as or faster than 32 (benchmarks/
# bench_faithfulness.py), so the CPU budget is 4 ECGs at 100 Hz, 1 at 500 Hz.
ACCELERATOR_SAMPLES_PER_CALL = 64_000
CPU_SAMPLES_PER_CALL = 4_000
# Gaussian blur width: 0.1 s. It smears the QRS complex (~0.1 s) into a bump while keeping
# the slow baseline and T-wave envelope. In samples: 10 at 100 Hz (the default), 50 at
# 500 Hz (blur_sigma_samples).
BLUR_SECONDS = 0.1
DEFAULT_BLUR_SIGMA = 10.0


def blur_sigma_samples(sampling_rate: float) -> float:
    """The blur baseline's Gaussian width in samples at ``sampling_rate`` Hz (0.1 s)."""
    return BLUR_SECONDS * float(sampling_rate)
BLUR_TRUNCATE = 4.0


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------


def check_ecg_batch(x, name: str = "x") -> jax.Array:
    """``x`` as a float array of shape ``(B, L, C)``, or a ValueError naming the problem."""
    x = jnp.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"{name} must be an ECG batch of shape (batch, time, lead), got {x.shape}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    return x


def check_attribution(x: jax.Array, attribution) -> jax.Array:
    attribution = jnp.asarray(attribution)
    if attribution.shape != x.shape:
        raise ValueError(
            f"attribution must have the shape of x {x.shape}, got {attribution.shape}"
        )
    return attribution.astype(jnp.float32)


def check_target(target, batch: int) -> jax.Array:
    """An int or ``(B,)`` integer array -> ``(B,)`` int32."""
    target = jnp.asarray(target)
    if not jnp.issubdtype(target.dtype, jnp.integer):
        raise ValueError(f"target must be an integer class index, got dtype {target.dtype}")
    if target.ndim == 0:
        target = jnp.full((batch,), target)
    if target.shape != (batch,):
        raise ValueError(f"target must be an int or have shape ({batch},), got {target.shape}")
    if not isinstance(target, jax.core.Tracer) and bool(jnp.any(target < 0)):
        raise ValueError(f"target must be non-negative, got {np.asarray(target)}")
    return target.astype(jnp.int32)


def check_predict_fn(predict_fn, x: jax.Array, target: jax.Array) -> None:
    """Traces ``predict_fn`` on one ECG (no computation) to check that it returns ``(N, K)``
    and that every target indexes one of the K outputs; an out-of-range class would
    otherwise read as NaN deep inside a jitted loop."""
    if not callable(predict_fn):
        raise ValueError(f"predict_fn must be callable, got {type(predict_fn).__name__}")
    out = jax.eval_shape(predict_fn, jax.ShapeDtypeStruct((1,) + x.shape[1:], x.dtype))
    if not hasattr(out, "shape") or len(out.shape) != 2 or out.shape[0] != 1:
        raise ValueError(
            "predict_fn must map (N, L, C) ECGs to (N, K) outputs; on shape "
            f"{(1,) + x.shape[1:]} it returned {getattr(out, 'shape', type(out).__name__)}"
        )
    if not isinstance(target, jax.core.Tracer) and int(jnp.max(target)) >= out.shape[1]:
        raise ValueError(
            f"target {np.asarray(target).tolist()} out of range for predict_fn's "
            f"{out.shape[1]} outputs"
        )


def check_unit(unit: str, segments: int, length: int) -> None:
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
    if unit == "patch" and not 1 <= segments <= length:
        raise ValueError(f"segments must lie in [1, L={length}], got {segments}")


def default_chunk_size(length: int) -> int:
    """Rows per model call when ``chunk_size=None``: see the budgets above."""
    budget = (
        CPU_SAMPLES_PER_CALL if jax.default_backend() == "cpu" else ACCELERATOR_SAMPLES_PER_CALL
    )
    return max(1, budget // length)


def check_chunk_size(chunk_size, length: int) -> int:
    if chunk_size is None:
        return default_chunk_size(length)
    return check_positive_int(chunk_size, "chunk_size")


def check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------------------
# Baselines
# --------------------------------------------------------------------------------------


def gaussian_kernel(sigma: float, truncate: float = BLUR_TRUNCATE) -> np.ndarray:
    """Normalised Gaussian taps of radius ``int(truncate * sigma + 0.5)`` (scipy's rule)."""
    radius = int(truncate * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = np.exp(-0.5 * (offsets / sigma) ** 2)
    return (taps / taps.sum()).astype(np.float32)


def gaussian_blur(x: jax.Array, sigma: float = DEFAULT_BLUR_SIGMA) -> jax.Array:
    """Gaussian blur over time, each lead separately.

    Matches ``scipy.ndimage.gaussian_filter1d(x, sigma, axis=1, mode="reflect",
    truncate=4.0)``: the signal is mirrored at both ends (edge sample repeated), so the blur
    of a constant lead is that constant.

    Shapes: ``(B, L, C) -> (B, L, C)``.
    """
    if sigma <= 0:
        raise ValueError(f"blur sigma must be positive, got {sigma}")
    batch, length, leads = x.shape
    taps = gaussian_kernel(float(sigma))
    radius = taps.size // 2
    # jnp.pad's "symmetric" is scipy's "reflect" (d c b a | a b c d | d c b a).
    padded = jnp.pad(x.astype(jnp.float32), ((0, 0), (radius, radius), (0, 0)), mode="symmetric")
    rows = jnp.swapaxes(padded, 1, 2).reshape(batch * leads, length + 2 * radius, 1)
    blurred = jax.lax.conv_general_dilated(
        rows,
        jnp.asarray(taps[::-1, None, None]),
        window_strides=(1,),
        padding="VALID",
        dimension_numbers=("NWC", "WIO", "NWC"),
        precision=jax.lax.Precision.HIGHEST,
    )
    return jnp.swapaxes(blurred.reshape(batch, leads, length), 1, 2)


def resolve_baseline(x: jax.Array, baseline, blur_sigma: float = DEFAULT_BLUR_SIGMA) -> jax.Array:
    """The replacement values for removed features, ``(B, L, C)``.

    ``baseline``: ``"zero"``; ``"mean"`` (each record's per-lead mean over time); ``"blur"``
    (:func:`gaussian_blur` with ``blur_sigma`` samples); or an array broadcastable to
    ``x.shape`` (e.g. a population-average beat, or ``(L, C)`` shared by all records).
    """
    if isinstance(baseline, str):
        if baseline == "zero":
            return jnp.zeros_like(x)
        if baseline == "mean":
            return jnp.broadcast_to(jnp.mean(x, axis=1, keepdims=True), x.shape)
        if baseline == "blur":
            return gaussian_blur(x, blur_sigma).astype(x.dtype)
        raise ValueError(
            f"baseline must be one of {BASELINE_KINDS} or an array, got {baseline!r}"
        )
    baseline = jnp.asarray(baseline, dtype=x.dtype)
    try:
        return jnp.broadcast_to(baseline, x.shape)
    except ValueError:
        raise ValueError(
            f"an explicit baseline must broadcast to x's shape {x.shape}, got {baseline.shape}"
        ) from None


# --------------------------------------------------------------------------------------
# Features, ranks and the row mapper
# --------------------------------------------------------------------------------------


def segment_index(length: int, segments: int) -> np.ndarray:
    """Time segment of each sample, ``(L,)``: ``floor(t * segments / L)``."""
    return (np.arange(length) * segments) // length


def num_features(length: int, leads: int, unit: str, segments: int) -> int:
    return length * leads if unit == "sample" else segments * leads


def unit_sums(attribution: jax.Array, unit: str, segments: int) -> jax.Array:
    """Attribution summed over each feature, ``(B, L, C) -> (B, F)``."""
    batch, length, leads = attribution.shape
    if unit == "sample":
        return attribution.reshape(batch, length * leads)
    sums = jax.ops.segment_sum(
        jnp.swapaxes(attribution, 0, 1), jnp.asarray(segment_index(length, segments)),
        num_segments=segments, indices_are_sorted=True,
    )  # (S, B, C)
    return jnp.swapaxes(sums, 0, 1).reshape(batch, segments * leads)


def unit_scores(attribution: jax.Array, unit: str, segments: int) -> jax.Array:
    """The score each feature is ranked by, ``(B, F)``: the sample's attribution, or the
    patch's mean attribution (mean, so that one-sample-longer segments gain no edge)."""
    if unit == "sample":
        return unit_sums(attribution, unit, segments)
    length, leads = attribution.shape[1:]
    counts = np.bincount(segment_index(length, segments), minlength=segments)
    per_feature = jnp.asarray(np.repeat(counts, leads), jnp.float32)
    return unit_sums(attribution, unit, segments) / per_feature


TIE_BREAK_SEED = 0


def tie_break_order(batch: int, count: int) -> jax.Array:
    """``(B, F)`` int32: per row of the batch (an ECG's position among those explained, not
    its identity), a permutation of the features drawn from a fixed key (:data:`TIE_BREAK_SEED`
    folded with the row, threefry pinned so that another JAX default does not change it): the
    order in which tied features are taken. Fixed, so curves are reproducible; random, so no
    part of the record is favoured."""
    root = jax.random.key(TIE_BREAK_SEED, impl="threefry2x32")
    keys = jax.vmap(lambda row: jax.random.fold_in(root, row))(jnp.arange(batch))
    return jax.vmap(lambda key: jax.random.permutation(key, count))(keys).astype(jnp.int32)


def descending_ranks(scores: jax.Array) -> jax.Array:
    """Position of each feature in the descending order, ``(B, F)`` int32.

    Rank 0 is the highest score; equal scores are taken in :func:`tie_break_order`. NaN
    scores rank last.
    """
    batch, count = scores.shape
    shuffle = tie_break_order(batch, count)
    # A stable sort of the shuffled scores, mapped back to feature indices.
    shuffled = jnp.take_along_axis(scores, shuffle, axis=-1)
    order = jnp.take_along_axis(shuffle, jnp.argsort(-shuffled, axis=-1, stable=True), axis=-1)
    positions = jnp.broadcast_to(jnp.arange(count, dtype=jnp.int32), (batch, count))
    return jnp.zeros((batch, count), jnp.int32).at[jnp.arange(batch)[:, None], order].set(
        positions
    )


def features_to_samples(values: jax.Array, unit: str, length: int, leads: int, segments: int):
    """Spreads per-feature values ``(N, F)`` over the samples they cover: ``(N, L, C)``."""
    rows = values.shape[0]
    if unit == "sample":
        return values.reshape(rows, length, leads)
    return values.reshape(rows, segments, leads)[:, jnp.asarray(segment_index(length, segments))]


def step_counts(steps: int, count: int) -> np.ndarray:
    """Features removed after each step, ``(steps + 1,)``: ``round(s / steps * count)`` with
    halves rounded up, in exact integer arithmetic."""
    s = np.arange(steps + 1, dtype=np.int64)
    return ((2 * s * count + steps) // (2 * steps)).astype(np.int32)


def map_rows(row_fn: Callable[[jax.Array], object], n_rows: int, chunk_size: int):
    """Evaluates ``row_fn(indices (chunk,)) -> pytree of (chunk, ...)`` on every row index
    ``0 .. n_rows - 1``, ``chunk_size`` rows at a time, with :func:`jax.lax.map`.

    The chunk is the smallest size giving the same number of calls as ``chunk_size``, so at
    most ``n_chunks - 1`` padded rows (repeats of the last row) are wasted.
    Returns the pytree with leading axis ``n_rows``.
    """
    indices = chunk_indices(n_rows, chunk_size)
    out = jax.lax.map(row_fn, indices)
    return jax.tree.map(lambda a: a.reshape((indices.size,) + a.shape[2:])[:n_rows], out)


def chunk_indices(n_rows: int, chunk_size: int) -> jax.Array:
    """Row indices ``(n_chunks, chunk)`` covering ``0 .. n_rows - 1`` in ``ceil(n_rows /
    chunk_size)`` equal chunks, the smallest ``chunk`` giving that many; the last chunk is
    padded by repeating row ``n_rows - 1``."""
    n_chunks = math.ceil(n_rows / chunk_size)
    chunk = math.ceil(n_rows / n_chunks)
    indices = jnp.minimum(jnp.arange(n_chunks * chunk, dtype=jnp.int32), n_rows - 1)
    return indices.reshape(n_chunks, chunk)


def take_target(outputs: jax.Array, target: jax.Array) -> jax.Array:
    """``outputs (N, K)``, ``target (N,)`` -> ``(N,)``."""
    return jnp.take_along_axis(outputs, target[:, None], axis=1)[:, 0]


def clean_outputs(predict_fn: PredictFn, x: jax.Array, target: jax.Array, chunk_size: int):
    """``predict_fn(x)[b, target[b]]`` for every record, ``(B,)``, chunked like the rest."""
    return map_rows(lambda b: take_target(predict_fn(x[b]), target[b]), x.shape[0], chunk_size)


# --------------------------------------------------------------------------------------
# Curves
# --------------------------------------------------------------------------------------


@partial(
    jax.jit,
    static_argnames=(
        "predict_fn", "steps", "unit", "segments", "absolute", "order", "insertion", "chunk_size"
    ),
)
def _perturbation_curve(
    predict_fn, x, attribution, target, fill, *, steps, unit, segments, absolute, order,
    insertion, chunk_size,
):
    batch, length, leads = x.shape
    scores = unit_scores(attribution, unit, segments)
    if absolute:
        scores = jnp.abs(scores)
    if order == "lerf":
        scores = -scores
    # One rank per sample, computed once per ECG: step s touches the samples with rank < k_s.
    rank_map = features_to_samples(descending_ranks(scores), unit, length, leads, segments)
    counts = jnp.asarray(step_counts(steps, num_features(length, leads, unit, segments)))

    def rows(index):
        ecg, step = index % batch, index // batch
        touched = rank_map[ecg] < counts[step][:, None, None]
        if insertion:  # start from the baseline, reveal the top features of x
            perturbed = jnp.where(touched, x[ecg], fill[ecg])
        else:  # start from x, replace the top features by the baseline
            perturbed = jnp.where(touched, fill[ecg], x[ecg])
        return take_target(predict_fn(perturbed), target[ecg])

    # Rows are step-major (row = step * B + ecg), so a chunk mixes records of one step.
    values = map_rows(rows, (steps + 1) * batch, chunk_size)
    return values.reshape(steps + 1, batch).T


def _curve(
    predict_fn, x, attribution, target, *, steps, unit, baseline, absolute, segments, order,
    blur_sigma, chunk_size, insertion,
):
    x = check_ecg_batch(x)
    attribution = check_attribution(x, attribution)
    target = check_target(target, x.shape[0])
    check_predict_fn(predict_fn, x, target)
    steps = check_positive_int(steps, "steps")
    chunk_size = check_chunk_size(chunk_size, x.shape[1])
    check_unit(unit, segments, x.shape[1])
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    fill = resolve_baseline(x, baseline, blur_sigma)
    return _perturbation_curve(
        predict_fn, x, attribution, target, fill, steps=steps, unit=unit,
        segments=int(segments), absolute=bool(absolute), order=order, insertion=insertion,
        chunk_size=chunk_size,
    )


def deletion_curve(
    predict_fn: PredictFn,
    x,
    attribution,
    target,
    *,
    steps: int = 50,
    unit: str = "sample",
    baseline="zero",
    absolute: bool = False,
    segments: int = 20,
    order: str = "morf",
    blur_sigma: float = DEFAULT_BLUR_SIGMA,
    chunk_size: int | None = None,
) -> jax.Array:
    """Output for ``target`` while the most relevant features are replaced by a baseline.

    Features are ranked by attribution (signed, descending; ``absolute=True`` ranks by
    magnitude, for patches the magnitude of the patch mean; ``order="lerf"`` ranks least
    relevant first); ties are taken in a fixed random order per row of the batch
    (:func:`tie_break_order`). Step ``s`` replaces the top
    ``round(s / steps * F)`` features, so column 0 is ``f(x)`` and column ``steps`` is
    ``f(baseline)``. The model is re-run on every perturbed ECG.

    Args:
      predict_fn: ``(N, L, C) -> (N, K)`` probabilities (or any score).
      x, attribution: ``(B, L, C)``.
      target: int or ``(B,)``.
      steps: number of equal fractions; ``steps + 1`` model evaluations per ECG.
      unit: ``"sample"`` or ``"patch"`` (lead x ``segments`` time segments).
      baseline: ``"zero"`` (default), ``"mean"``, ``"blur"`` or an array, see
        :func:`resolve_baseline`.
      blur_sigma: Gaussian width in samples for ``baseline="blur"``.
      chunk_size: perturbed ECGs per model call; None picks :func:`default_chunk_size`.
    Returns:
      ``(B, steps + 1)`` target outputs.
    """
    return _curve(
        predict_fn, x, attribution, target, steps=steps, unit=unit, baseline=baseline,
        absolute=absolute, segments=segments, order=order, blur_sigma=blur_sigma,
        chunk_size=chunk_size, insertion=False,
    )


def insertion_curve(
    predict_fn: PredictFn,
    x,
    attribution,
    target,
    *,
    steps: int = 50,
    unit: str = "sample",
    baseline="blur",
    absolute: bool = False,
    segments: int = 20,
    order: str = "morf",
    blur_sigma: float = DEFAULT_BLUR_SIGMA,
    chunk_size: int | None = None,
) -> jax.Array:
    """Output for ``target`` while the most relevant features of ``x`` are revealed on top
    of a baseline (Petsiuk et al. 2018).

    Same ranking and steps as :func:`deletion_curve`: step ``s`` shows the top
    ``round(s / steps * F)`` features of ``x`` and the baseline elsewhere, so column 0 is
    ``f(baseline)`` and column ``steps`` is ``f(x)``. The default baseline is a Gaussian blur
    of the ECG over time (``blur_sigma`` samples, 0.1 s at 100 Hz), which removes the
    morphology but keeps the record's amplitude and baseline drift, so that the start of the
    curve is not an out-of-distribution flat line.

    Returns ``(B, steps + 1)``.
    """
    return _curve(
        predict_fn, x, attribution, target, steps=steps, unit=unit, baseline=baseline,
        absolute=absolute, segments=segments, order=order, blur_sigma=blur_sigma,
        chunk_size=chunk_size, insertion=True,
    )


def curve_auc(curves) -> jax.Array:
    """Trapezoid area under each curve over the removed fraction ``[0, 1]``.

    Shapes: ``(B, steps + 1) -> (B,)``; point ``s`` sits at fraction ``s / steps``.
    """
    curves = jnp.asarray(curves)
    if curves.ndim < 1 or curves.shape[-1] < 2:
        raise ValueError(f"a curve needs at least 2 points, got shape {curves.shape}")
    return jnp.trapezoid(curves, dx=1.0 / (curves.shape[-1] - 1), axis=-1)


def aopc(
    predict_fn: PredictFn,
    x,
    attribution,
    target,
    *,
    steps: int = 50,
    order: str = "morf",
    unit: str = "sample",
    baseline="zero",
    absolute: bool = False,
    segments: int = 20,
    blur_sigma: float = DEFAULT_BLUR_SIGMA,
    chunk_size: int | None = None,
) -> jax.Array:
    """Area over the perturbation curve (Samek et al. 2017), per ECG.

    ``AOPC = 1 / (steps + 1) * sum_{s=0}^{steps} (f(x) - f(x^(s)))`` where ``x^(s)`` is the
    deletion-curve input after step ``s`` (the ``s = 0`` term is zero, as in the paper).
    ``order="morf"`` removes the most relevant features first (higher is better);
    ``"lerf"`` the least relevant first (lower is better).

    Returns ``(B,)``.
    """
    curve = deletion_curve(
        predict_fn, x, attribution, target, steps=steps, unit=unit, baseline=baseline,
        absolute=absolute, segments=segments, order=order, blur_sigma=blur_sigma,
        chunk_size=chunk_size,
    )
    return jnp.mean(curve[:, :1] - curve, axis=1)
