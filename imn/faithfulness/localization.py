"""Localisation of attributions against ground-truth evidence masks.

On synthetic ECGs the generator knows where the class evidence is: ``mask (B, L, C)`` bool is
True on the samples that carry the target class's evidence. Every function here scores each
ECG separately and returns ``(B,)`` float32. A record whose mask is empty or covers the whole
record returns NaN (there is nothing to localise, or every map "hits"), and so does a record
whose attribution is not finite (a broken map is not scored as a miss); average with
``jnp.nanmean`` and report how many records were scored.

Relevance conventions:

* ``absolute=False`` (default for all but :func:`mask_auroc`): relevance is the signed
  attribution and only positive relevance counts as evidence *for* the target class
  (Arras et al. 2022).
* ``absolute=True``: relevance is ``|attribution|`` (for explainers whose sign is not
  meaningful, or to ask "does the method look at the right place" regardless of sign).

Ties are resolved by expectation, never by position: when several features tie at the
deciding value, each gets an equal share of the credit (the expected score under a random
tie-break). This matters for sparse maps such as Grad-CAM, where most features are exactly 0
and a positional tie-break would reward masks near the start of the record.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np


def _check(attribution, mask) -> tuple[jax.Array, jax.Array]:
    attribution = jnp.asarray(attribution)
    mask = jnp.asarray(mask)
    if attribution.ndim != 3:
        raise ValueError(
            f"attribution must have shape (batch, time, lead), got {attribution.shape}"
        )
    if mask.shape != attribution.shape:
        raise ValueError(
            f"mask must have the attribution's shape {attribution.shape}, got {mask.shape}"
        )
    return attribution.astype(jnp.float32), mask.astype(bool)


def _flat(a: jax.Array) -> jax.Array:
    return a.reshape(a.shape[0], -1)


def _nan_if_undefined(values: jax.Array, attribution: jax.Array, mask: jax.Array) -> jax.Array:
    """``values`` where localisation is defined: the mask neither empty nor the whole record,
    and the attribution finite; NaN elsewhere."""
    flat_mask = _flat(mask)
    local = jnp.any(flat_mask, axis=1) & ~jnp.all(flat_mask, axis=1)
    finite = jnp.all(jnp.isfinite(_flat(attribution)), axis=1)
    return jnp.where(local & finite, values, jnp.nan)


def dilate_time(mask: jax.Array, tolerance: int) -> jax.Array:
    """Grows a ``(B, L, C)`` mask by ``tolerance`` samples on both sides, per lead."""
    if tolerance == 0:
        return mask
    grown = jax.lax.reduce_window(
        mask.astype(jnp.int32), 0, jax.lax.max,
        window_dimensions=(1, 2 * tolerance + 1, 1), window_strides=(1, 1, 1),
        padding=((0, 0), (tolerance, tolerance), (0, 0)),
    )
    return grown > 0


@partial(jax.jit, static_argnames=("absolute", "tolerance"))
def _pointing_game(attribution, mask, *, absolute, tolerance):
    relevance = _flat(jnp.abs(attribution) if absolute else attribution)
    target_area = _flat(dilate_time(mask, tolerance))
    peak = jnp.max(relevance, axis=1, keepdims=True)
    at_peak = relevance == peak
    # Ties at the maximum share the credit; no positive relevance points nowhere (a miss).
    hit = jnp.sum(at_peak & target_area, axis=1) / jnp.sum(at_peak, axis=1)
    hit = jnp.where(peak[:, 0] > 0, hit, 0.0)
    return _nan_if_undefined(hit.astype(jnp.float32), attribution, mask)


def pointing_game(attribution, mask, *, absolute: bool = False, tolerance: int = 0):
    """Pointing game (Zhang et al. 2018), per ECG: 1 if the most relevant sample lies in the
    evidence mask grown by ``tolerance`` samples along time (per lead), else 0.

    If several samples share the maximum, the score is the fraction of them that hit.
    A record without positive relevance (``max <= 0``; all zero with ``absolute=True``)
    scores 0. Returns ``(B,)`` float32, NaN where undefined (module docstring).
    """
    attribution, mask = _check(attribution, mask)
    if int(tolerance) < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    return _pointing_game(attribution, mask, absolute=bool(absolute), tolerance=int(tolerance))


@partial(jax.jit, static_argnames=("absolute",))
def _relevance_mass_accuracy(attribution, mask, *, absolute):
    relevance = _flat(jnp.abs(attribution) if absolute else jnp.maximum(attribution, 0.0))
    total = jnp.sum(relevance, axis=1)
    inside = jnp.sum(jnp.where(_flat(mask), relevance, 0.0), axis=1)
    accuracy = jnp.where(total > 0, inside / jnp.where(total > 0, total, 1.0), 0.0)
    return _nan_if_undefined(accuracy, attribution, mask)


def relevance_mass_accuracy(attribution, mask, *, absolute: bool = False):
    """Relevance mass accuracy (Arras et al., Information Fusion 2022), per ECG:
    positive relevance inside the mask / total positive relevance (``|a|`` with
    ``absolute=True``). A record with no positive relevance scores 0.

    Returns ``(B,)`` float32 in ``[0, 1]``, NaN where undefined (module docstring).
    """
    attribution, mask = _check(attribution, mask)
    return _relevance_mass_accuracy(attribution, mask, absolute=bool(absolute))


@partial(jax.jit, static_argnames=("absolute",))
def _relevance_rank_accuracy(attribution, mask, *, absolute):
    # Only positive relevance is evidence for the class (as in the mass accuracy): negative
    # values rank with the zeros, tied below every positive one.
    relevance = _flat(jnp.abs(attribution) if absolute else jnp.maximum(attribution, 0.0))
    flat_mask = _flat(mask)
    size = jnp.sum(flat_mask, axis=1)  # K = |mask|
    ordered = -jnp.sort(-relevance, axis=1)
    # The K-th largest value decides: everything above it is in the top K, and the features
    # equal to it share the remaining K - n_above places.
    kth = jnp.take_along_axis(ordered, jnp.maximum(size - 1, 0)[:, None], axis=1)
    above = relevance > kth
    equal = relevance == kth
    share = (size - jnp.sum(above, axis=1)) / jnp.maximum(jnp.sum(equal, axis=1), 1)
    hits = jnp.sum(above & flat_mask, axis=1) + share * jnp.sum(equal & flat_mask, axis=1)
    accuracy = (hits / jnp.maximum(size, 1)).astype(jnp.float32)
    return _nan_if_undefined(accuracy, attribution, mask)


def relevance_rank_accuracy(attribution, mask, *, absolute: bool = False):
    """Relevance rank accuracy (Arras et al. 2022), per ECG: with ``K = |mask|``, the
    fraction of the ``K`` most relevant samples that lie in the mask. Relevance is the
    positive part ``max(a, 0)`` (``|a|`` with ``absolute=True``); features tied at the
    ``K``-th value, the zeros included, share the remaining places equally.

    Returns ``(B,)`` float32 in ``[0, 1]``, NaN where undefined (module docstring).
    """
    attribution, mask = _check(attribution, mask)
    return _relevance_rank_accuracy(attribution, mask, absolute=bool(absolute))


def midranks(values: jax.Array) -> jax.Array:
    """1-based ranks along the last axis with ties given their average rank (as
    ``scipy.stats.rankdata``). Any leading shape; float32."""
    flat = values.reshape(-1, values.shape[-1])

    def one(v):
        ordered = jnp.sort(v)
        below = jnp.searchsorted(ordered, v, side="left")
        through = jnp.searchsorted(ordered, v, side="right")
        return (below + through + 1).astype(jnp.float32) / 2

    return jax.vmap(one)(flat).reshape(values.shape)


@partial(jax.jit, static_argnames=("absolute",))
def _mask_auroc(attribution, mask, *, absolute):
    score = _flat(jnp.abs(attribution) if absolute else jnp.maximum(attribution, 0.0))
    mask = _flat(mask)
    n_pos = jnp.sum(mask, axis=1)
    n_neg = mask.shape[1] - n_pos

    def one(s, m, negatives):
        # Mann-Whitney: each positive scores the negatives below it, ties counting half.
        # Positives are parked at +inf in the sorted negatives so they are never counted.
        ordered = jnp.sort(jnp.where(m, jnp.inf, s))
        below = jnp.searchsorted(ordered, s, side="left")
        through = jnp.searchsorted(ordered, s, side="right")
        # Each term is at most 1, so the float32 sum over up to 60 000 positives stays exact
        # to ~1e-6, unlike a rank-sum formula whose terms reach 1e9.
        per_positive = (below + through).astype(jnp.float32) / (2 * jnp.maximum(negatives, 1))
        return jnp.sum(jnp.where(m, per_positive, 0.0))

    area = jax.vmap(one)(score, mask, n_neg) / jnp.maximum(n_pos, 1)
    return _nan_if_undefined(area, attribution, mask.reshape(attribution.shape))


def mask_auroc(attribution, mask, *, absolute: bool = True):
    """AUROC of the relevance as a detector of the evidence mask, per ECG.

    The probability that a random mask sample has higher relevance than a random non-mask
    sample, ties counting one half (equal to ``sklearn.metrics.roc_auc_score(mask,
    relevance)``). Relevance is ``|a|`` by default (a threshold-free "does it look at the
    right place"), or the positive part ``max(a, 0)`` with ``absolute=False``.

    Returns ``(B,)`` float32 in ``[0, 1]``, NaN where undefined (module docstring).
    """
    attribution, mask = _check(attribution, mask)
    return _mask_auroc(attribution, mask, absolute=bool(absolute))


# ---------------------------------------------------------------------- reference maps
# Rows a localisation table needs beside the ``random`` method so a reader sees the scale of
# every metric: the best a map can do (the mask itself) and a map with the mask's shape, size
# and periodicity that points somewhere else (what a confident but misplaced explanation
# scores). They explain no model; they depend on the mask alone.
def oracle_attribution(mask) -> np.ndarray:
    """The evidence mask as an attribution: 1 on the evidence, 0 elsewhere.

    ``mask (B, L, C)`` bool -> ``(B, L, C)`` float32. Scores 1 on the pointing game, both
    relevance accuracies and mask AUROC wherever the mask is local (neither empty nor full).
    """
    return np.asarray(mask, dtype=bool).astype(np.float32)


def misplaced_attribution(mask) -> np.ndarray:
    """The evidence mask moved in time to where it overlaps itself least: 1 there, else 0.

    Each record's mask is shifted circularly along time by the shift (1 .. L-1 samples, the
    smallest on ties) that minimises the number of samples it shares with the unshifted
    mask, computed for all shifts at once as a circular autocorrelation (FFT over time,
    summed over leads). The leads stay where they are: a class whose evidence is in every
    lead (QRSW) can only be misplaced in time, and periodic evidence (every beat's ST
    segment) lands between the beats. Overlap can remain where the rhythm is irregular.

    ``mask (B, L, C)`` bool -> ``(B, L, C)`` float32.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 3:
        raise ValueError(f"mask must have shape (batch, time, lead), got {mask.shape}")
    length = mask.shape[1]
    if length < 2:
        raise ValueError(f"a mask of {length} sample(s) cannot be moved in time")
    spectrum = np.fft.rfft(mask.astype(np.float64), axis=1)
    # overlap[b, s] = sum_{t, c} mask[b, t, c] * mask[b, t - s, c]
    overlap = np.fft.irfft(spectrum * np.conj(spectrum), n=length, axis=1).sum(axis=2)
    shifts = 1 + np.argmin(np.round(overlap[:, 1:]), axis=1)
    moved = np.stack([np.roll(m, int(s), axis=0) for m, s in zip(mask, shifts)]) if len(mask) \
        else mask
    return moved.astype(np.float32)


REFERENCE_ATTRIBUTIONS = {"oracle": oracle_attribution, "misplaced_mask": misplaced_attribution}
