"""Kernel SHAP over groups of ECG samples (by default: lead x time segment), in JAX.

Kernel SHAP (Lundberg & Lee, 2017) estimates the Shapley values of ``G`` "players" -- here
groups of ECG samples -- by a weighted linear regression over coalitions ``z in {0, 1}^G``:

    v(z) = E_ref[ f( x where z[group] == 1, reference elsewhere ) ]

is the explained model output with the groups outside the coalition replaced by a reference
ECG (one ``baseline``, default zeros, or every ECG of a ``background`` set in turn, averaging
the model OUTPUT over the background, as ``shap.KernelExplainer`` does). The Shapley values
``phi`` minimise

    sum_z pi(z) * (v(z) - v(0) - z . phi)^2     subject to   sum(phi) = v(1) - v(0),

with the Shapley kernel ``pi(z) = (G - 1) / (C(G, |z|) |z| (G - |z|))``. Enumerating every
coalition gives the exact Shapley values; otherwise coalitions are sampled.

Coalition design (:func:`coalition_design`, host NumPy, cached per ``(G, n_samples, seed)``)
follows ``shap.KernelExplainer``: coalition sizes ``s`` and ``G - s`` are paired (each sampled
``z`` comes with its complement ``1 - z``); sizes whose whole kernel share fits the budget are
enumerated completely, smallest first, with their exact kernel weights; the remaining budget is
spent on random coalitions whose sizes are drawn in proportion to the kernel mass of each size,
duplicates counted as extra weight, and whose total weight is the kernel mass of the sizes not
enumerated. With ``n_samples >= 2^G - 2`` every coalition is enumerated and the result is exact.
One design is shared by all ECGs of a call, so the regression matrix is factorised once.

Model evaluation (jitted): the ``B x (n_samples + 2) x M`` masked inputs (the two extra
coalitions are all-ones, ``f(x)``, and all-zeros, ``f(reference)``) are built on the fly in
chunks of ``chunk_size`` model evaluations inside a ``lax.map``, so memory is bounded by the
chunk, not by the budget (``n_samples x L x 12`` floats are never materialised). The
equality-constrained weighted least squares is solved, batched over ECGs, by eliminating the
last group's value (``phi_G = v(1) - v(0) - sum_{j<G} phi_j``, as shap does), so efficiency
holds exactly; the solve uses one Cholesky factorisation of the normal equations with
iterative refinement, and an SVD least-squares fallback (minimum-norm) when the design is
rank-deficient or too ill-conditioned for that.

The Shapley value of a group is spread evenly over the group's samples by :func:`kernel_shap`;
summing its ``(B, L, 12)`` map over a group gives the group's value.

Public API:
  lead_segment_groups(length, segments, num_leads=12) -> (L, num_leads) int32 group ids
  coalition_design(num_groups, n_samples, seed=0) -> CoalitionDesign
  kernel_shap_groups(logit_fn, x, target, ...) -> (B, G) group Shapley values
  kernel_shap(logit_fn, x, target, ...) -> (B, L, 12) attribution
  expand_group_values(values, groups) -> (B, L, 12)
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

OUTPUTS = ("logit", "probability", "softmax_probability")
DEFAULT_N_SAMPLES = 2048
# How many rounds of random draws (each of 4x the missing samples, as shap draws) to try
# before giving up on filling the budget with distinct coalitions; only reachable when the
# budget is a large fraction of the 2^G - 2 coalitions.
_MAX_DRAW_ROUNDS = 32
# Ridge added to the normal equations, relative to their mean diagonal (see the solver).
_RELATIVE_RIDGE = 1e-6
# Iterative-refinement steps of the least-squares solve (the first is the plain solve).
_REFINEMENT_STEPS = 3
# A Cholesky pivot below this multiple of the ridge sends the solve to the SVD fallback.
_PIVOT_FACTOR = 1e3


# --------------------------------------------------------------------------------------------
# Groups
# --------------------------------------------------------------------------------------------


def lead_segment_groups(length: int, segments: int, num_leads: int = 12) -> np.ndarray:
    """Group ids for ``num_leads`` leads x ``segments`` equal time segments.

    Group ``g = lead * segments + segment``, so ``values.reshape(B, num_leads, segments)`` is
    a lead x segment map. When ``segments`` does not divide ``length`` the segments differ in
    length by at most one sample.

    Returns: ``(length, num_leads)`` int32 array with ids ``0 .. num_leads * segments - 1``.
    """
    if not 1 <= segments <= length:
        raise ValueError(f"segments must be in [1, L={length}], got {segments}")
    segment_of_time = (np.arange(length) * segments) // length  # (L,)
    lead = np.arange(num_leads)
    return (lead[None, :] * segments + segment_of_time[:, None]).astype(np.int32)


def _check_groups(groups: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, int]:
    """Validates a ``(L, leads)`` group-id array; returns it as int32 and the group count."""
    groups = np.asarray(groups)
    if groups.shape != shape:
        raise ValueError(f"groups must have the ECG's shape {shape} (L, leads), got {groups.shape}")
    if not np.issubdtype(groups.dtype, np.integer):
        raise ValueError(f"groups must hold integer group ids, got dtype {groups.dtype}")
    if groups.min() < 0:
        raise ValueError(f"group ids must be >= 0, got minimum {groups.min()}")
    num_groups = int(groups.max()) + 1
    present = np.bincount(groups.ravel(), minlength=num_groups)
    if np.any(present == 0):
        missing = np.flatnonzero(present == 0)[:10].tolist()
        raise ValueError(
            f"group ids must be 0..G-1 with every group non-empty (G={num_groups}); "
            f"no sample belongs to groups {missing}"
        )
    return groups.astype(np.int32), num_groups


def expand_group_values(values: jax.Array, groups: np.ndarray | jax.Array) -> jax.Array:
    """Spreads each group's value evenly over the group's samples.

    Args:
      values: ``(B, G)`` per-group values.
      groups: ``(L, leads)`` int group ids in ``0 .. G-1``.
    Returns:
      ``(B, L, leads)`` with ``out[b][groups == g].sum() == values[b, g]``.
    """
    groups = jnp.asarray(groups, jnp.int32)
    group_size = jnp.bincount(groups.ravel(), length=values.shape[-1]).astype(values.dtype)
    per_sample = values / jnp.maximum(group_size, 1.0)
    return jnp.take(per_sample, groups, axis=-1)


# --------------------------------------------------------------------------------------------
# Coalition design (host side: deterministic per seed, cached)
# --------------------------------------------------------------------------------------------


class CoalitionDesign(NamedTuple):
    """The coalitions at which the model is evaluated, and their regression weights.

    masks: ``(S, G)`` float32 in {0, 1} (S = ``min(n_samples, 2^G - 2)``; rows of a sampled
      design that could not be filled with distinct coalitions are all-zero with weight 0).
    weights: ``(S,)`` float64, non-negative, summing to 1: the Shapley kernel restricted to
      the enumerated sizes plus the Monte-Carlo share of the sampled ones.
    num_enumerated: how many leading rows come from completely enumerated sizes.
    exact: every coalition is enumerated, so the solution is the exact Shapley vector.
    """

    masks: np.ndarray
    weights: np.ndarray
    num_enumerated: int
    exact: bool


def shapley_kernel_weight(num_groups: int, size: np.ndarray) -> np.ndarray:
    """``pi(|z|) = (G - 1) / (C(G, |z|) |z| (G - |z|))`` for sizes ``1 .. G-1`` (float64)."""
    size = np.asarray(size)
    # float64 binomials: exact enough and no overflow up to G ~ 1000 (C(240, 120) ~ 1e71).
    binom = np.array([float(math.comb(num_groups, s)) for s in range(num_groups + 1)])
    binom_of_size = binom[size]
    return (num_groups - 1) / (binom_of_size * size * (num_groups - size))


def _all_coalitions(num_groups: int) -> np.ndarray:
    """Every coalition except the empty and the full one: ``(2^G - 2, G)`` uint8."""
    codes = np.arange(1, 2**num_groups - 1, dtype=np.int64)
    return ((codes[:, None] >> np.arange(num_groups)) & 1).astype(np.uint8)


def _coalitions_of_size(num_groups: int, size: int) -> np.ndarray:
    """All ``C(G, size)`` coalitions of one size, ``(C(G, size), G)`` uint8."""
    count = math.comb(num_groups, size)
    members = np.fromiter(
        itertools.chain.from_iterable(itertools.combinations(range(num_groups), size)),
        dtype=np.int64,
        count=count * size,
    ).reshape(count, size)
    masks = np.zeros((count, num_groups), np.uint8)
    np.put_along_axis(masks, members, 1, axis=1)
    return masks


def _interleave_with_complements(
    masks: np.ndarray, paired: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``[m0, 1-m0, m1, 1-m1, ...]``, where the complement of unpaired rows is dropped.

    Returns the rows and, for each, the index of the drawn row it comes from.
    """
    both = np.stack([masks, 1 - masks], axis=1).reshape(-1, masks.shape[1])
    keep = np.stack([np.ones_like(paired), paired], axis=1).reshape(-1)
    source = np.repeat(np.arange(len(masks)), 2)
    return both[keep], source[keep]


def _sample_coalitions(
    rng: np.random.Generator,
    num_groups: int,
    sizes: np.ndarray,
    size_probability: np.ndarray,
    num_paired_sizes: int,
    budget: int,
) -> tuple[np.ndarray, np.ndarray]:
    """shap's random part: distinct coalitions (and complements) until ``budget`` rows.

    Draws are processed in order: a new coalition of size ``s`` adds itself and, for a
    paired size, its complement; a repeated draw adds 1 to the weight of the earlier copy
    (and of its complement). All of it is vectorised over the draws with ``np.unique``.

    Returns ``(masks (<= budget, G) uint8, counts (rows,) float64)``.
    """
    drawn_sizes: list[np.ndarray] = []
    drawn_masks: list[np.ndarray] = []
    num_draws = 4 * budget
    for _ in range(_MAX_DRAW_ROUNDS):  # rounds of draws, not a loop over coalitions
        size = sizes[rng.choice(len(sizes), size=num_draws, p=size_probability)]
        order = np.argsort(rng.random((num_draws, num_groups)), axis=1)
        masks = np.zeros((num_draws, num_groups), np.uint8)
        members = (np.arange(num_groups)[None, :] < size[:, None]).astype(np.uint8)
        np.put_along_axis(masks, order, members, axis=1)  # a uniform subset of each size
        drawn_sizes.append(size)
        drawn_masks.append(masks)

        all_masks = np.concatenate(drawn_masks)
        all_sizes = np.concatenate(drawn_sizes)
        _, first, inverse = np.unique(
            np.packbits(all_masks, axis=1), axis=0, return_index=True, return_inverse=True
        )
        inverse = inverse.reshape(-1)
        is_new = first[inverse] == np.arange(len(all_masks))
        paired = all_sizes <= num_paired_sizes
        rows_added = np.cumsum(is_new * (1 + paired))
        if rows_added[-1] >= budget:
            break
    filled = rows_added[-1] >= budget
    last_draw = int(np.searchsorted(rows_added, budget)) if filled else len(rows_added) - 1
    used = slice(0, last_draw + 1)
    counts_per_unique = np.bincount(inverse[used], minlength=len(first)).astype(np.float64)

    new_draws = np.flatnonzero(is_new[used])
    rows, source = _interleave_with_complements(all_masks[new_draws], paired[new_draws])
    counts = counts_per_unique[inverse[new_draws]][source]
    # The budget may run out between a coalition and its complement (shap drops the latter).
    return rows[:budget], counts[:budget]


@functools.lru_cache(maxsize=64)
def coalition_design(
    num_groups: int, n_samples: int = DEFAULT_N_SAMPLES, seed: int = 0
) -> CoalitionDesign:
    """The coalitions and kernel weights Kernel SHAP regresses on (see the module docstring).

    Deterministic per ``(num_groups, n_samples, seed)`` and cached; the returned arrays are
    read-only.
    """
    if num_groups < 1:
        raise ValueError(f"num_groups must be positive, got {num_groups}")
    if n_samples < 1:
        raise ValueError(f"n_samples must be positive, got {n_samples}")
    total = 2**num_groups - 2  # exact Python int: no overflow for G = 240
    if num_groups == 1:
        design = CoalitionDesign(np.zeros((0, 1), np.float32), np.zeros(0), 0, True)
    elif n_samples >= total:
        masks = _all_coalitions(num_groups)
        weights = shapley_kernel_weight(num_groups, masks.sum(1))
        design = CoalitionDesign(masks.astype(np.float32), weights / weights.sum(), total, True)
    else:
        design = _partial_design(num_groups, n_samples, seed)
    for array in (design.masks, design.weights):
        array.setflags(write=False)
    return design


def _partial_design(num_groups: int, n_samples: int, seed: int) -> CoalitionDesign:
    G = num_groups
    num_sizes = math.ceil((G - 1) / 2)  # sizes 1..num_sizes, each standing for s and G - s
    num_paired = (G - 1) // 2  # for even G the middle size G/2 is its own complement
    sizes = np.arange(1, num_sizes + 1)
    # Kernel mass of all coalitions of size s is (G-1) / (s (G-s)); paired sizes carry both.
    size_mass = (G - 1.0) / (sizes * (G - sizes))
    size_mass[:num_paired] *= 2
    size_mass /= size_mass.sum()

    rows: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    samples_left = n_samples
    remaining_mass = size_mass.copy()
    num_full = 0
    for size in sizes:  # at most G/2 sizes; each size is enumerated in one vectorised call
        is_paired = size <= num_paired
        count = math.comb(G, int(size)) * (2 if is_paired else 1)
        if samples_left * remaining_mass[size - 1] / count < 1.0 - 1e-8:
            break
        num_full += 1
        samples_left -= count
        if remaining_mass[size - 1] < 1.0:
            remaining_mass /= 1.0 - remaining_mass[size - 1]
        members = _coalitions_of_size(G, int(size))
        members, _ = _interleave_with_complements(members, np.full(len(members), is_paired))
        rows.append(members)
        weights.append(np.full(len(members), size_mass[size - 1] / count))
    num_enumerated = n_samples - samples_left

    if num_full < num_sizes and samples_left > 0:
        probability = size_mass.copy()
        probability[:num_paired] /= 2  # each draw of a paired size also yields its complement
        probability = probability[num_full:] / probability[num_full:].sum()
        sampled, counts = _sample_coalitions(
            np.random.default_rng(seed), G, sizes[num_full:], probability, num_paired, samples_left
        )
        rows.append(sampled)
        weights.append(counts * size_mass[num_full:].sum() / counts.sum())

    masks = np.concatenate(rows).astype(np.float32) if rows else np.zeros((0, G), np.float32)
    weight = np.concatenate(weights) if weights else np.zeros(0)
    if len(masks) < n_samples:  # keep S static for the jitted part: zero-weight padding rows
        pad = n_samples - len(masks)
        masks = np.concatenate([masks, np.zeros((pad, G), np.float32)])
        weight = np.concatenate([weight, np.zeros(pad)])
    return CoalitionDesign(masks, weight, num_enumerated, False)


# --------------------------------------------------------------------------------------------
# Model evaluation and regression (jitted)
# --------------------------------------------------------------------------------------------


def _explained_output(logits: jax.Array, target: jax.Array, output: str) -> jax.Array:
    """``logits (n, K), target (n,) -> (n,)`` float32 explained value per evaluation."""
    logits = logits.astype(jnp.float32)
    if output == "softmax_probability":
        logits = jax.nn.log_softmax(logits, axis=-1)
    value = jnp.take_along_axis(logits, target[:, None], axis=-1)[:, 0]
    if output == "probability":
        return jax.nn.sigmoid(value)
    if output == "softmax_probability":
        return jnp.exp(value)
    return value


def _coalition_values(
    logit_fn: Callable[[jax.Array], jax.Array],
    x: jax.Array,
    target: jax.Array,
    group_ids: jax.Array,
    references: jax.Array,
    masks: jax.Array,
    *,
    output: str,
    chunk_size: int,
) -> jax.Array:
    """Explained output at every coalition, averaged over the references.

    Args:
      x: ``(B, L, C)``; target: ``(B,)`` int; group_ids: ``(L, C)`` int;
      references: ``(M, L, C)``; masks: ``(R, G)`` coalitions.
    Returns:
      ``(B, R)``: ``mean_m out(where(masks[r][group_ids], x[b], references[m]))[target[b]]``.
    """
    batch, num_rows, num_refs = x.shape[0], masks.shape[0], references.shape[0]
    total = batch * num_rows * num_refs
    chunk = min(chunk_size, total)
    num_chunks = -(-total // chunk)
    # One flat index per model evaluation, ordered (ECG, coalition, reference); each chunk
    # gathers its own ECGs / coalitions / references, so nothing of size total x L x C exists.
    flat = jnp.arange(num_chunks * chunk, dtype=jnp.int32).reshape(num_chunks, chunk)

    def evaluate_chunk(index: jax.Array) -> jax.Array:
        index = jnp.minimum(index, total - 1)  # the padding tail re-evaluates the last item
        ecg = index // (num_rows * num_refs)
        row = (index // num_refs) % num_rows
        ref = index % num_refs
        keep = jnp.take(masks[row], group_ids, axis=1) > 0.5  # (chunk, L, C)
        inputs = jnp.where(keep, x[ecg], references[ref])
        return _explained_output(logit_fn(inputs), target[ecg], output)

    values = jax.lax.map(evaluate_chunk, flat).reshape(-1)[:total]
    return values.reshape(batch, num_rows, num_refs).mean(axis=-1)


def _normal_equations_solve(
    design: jax.Array, weights: jax.Array, response: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Weighted least squares ``min ||sqrt(w) (design @ beta - response)||`` by Cholesky.

    One ``(P, P)`` factorisation shared by all right-hand sides (ECGs): ~100x faster on CPU
    than an SVD/QR of the ``(S, P)`` design. A tiny ridge keeps the factorisation defined;
    a few steps of iterative refinement on the weighted residuals remove its bias and most
    of the float32 round-off of the squared conditioning.

    Args: design ``(S, P)``, weights ``(S,)``, response ``(S, B)``.
    Returns: ``beta (P, B)`` and whether the normal matrix was well enough conditioned for
    this to be trusted (every Cholesky pivot far above the ridge, all finite).
    """
    highest = jax.lax.Precision.HIGHEST
    weighted = weights[:, None] * design
    normal = jnp.matmul(design.T, weighted, precision=highest)
    ridge = _RELATIVE_RIDGE * jnp.trace(normal) / normal.shape[0]
    identity = jnp.eye(normal.shape[0], dtype=normal.dtype)
    factor = jax.scipy.linalg.cho_factor(normal + ridge * identity)
    beta = jnp.zeros((design.shape[1], response.shape[1]), response.dtype)
    for _ in range(_REFINEMENT_STEPS):  # unrolled: a handful of (S x P x B) matmuls
        residual = response - jnp.matmul(design, beta, precision=highest)
        gradient = jnp.matmul(weighted.T, residual, precision=highest)
        beta = beta + jax.scipy.linalg.cho_solve(factor, gradient)
    # For a positive semi-definite matrix a (near) dependent column shows as a Cholesky pivot
    # of the ridge's size; demand three orders of magnitude more.
    pivots = jnp.diagonal(factor[0]) ** 2
    trusted = jnp.all(jnp.isfinite(beta)) & jnp.all(pivots > _PIVOT_FACTOR * ridge)
    return beta, trusted


def _solve_constrained_wls(
    coalition_values: jax.Array, full_value: jax.Array, null_value: jax.Array,
    masks: jax.Array, weights: jax.Array,
) -> jax.Array:
    """Kernel SHAP regression with ``sum(phi) == full - null`` exactly.

    Args:
      coalition_values: ``(B, S)`` v(z_s); full_value, null_value: ``(B,)`` v(1), v(0);
      masks: ``(S, G)``; weights: ``(S,)``.
    Returns: ``(B, G)``.
    """
    num_groups = masks.shape[1]
    gap = full_value - null_value
    if num_groups == 1:
        return gap[:, None]
    # Substitute phi_G = gap - sum_{j<G} phi_j:
    #     v(z) - v(0) - z_G gap = sum_{j<G} (z_j - z_G) phi_j.
    last = masks[:, -1]
    design = masks[:, :-1] - last[:, None]  # (S, G-1)
    response = coalition_values - null_value[:, None] - last[None, :] * gap[:, None]  # (B, S)
    sqrt_w = jnp.sqrt(weights)
    fast, well_conditioned = _normal_equations_solve(design, weights, response.T)
    solution = jax.lax.cond(
        well_conditioned,
        lambda fast: fast,
        # lstsq (SVD) as the fallback: slower on CPU, but gives the minimum-norm solution
        # of a rank-deficient design (as shap's fallback does).
        lambda fast: jnp.linalg.lstsq(sqrt_w[:, None] * design, sqrt_w[:, None] * response.T)[0],
        fast,
    )
    phi_rest = solution.T  # (B, G-1)
    return jnp.concatenate([phi_rest, (gap - phi_rest.sum(axis=1))[:, None]], axis=1)


@functools.partial(jax.jit, static_argnames=("logit_fn", "output", "chunk_size"))
def _kernel_shap_core(
    logit_fn, x, target, group_ids, references, masks, weights, *, output, chunk_size
):
    num_groups = masks.shape[1]
    endpoints = jnp.stack([jnp.ones(num_groups), jnp.zeros(num_groups)]).astype(masks.dtype)
    values = _coalition_values(
        logit_fn, x, target, group_ids, references, jnp.concatenate([masks, endpoints]),
        output=output, chunk_size=chunk_size,
    )
    return _solve_constrained_wls(values[:, :-2], values[:, -2], values[:, -1], masks, weights)


# --------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------


def kernel_shap_groups(
    logit_fn: Callable[[jax.Array], jax.Array],
    x: jax.Array,
    target: int | jax.Array,
    *,
    segments: int = 20,
    n_samples: int = DEFAULT_N_SAMPLES,
    baseline: jax.Array | None = None,
    background: jax.Array | None = None,
    output: str = "logit",
    chunk_size: int = 256,
    seed: int = 0,
    groups: np.ndarray | None = None,
    design: CoalitionDesign | None = None,
) -> jax.Array:
    """Kernel SHAP values of sample groups, ``(B, G)`` float32.

    Args:
      logit_fn: pure jittable ``f(x (n, L, C)) -> logits (n, K)``. It is a static argument of
        the compiled program: pass the same object across calls to reuse the compilation.
      x: ``(B, L, C)`` ECGs (C = 12 leads).
      target: class index, an int or ``(B,)`` ints.
      segments: time segments per lead for the default grouping (``G = C * segments``,
        group ``lead * segments + segment``, see :func:`lead_segment_groups`).
      n_samples: coalition budget, excluding the empty and full coalitions (shap's
        ``nsamples``). With ``n_samples >= 2^G - 2`` all coalitions are enumerated (exact).
        Model evaluations per ECG: ``(min(n_samples, 2^G - 2) + 2) * M``, M = background size
        (1 with a baseline). A coalition and its complement give the same regression row up to
        sign, so below about ``2 (G - 1)`` the regression is underdetermined (the
        minimum-norm solution is returned, as shap's fallback does).
      baseline: ``(L, C)`` reference ECG replacing absent groups; default zeros.
      background: ``(M, L, C)`` reference ECGs; the explained output is averaged over them
        (exclusive with ``baseline``).
      output: ``"logit"`` (target logit), ``"probability"`` (sigmoid of the target logit; for
        a softmax model pass its decision logit ``z_k - logsumexp_{j != k} z_j``, whose sigmoid
        is the softmax probability), or ``"softmax_probability"`` (softmax of ``logit_fn``'s
        outputs at the target).
      chunk_size: model evaluations per batch (bounds memory: ``chunk_size x L x C`` inputs).
      seed: seed of the coalition sampling (the result is deterministic per seed).
      groups: optional ``(L, C)`` int group ids ``0 .. G-1`` (every group non-empty),
        replacing the lead x segment grouping.
      design: optional precomputed coalitions and weights (``masks (S, G)``, ``weights (S,)``;
        e.g. another implementation's, to compare solvers on identical coalitions); replaces
        ``n_samples`` and ``seed``.
    Returns:
      ``(B, G)`` with ``values.sum(1) == v(1) - v(0)``: ``f(x) - f(baseline)`` or
      ``f(x) - mean_m f(background_m)`` for the explained output.
    """
    x = jnp.asarray(x, jnp.float32)
    if x.ndim != 3:
        raise ValueError(f"x must be (B, L, leads), got shape {x.shape}")
    batch, length, leads = x.shape
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    if groups is None:
        groups = lead_segment_groups(length, segments, leads)
    group_ids, num_groups = _check_groups(groups, (length, leads))

    if baseline is not None and background is not None:
        raise ValueError("pass either baseline (one reference ECG) or background, not both")
    if background is not None:
        references = jnp.asarray(background, jnp.float32)
        if references.ndim != 3 or references.shape[1:] != (length, leads) or len(references) == 0:
            raise ValueError(f"background must be (M, {length}, {leads}), got {references.shape}")
    else:
        references = (
            jnp.zeros((length, leads)) if baseline is None
            else jnp.asarray(baseline, jnp.float32)
        )
        if references.shape != (length, leads):
            raise ValueError(f"baseline must be ({length}, {leads}), got {references.shape}")
        references = references[None]

    target = jnp.broadcast_to(jnp.asarray(target, jnp.int32), (batch,))
    if design is None:
        design = coalition_design(num_groups, int(n_samples), int(seed))
    elif (np.shape(design.masks)[1:] != (num_groups,)
          or np.shape(design.weights) != np.shape(design.masks)[:1]):
        raise ValueError(
            f"design must have masks (S, G={num_groups}) and weights (S,), got "
            f"{np.shape(design.masks)} and {np.shape(design.weights)}"
        )
    return _kernel_shap_core(
        logit_fn, x, target, jnp.asarray(group_ids), references,
        jnp.asarray(design.masks, jnp.float32), jnp.asarray(design.weights, jnp.float32),
        output=output, chunk_size=int(chunk_size),
    )


def kernel_shap(
    logit_fn: Callable[[jax.Array], jax.Array],
    x: jax.Array,
    target: int | jax.Array,
    *,
    segments: int = 20,
    n_samples: int = DEFAULT_N_SAMPLES,
    baseline: jax.Array | None = None,
    background: jax.Array | None = None,
    output: str = "logit",
    chunk_size: int = 256,
    seed: int = 0,
    groups: np.ndarray | None = None,
    design: CoalitionDesign | None = None,
) -> jax.Array:
    """Kernel SHAP attribution ``(B, L, C)`` float32: :func:`kernel_shap_groups` with each
    group's value spread evenly over its samples (arguments as there)."""
    x = jnp.asarray(x, jnp.float32)
    if x.ndim != 3:
        raise ValueError(f"x must be (B, L, leads), got shape {x.shape}")
    if groups is None:
        groups = lead_segment_groups(x.shape[1], segments, x.shape[2])
    values = kernel_shap_groups(
        logit_fn, x, target, n_samples=n_samples, baseline=baseline, background=background,
        output=output, chunk_size=chunk_size, seed=seed, groups=groups, design=design,
    )
    return expand_group_values(values, groups)
