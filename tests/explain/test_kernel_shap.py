"""Kernel SHAP over ECG sample groups (baselines/shap.py), cross-checked against brute-force
Shapley values computed here from the Shapley formula, closed forms for a linear model, and
the ``shap`` library's KernelExplainer."""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from baselines.shap import (
    CoalitionDesign,
    coalition_design,
    expand_group_values,
    kernel_shap,
    kernel_shap_groups,
    lead_segment_groups,
)
from imn.models.imn import ECGIMN

LENGTH = 24
LEADS = 12


# ------------------------------------------------------------------------------------------
# Models: a NumPy/JAX twin pair of a nonlinear MLP with explicit interactions, a tiny IMN
# ------------------------------------------------------------------------------------------


class TwinMLP:
    """``f(x) = tanh(x W1 + b1) W2 + b2 + (x . u)(x . v)``: strongly non-additive.

    ``numpy(x)`` is an independent float64 implementation used by the references.
    """

    def __init__(self, length: int = LENGTH, hidden: int = 16, classes: int = 3, seed: int = 0):
        rng = np.random.default_rng(seed)
        d = length * LEADS
        self.w1 = rng.normal(size=(d, hidden)) / np.sqrt(d) * 2.0
        self.b1 = rng.normal(size=hidden) * 0.3
        self.w2 = rng.normal(size=(hidden, classes))
        self.b2 = rng.normal(size=classes)
        self.u = rng.normal(size=(d, classes)) / np.sqrt(d)
        self.v = rng.normal(size=(d, classes)) / np.sqrt(d)
        params = [
            jnp.asarray(p, jnp.float32)
            for p in (self.w1, self.b1, self.w2, self.b2, self.u, self.v)
        ]

        def jax_fn(x):
            flat = x.reshape(x.shape[0], -1)
            w1, b1, w2, b2, u, v = params
            return jnp.tanh(flat @ w1 + b1) @ w2 + b2 + (flat @ u) * (flat @ v)

        self.jax = jax_fn

    def numpy(self, x: np.ndarray) -> np.ndarray:
        flat = np.asarray(x, np.float64).reshape(len(x), -1)
        hidden = np.tanh(flat @ self.w1 + self.b1)
        return hidden @ self.w2 + self.b2 + (flat @ self.u) * (flat @ self.v)


def block_groups(length: int, lead_blocks: int, time_blocks: int) -> np.ndarray:
    """``lead_blocks x time_blocks`` rectangular groups, ``(length, 12)`` ids."""
    lead_block = np.arange(LEADS) * lead_blocks // LEADS
    time_block = np.arange(length) * time_blocks // length
    return (lead_block[None, :] * time_blocks + time_block[:, None]).astype(np.int32)


def brute_force_shapley(value_fn, x, references, groups, target, output="logit"):
    """Exact Shapley values by the Shapley formula over all 2^G coalitions (loops, NumPy).

    value_fn: ``(n, L, 12) -> (n, K)`` NumPy logits. Returns ``(B, G)`` float64.
    """
    num_groups = int(groups.max()) + 1
    coalitions = list(itertools.product([0, 1], repeat=num_groups))
    index = {z: i for i, z in enumerate(coalitions)}
    result = np.zeros((len(x), num_groups))
    for b in range(len(x)):
        inputs = []
        for z in coalitions:
            keep = np.array(z, bool)[groups]
            inputs.extend(np.where(keep, x[b], ref) for ref in references)
        out = np.asarray(value_fn(np.stack(inputs)), np.float64)[:, target]
        if output == "probability":
            out = 1.0 / (1.0 + np.exp(-out))
        values = out.reshape(len(coalitions), len(references)).mean(axis=1)
        for i in range(num_groups):
            for z in coalitions:
                if z[i]:
                    continue
                size = sum(z)
                weight = (math.factorial(size) * math.factorial(num_groups - size - 1)
                          / math.factorial(num_groups))
                with_i = z[:i] + (1,) + z[i + 1:]
                result[b, i] += weight * (values[index[with_i]] - values[index[z]])
    return result


@pytest.fixture(scope="module")
def mlp():
    return TwinMLP()


@pytest.fixture(scope="module")
def ecgs():
    return np.random.default_rng(1).normal(size=(3, LENGTH, LEADS)).astype(np.float32)


@pytest.fixture(scope="module")
def tiny_imn():
    model = ECGIMN(2, widths=(4, 8, 8), rngs=nnx.Rngs(params=0, dropout=1))
    model.eval()
    graphdef, state = nnx.split(model)

    @jax.jit
    def logits(x):
        return nnx.merge(graphdef, state)(x)

    return logits


# ------------------------------------------------------------------------------------------
# Exactness against brute force (full enumeration)
# ------------------------------------------------------------------------------------------


def test_full_enumeration_equals_brute_force_shapley_on_nonlinear_mlp(mlp, ecgs):
    groups = block_groups(LENGTH, 3, 3)  # G = 9 -> 510 coalitions
    baseline = np.random.default_rng(2).normal(size=(LENGTH, LEADS)).astype(np.float32) * 0.5
    ours = np.asarray(kernel_shap_groups(
        mlp.jax, ecgs, 2, groups=groups, n_samples=2**9 - 2, baseline=baseline
    ))
    exact = brute_force_shapley(mlp.numpy, ecgs, baseline[None], groups, target=2)
    assert np.abs(exact).max() > 0.1  # a non-trivial target
    np.testing.assert_allclose(ours, exact, atol=1e-3 * max(1.0, np.abs(exact).max()))
    # Non-additivity is real: the Shapley values are not the single-group marginal effects.
    single = np.stack([
        mlp.numpy(np.where((groups == g)[None], ecgs, baseline))[:, 2]
        - mlp.numpy(baseline[None])[:, 2]
        for g in range(9)
    ], axis=1)
    assert np.abs(single - exact).max() > 0.05


def test_full_enumeration_equals_brute_force_on_tiny_imn_with_background(tiny_imn, ecgs):
    groups = block_groups(LENGTH, 4, 2)  # G = 8
    background = np.random.default_rng(3).normal(size=(2, LENGTH, LEADS)).astype(np.float32)
    ours = np.asarray(kernel_shap_groups(
        tiny_imn, ecgs, jnp.array([0, 1, 1]), groups=groups, n_samples=10_000,
        background=background, output="probability",
    ))
    for b, target in enumerate([0, 1, 1]):
        exact = brute_force_shapley(
            lambda z: np.asarray(tiny_imn(jnp.asarray(z, jnp.float32))), ecgs[b:b + 1],
            background, groups, target=target, output="probability",
        )
        np.testing.assert_allclose(ours[b], exact[0], atol=1e-4)


def test_design_enumerates_everything_with_exact_kernel_weights():
    design = coalition_design(6, 10_000, 0)
    assert design.exact and design.masks.shape == (62, 6)
    assert len(np.unique(design.masks, axis=0)) == 62
    size = design.masks.sum(1)
    kernel = 5.0 / (np.array([math.comb(6, int(s)) for s in size]) * size * (6 - size))
    np.testing.assert_allclose(design.weights, kernel / kernel.sum(), rtol=1e-12)


# ------------------------------------------------------------------------------------------
# Sampled regime
# ------------------------------------------------------------------------------------------


def test_sampled_design_is_paired_distinct_and_weighted_like_the_kernel():
    num_groups, budget = 10, 200
    design = coalition_design(num_groups, budget, 0)
    assert not design.exact and design.masks.shape == (budget, num_groups)
    assert len(np.unique(design.masks, axis=0)) == budget  # distinct coalitions
    assert design.weights.min() > 0 and np.isclose(design.weights.sum(), 1.0)
    rows = {tuple(r) for r in design.masks.astype(int)}
    size = design.masks.sum(1)
    # every coalition of a paired size (|z| != G/2) comes with its complement (barring the
    # last row, which the budget may cut off)
    paired = design.masks[:-1][size[:-1] != num_groups // 2].astype(int)
    assert all(tuple(1 - r) in rows for r in paired)
    # expected kernel mass per size pair {s, G-s}: the estimate's weights must be close
    mass = {s: (num_groups - 1) / (s * (num_groups - s)) for s in range(1, num_groups)}
    total = sum(mass.values())
    for s in range(1, num_groups // 2 + 1):
        pair = (size == s) | (size == num_groups - s)
        expected = (mass[s] + (mass[num_groups - s] if s != num_groups - s else 0)) / total
        assert abs(design.weights[pair].sum() - expected) < 0.06, s


def test_enumerated_part_matches_shap_library_design():
    shap = pytest.importorskip("shap")
    num_groups, budget = 10, 300
    explainer = shap.KernelExplainer(lambda z: z.sum(1), np.zeros((1, num_groups)))
    np.random.seed(0)
    explainer.shap_values(np.ones((1, num_groups)), nsamples=budget, l1_reg=False, silent=True)
    ours = coalition_design(num_groups, budget, 0)
    theirs_masks = explainer.maskMatrix[: explainer.nsamplesAdded]
    theirs_weights = explainer.kernelWeights[: explainer.nsamplesAdded]
    n = ours.num_enumerated
    assert n > 0 and len(theirs_masks) == budget == len(ours.masks)
    np.testing.assert_array_equal(ours.masks[:n], theirs_masks[:n])
    np.testing.assert_allclose(ours.weights[:n], theirs_weights[:n], rtol=1e-10)
    np.testing.assert_allclose(ours.weights[n:].sum(), theirs_weights[n:].sum(), rtol=1e-10)


def test_sampling_error_is_small_and_shrinks_with_budget(mlp, ecgs):
    groups = block_groups(LENGTH, 5, 2)  # G = 10 -> 1022 coalitions
    exact = brute_force_shapley(mlp.numpy, ecgs, np.zeros((1, LENGTH, LEADS)), groups, target=0)
    scale = np.abs(exact).mean()

    def mean_error(budget):
        errors = [
            np.abs(np.asarray(kernel_shap_groups(
                mlp.jax, ecgs, 0, groups=groups, n_samples=budget, seed=seed)) - exact).mean()
            for seed in range(3)
        ]
        return np.mean(errors) / scale

    err_small, err_200, err_large = mean_error(60), mean_error(200), mean_error(700)
    assert err_200 < 0.2
    assert err_large < err_200 < err_small
    assert err_large < 0.5 * err_small


def test_solver_matches_float64_weighted_least_squares_even_when_rank_deficient(mlp, ecgs):
    """Our float32 Cholesky solve vs NumPy float64 lstsq of the eliminated problem on the same
    design: a well-determined budget (G = 36, 1000: the Cholesky path) and a rank-deficient
    one (G = 240, 300: the minimum-norm solution, by the SVD fallback)."""
    for segments, budget in [(3, 1000), (20, 300)]:
        groups = lead_segment_groups(LENGTH, segments)
        design = coalition_design(LEADS * segments, budget, 0)
        ours = np.asarray(kernel_shap_groups(mlp.jax, ecgs, 0, segments=segments, n_samples=budget))
        assert np.all(np.isfinite(ours))
        for b in range(len(ecgs)):
            inputs = np.where(design.masks.astype(bool)[:, groups], ecgs[b], 0.0)
            v = mlp.numpy(inputs)[:, 0]
            full = mlp.numpy(ecgs[b:b + 1])[0, 0]
            null = mlp.numpy(np.zeros((1, LENGTH, LEADS)))[0, 0]
            x_design = design.masks[:, :-1] - design.masks[:, -1:]
            y = v - null - design.masks[:, -1] * (full - null)
            sw = np.sqrt(design.weights)
            rest = np.linalg.lstsq(sw[:, None] * x_design, sw * y, rcond=None)[0]
            reference = np.append(rest, full - null - rest.sum())
            np.testing.assert_allclose(ours[b], reference, atol=1e-4 * np.abs(reference).max())
            np.testing.assert_allclose(ours[b].sum(), full - null, rtol=1e-5, atol=1e-5)


def test_deterministic_per_seed(mlp, ecgs):
    kwargs = dict(groups=block_groups(LENGTH, 5, 2), n_samples=200)  # compiled above already
    first = kernel_shap_groups(mlp.jax, ecgs, 1, seed=3, **kwargs)
    again = kernel_shap_groups(mlp.jax, ecgs, 1, seed=3, **kwargs)
    other = kernel_shap_groups(mlp.jax, ecgs, 1, seed=4, **kwargs)
    np.testing.assert_array_equal(np.asarray(first), np.asarray(again))
    assert np.abs(np.asarray(first) - np.asarray(other)).max() > 1e-4


# ------------------------------------------------------------------------------------------
# Closed forms: linear model, efficiency, group spreading
# ------------------------------------------------------------------------------------------


# Complement pairs give the same regression row up to sign, so the regression is determined
# from about 2 (G - 1) coalitions on: G = 60 -> 118, G = 24 -> 46, G = 240 -> 478.
@pytest.mark.parametrize("segments, budget", [(5, 120), (2, 48), (20, 600)])
def test_linear_model_gets_its_exact_group_contributions_at_any_budget(ecgs, segments, budget):
    rng = np.random.default_rng(4)
    weights = rng.normal(size=(LENGTH, LEADS, 2)).astype(np.float32)
    bias = np.array([0.3, -1.0], np.float32)
    baseline = rng.normal(size=(LENGTH, LEADS)).astype(np.float32)

    def linear(x):
        return jnp.einsum("blc,lck->bk", x, weights) + bias

    groups = lead_segment_groups(LENGTH, segments)
    values = np.asarray(kernel_shap_groups(
        linear, ecgs, 1, segments=segments, n_samples=budget, baseline=baseline
    ))
    contribution = weights[..., 1] * (ecgs - baseline)  # (B, L, 12)
    expected = np.stack([contribution[:, groups == g].sum(1) for g in range(groups.max() + 1)], 1)
    assert values.shape == (len(ecgs), LEADS * segments)
    np.testing.assert_allclose(values, expected, atol=5e-5 * np.abs(expected).max())


@pytest.mark.parametrize("output, reference", [
    ("logit", "background"), ("probability", "baseline"), ("softmax_probability", "background"),
])
def test_efficiency_with_baseline_or_background(mlp, ecgs, output, reference):
    rng = np.random.default_rng(5)
    baseline = rng.normal(size=(LENGTH, LEADS)).astype(np.float32)
    background = rng.normal(size=(4, LENGTH, LEADS)).astype(np.float32)

    def explained(x):
        logits = mlp.numpy(x)
        if output == "probability":
            return 1 / (1 + np.exp(-logits[:, 1]))
        if output == "softmax_probability":
            e = np.exp(logits - logits.max(1, keepdims=True))
            return (e / e.sum(1, keepdims=True))[:, 1]
        return logits[:, 1]

    if reference == "baseline":
        kwargs, null_value = dict(baseline=baseline), explained(baseline[None])[0]
    else:
        kwargs, null_value = dict(background=background), explained(background).mean()
    # chunk_size 37 does not divide the 3 x 52 x M evaluations: exercises the padded tail
    attribution = np.asarray(kernel_shap(
        mlp.jax, ecgs, 1, segments=3, n_samples=50, output=output, chunk_size=37, **kwargs
    ))
    assert attribution.shape == ecgs.shape and attribution.dtype == np.float32
    np.testing.assert_allclose(attribution.sum((1, 2)), explained(ecgs) - null_value, atol=2e-5)


def test_attribution_spreads_each_group_value_evenly(mlp, ecgs):
    rng = np.random.default_rng(6)
    groups = rng.integers(0, 10, size=(LENGTH, LEADS)).astype(np.int32)  # irregular groups
    groups[0, :10] = np.arange(10)
    kwargs = dict(groups=groups, n_samples=200)
    values = np.asarray(kernel_shap_groups(mlp.jax, ecgs, 0, **kwargs))
    attribution = np.asarray(kernel_shap(mlp.jax, ecgs, 0, **kwargs))
    for g in range(10):
        inside = attribution[:, groups == g]  # (B, n_g)
        np.testing.assert_allclose(inside.sum(1), values[:, g], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(inside, inside[:, :1].repeat(inside.shape[1], 1), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(expand_group_values(values, groups)), attribution)


def test_memory_is_bounded_by_the_chunk_not_the_budget():
    """At 500 Hz scale the compiled program's scratch memory is about one chunk of masked
    inputs, far below the B x budget x L x 12 floats of materialising every coalition.
    (Compiles only; uses the private jitted core to read XLA's memory analysis.)"""
    from baselines.shap import _kernel_shap_core

    length, batch, budget, chunk = 5000, 2, 1024, 32
    design = coalition_design(240, budget, 0)
    weights = jnp.asarray(np.random.default_rng(0).normal(size=(length, LEADS)).astype(np.float32))
    compiled = _kernel_shap_core.lower(
        lambda x: jnp.tanh(jnp.einsum("blc,lc->b", x, weights))[:, None],
        jnp.ones((batch, length, LEADS)), jnp.zeros(batch, jnp.int32),
        jnp.asarray(lead_segment_groups(length, 20)), jnp.zeros((1, length, LEADS)),
        jnp.asarray(design.masks), jnp.asarray(design.weights, jnp.float32),
        output="logit", chunk_size=chunk,
    ).compile()
    analysis = compiled.memory_analysis()
    if analysis is None:
        pytest.skip("this backend gives no memory analysis")
    one_chunk = chunk * length * LEADS * 4
    assert analysis.temp_size_in_bytes < 3 * one_chunk
    assert analysis.temp_size_in_bytes < batch * budget * length * LEADS * 4 / 20


def test_default_groups_are_lead_by_segment():
    groups = lead_segment_groups(10, 3, num_leads=2)
    np.testing.assert_array_equal(groups[:, 0], [0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    np.testing.assert_array_equal(groups[:, 1], groups[:, 0] + 3)


def test_bad_groups_and_references_are_rejected(mlp, ecgs):
    holes = np.zeros((LENGTH, LEADS), np.int32)
    holes[0, 0] = 2  # group 1 is empty
    with pytest.raises(ValueError, match="non-empty"):
        kernel_shap_groups(mlp.jax, ecgs, 0, groups=holes)
    with pytest.raises(ValueError, match="baseline"):
        kernel_shap_groups(mlp.jax, ecgs, 0, segments=2, baseline=np.zeros((LENGTH, 3)))
    with pytest.raises(ValueError, match="output"):
        kernel_shap_groups(mlp.jax, ecgs, 0, segments=2, output="prob")


# ------------------------------------------------------------------------------------------
# Against the shap library
# ------------------------------------------------------------------------------------------


def _shap_group_explanation(shap, masked_logit, x, num_groups, budget, seed):
    """shap.KernelExplainer on the coalition space: f(z) = model(mask(x, z)), background z = 0,
    instance z = 1. Returns (values (G,), the explainer, holding its coalitions and weights)."""
    explainer = shap.KernelExplainer(
        lambda z: np.asarray(masked_logit(x, jnp.asarray(z, jnp.float32))),
        np.zeros((1, num_groups)),
    )
    np.random.seed(seed)
    values = explainer.shap_values(
        np.ones((1, num_groups)), nsamples=budget, l1_reg=False, silent=True
    )
    return values[0], explainer


def _masked_target_logit(model, groups, target):
    @jax.jit
    def masked_logit(x, z):
        keep = jnp.take(z, jnp.asarray(groups), axis=1) > 0.5  # (n, L, 12)
        return model(jnp.where(keep, x[None], 0.0))[:, target]

    return masked_logit


def test_same_coalitions_as_shap_give_shaps_values(tiny_imn, ecgs):
    """Feeding shap's own coalitions and weights to our evaluation + constrained regression
    reproduces shap's numbers: no sampling noise, so a tight tolerance."""
    shap = pytest.importorskip("shap")
    segments, budget, target = 3, 300, 1  # G = 36
    groups = lead_segment_groups(LENGTH, segments)
    masked_logit = _masked_target_logit(tiny_imn, groups, target)
    for b in range(2):
        theirs, explainer = _shap_group_explanation(shap, masked_logit, ecgs[b], 36, budget, seed=b)
        design = CoalitionDesign(
            explainer.maskMatrix[: explainer.nsamplesAdded],
            explainer.kernelWeights[: explainer.nsamplesAdded], 0, False,
        )
        ours = np.asarray(kernel_shap_groups(
            tiny_imn, ecgs[b:b + 1], target, segments=segments, design=design
        ))[0]
        np.testing.assert_allclose(ours, theirs, atol=2e-4 * np.abs(theirs).max())


def test_agrees_with_shap_kernel_explainer_over_group_coalitions(mlp, ecgs):
    """Independent coalition samples at the same budget: agreement up to Monte-Carlo noise
    (at G = 36, 1000 coalitions, our seed-to-seed correlation is itself ~0.995)."""
    shap = pytest.importorskip("shap")
    segments, budget, target = 3, 1000, 1  # G = 36
    groups = lead_segment_groups(LENGTH, segments)
    ours = np.asarray(kernel_shap_groups(
        mlp.jax, ecgs, target, segments=segments, n_samples=budget
    ))
    masked_logit = _masked_target_logit(mlp.jax, groups, target)
    for b in range(len(ecgs)):
        theirs, _ = _shap_group_explanation(shap, masked_logit, ecgs[b], 36, budget, seed=b)
        np.testing.assert_allclose(theirs.sum(), ours[b].sum(), rtol=1e-4, atol=1e-5)
        assert np.corrcoef(theirs, ours[b])[0, 1] >= 0.99, b
