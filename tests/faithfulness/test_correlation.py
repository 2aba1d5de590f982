"""Faithfulness correlation, infidelity and max-sensitivity: closed forms on linear models
and NumPy loops over the same random draws."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from imn.faithfulness import faithfulness_correlation, infidelity, max_sensitivity
from imn.faithfulness.correlation import _row_keys, random_subsets

BATCH, LENGTH, LEADS = 4, 200, 12


@pytest.fixture(scope="module")
def linear():
    rng = np.random.default_rng(11)
    w = rng.normal(size=(LENGTH, LEADS)).astype(np.float32) / 10
    x = rng.normal(size=(BATCH, LENGTH, LEADS)).astype(np.float32)
    wj = jnp.asarray(w)

    def logit(x):  # identity output: the drop is exactly the removed contributions
        return (jnp.sum(x * wj, axis=(1, 2)) + 0.5)[:, None]

    def prob(x):
        return jax.nn.sigmoid(jnp.tanh(x[:, :, :1]).sum(axis=(1, 2))[:, None] * 0.1 + logit(x))

    return dict(w=w, x=x, logit=logit, prob=prob)


@pytest.mark.parametrize("unit", ["sample", "patch"])
def test_faithfulness_correlation_is_one_for_exact_linear_attribution(linear, unit):
    x, w = linear["x"], linear["w"]
    kw = dict(subset_size=30 if unit == "sample" else 20, n_runs=40, unit=unit, segments=10)
    exact = np.asarray(faithfulness_correlation(linear["logit"], x, x * w, 0, **kw))
    flipped = np.asarray(faithfulness_correlation(linear["logit"], x, -x * w, 0, **kw))
    noise = np.random.default_rng(0).normal(size=x.shape).astype(np.float32)
    unrelated = np.asarray(faithfulness_correlation(linear["logit"], x, noise, 0, **kw))
    np.testing.assert_allclose(exact, 1.0, atol=1e-5)
    np.testing.assert_allclose(flipped, -1.0, atol=1e-5)
    assert np.mean(np.abs(unrelated)) < 0.4


def test_faithfulness_correlation_equals_numpy_loop(linear):
    """Same random subsets (drawn with the library's key per row), loops for the rest."""
    x, prob = linear["x"], linear["prob"]
    attribution = np.random.default_rng(1).normal(size=x.shape).astype(np.float32)
    n_runs, subset_size, seed = 12, 40, 3
    got = np.asarray(faithfulness_correlation(prob, x, attribution, 0, subset_size=subset_size,
                                              n_runs=n_runs, baseline="mean", seed=seed))
    keys = _row_keys(seed, n_runs, BATCH)
    predict = jax.jit(prob)
    for b in range(BATCH):
        clean = float(predict(jnp.asarray(x[b:b + 1]))[0, 0])
        sums, drops = [], []
        for r in range(n_runs):
            subset = np.asarray(random_subsets(keys[r * BATCH + b][None], LENGTH * LEADS,
                                               subset_size))[0].reshape(LENGTH, LEADS)
            assert subset.sum() == subset_size
            perturbed = np.where(subset, x[b].mean(axis=0), x[b])
            sums.append(attribution[b][subset].sum())
            drops.append(clean - float(predict(jnp.asarray(perturbed[None]))[0, 0]))
        np.testing.assert_allclose(got[b], np.corrcoef(sums, drops)[0, 1], atol=2e-4)


def test_random_subsets_are_uniform_and_distinct():
    masks = np.asarray(random_subsets(jax.random.split(jax.random.key(0), 400), 50, 10))
    assert np.all(masks.sum(axis=1) == 10)
    frequency = masks.mean(axis=0)  # each feature ~ 10 / 50 = 0.2
    assert np.all(np.abs(frequency - 0.2) < 0.1)
    assert len({m.tobytes() for m in masks}) == 400


def test_infidelity_is_zero_for_exact_explanations(linear):
    x, w, logit = linear["x"], linear["w"], linear["logit"]
    gradient = np.broadcast_to(w, x.shape)
    additive = np.asarray(infidelity(logit, x, gradient, 0, n_perturbations=32))
    multiplicative = np.asarray(infidelity(logit, x, x * w, 0, n_perturbations=32,
                                           perturbation="multiplicative"))
    # The squared error of a drop of size ~0.4 computed in float32: ~1e-12.
    assert np.all(additive < 1e-9) and np.all(multiplicative < 1e-9)
    # The contribution map read as a gradient is wrong, and infidelity sees it.
    assert np.all(np.asarray(infidelity(logit, x, x * w, 0, n_perturbations=32)) > 1e-3)


def test_infidelity_closed_form_and_optimal_scaling(linear):
    """a = 2w: I.a - drop = I.w, so E[...^2] = noise_std^2 ||w||^2; the optimal scale 1/2
    makes it exact."""
    x, w, logit = linear["x"], linear["w"], linear["logit"]
    doubled = np.broadcast_to(2 * w, x.shape)
    std = 0.1
    got = np.asarray(infidelity(logit, x, doubled, 0, n_perturbations=400, noise_std=std))
    want = std**2 * np.sum(w.astype(np.float64) ** 2)
    np.testing.assert_allclose(got, want, rtol=0.25)  # Monte-Carlo: sd ~ sqrt(2/400) = 7 %
    scaled = np.asarray(infidelity(logit, x, doubled, 0, n_perturbations=32, noise_std=std,
                                   optimal_scaling=True))
    assert np.all(scaled < 1e-9)


@pytest.mark.parametrize("perturbation", ["additive", "multiplicative"])
@pytest.mark.parametrize("optimal_scaling", [False, True])
def test_infidelity_equals_numpy_loop(linear, perturbation, optimal_scaling):
    x, prob = linear["x"], linear["prob"]
    attribution = np.random.default_rng(2).normal(size=x.shape).astype(np.float32) / 100
    n, std, seed = 10, 0.2, 5
    got = np.asarray(infidelity(prob, x, attribution, 0, n_perturbations=n, noise_std=std,
                                perturbation=perturbation, optimal_scaling=optimal_scaling,
                                seed=seed, chunk_size=7))
    keys = _row_keys(seed, n, BATCH)
    predict = jax.jit(prob)
    for b in range(BATCH):
        clean = float(predict(jnp.asarray(x[b:b + 1]))[0, 0])
        explained, drops = [], []
        for p in range(n):
            eps = std * np.asarray(
                jax.random.normal(keys[p * BATCH + b], (LENGTH * LEADS,))).reshape(LENGTH, LEADS)
            shift = eps * x[b] if perturbation == "multiplicative" else eps
            explained.append(np.sum(eps.astype(np.float64) * attribution[b]))
            drops.append(clean - float(predict(jnp.asarray((x[b] - shift)[None]))[0, 0]))
        explained, drops = np.array(explained), np.array(drops)
        if optimal_scaling:
            explained *= max(np.mean(explained * drops) / np.mean(explained**2), 0.0)
        np.testing.assert_allclose(got[b], np.mean((explained - drops) ** 2), rtol=1e-3,
                                   atol=1e-9)


def test_max_sensitivity(linear):
    x, w = linear["x"], linear["w"]
    wj = jnp.asarray(w)
    constant = jnp.asarray(np.random.default_rng(3).normal(size=(LENGTH, LEADS)), jnp.float32)

    def constant_explainer(x, target):
        return jnp.broadcast_to(constant, x.shape)

    def gradient_times_input(x, target):
        return x * wj

    assert np.all(np.asarray(max_sensitivity(constant_explainer, x, 0)) == 0.0)
    radius, n, seed = 0.05, 6, 9
    got = np.asarray(max_sensitivity(gradient_times_input, x, 0, radius=radius, n_samples=n,
                                     seed=seed, chunk_size=5))
    # Reference with the library's draws: max_j ||delta_j * w|| / ||x * w||.
    keys = _row_keys(seed, n, BATCH)
    for b in range(BATCH):
        distances = [
            np.linalg.norm(np.asarray(jax.random.uniform(
                keys[j * BATCH + b], (LENGTH * LEADS,), minval=-radius, maxval=radius)
            ).reshape(LENGTH, LEADS) * w)
            for j in range(n)
        ]
        np.testing.assert_allclose(got[b], max(distances) / np.linalg.norm(x[b] * w), rtol=1e-5)
    assert np.all(got > 0)
    assert np.all(got <= radius * np.linalg.norm(w) / np.linalg.norm(x * w, axis=(1, 2)))
    with pytest.raises(ValueError, match="shaped like its input"):
        max_sensitivity(lambda x, t: x[..., 0], x, 0)
    raw = np.asarray(max_sensitivity(gradient_times_input, x, 0, radius=radius, n_samples=n,
                                     seed=seed, normalize=False))
    np.testing.assert_allclose(raw, got * np.linalg.norm(x * w, axis=(1, 2)), rtol=1e-5)
    # A precomputed a(x) gives the same values; a different one changes them.
    given = np.asarray(max_sensitivity(gradient_times_input, x, 0, radius=radius, n_samples=n,
                                       seed=seed, chunk_size=5, reference=x * w))
    np.testing.assert_allclose(given, got, rtol=1e-6)
    shifted = np.asarray(max_sensitivity(gradient_times_input, x, 0, radius=radius, n_samples=n,
                                         seed=seed, chunk_size=5, reference=2 * x * w))
    assert np.all(shifted > got)
    with pytest.raises(ValueError, match="reference must be shaped like x"):
        max_sensitivity(gradient_times_input, x, 0, reference=np.zeros((1, LENGTH, LEADS)))


def test_infidelity_with_optimal_scaling_sees_a_map_with_the_wrong_sign(linear):
    """For f = w.x + c, phi = w explains every drop exactly; -w predicts each drop with the
    wrong sign. A free least-squares factor (-1) would make both exact; the non-negative one
    scores -w as the empty map."""
    x, w, logit = linear["x"], linear["w"], linear["logit"]
    right = np.broadcast_to(w, x.shape)
    scores = {name: np.asarray(infidelity(logit, x, attribution, 0, n_perturbations=16,
                                          optimal_scaling=True))
              for name, attribution in (("right", right), ("flipped", -right),
                                        ("zero", np.zeros_like(x)))}
    assert np.all(scores["right"] < 1e-9)
    assert np.all(scores["flipped"] > 1e-4)
    np.testing.assert_allclose(scores["flipped"], scores["zero"], rtol=1e-6)


def test_infidelity_of_an_unmoved_output_is_undefined_and_of_a_zero_map_is_the_drops(linear):
    """A saturated output (no drop under any perturbation) would give every map the same
    score (0 with optimal scaling): NaN. An all-zero map explains nothing: with optimal scaling
    its score is the drops' mean square, as without, not 0 / 0."""
    x, logit = linear["x"], linear["logit"]

    def saturated(batch):
        return jnp.ones((batch.shape[0], 1))

    attribution = np.random.default_rng(3).normal(size=x.shape).astype(np.float32)
    for scaling in (False, True):
        got = np.asarray(infidelity(saturated, x, attribution, 0, n_perturbations=8,
                                    optimal_scaling=scaling))
        assert np.all(np.isnan(got))
    zero = np.zeros_like(x)
    scaled = np.asarray(infidelity(logit, x, zero, 0, n_perturbations=16, optimal_scaling=True))
    plain = np.asarray(infidelity(logit, x, zero, 0, n_perturbations=16))
    assert np.all(np.isfinite(scaled)) and np.all(scaled > 0)
    np.testing.assert_allclose(scaled, plain, rtol=1e-6)
