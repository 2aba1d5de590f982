"""Gradient explainers (baselines/gradients.py) against independent references: central
finite differences, closed forms on linear models, and the completeness of integrated
gradients."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from baselines import gradients
from imn.explain import attribute

LENGTH, LEADS = 48, 12


def smooth_logits(key: jax.Array, num_classes: int = 3, dtype=jnp.float64):
    """A small nonlinear, smooth model ``x (n, L, 12) -> (n, K)`` as a pure function."""
    k1, k2, k3 = jax.random.split(key, 3)
    conv = 0.3 * jax.random.normal(k1, (5, LEADS, 4), dtype)
    bias = 0.1 * jax.random.normal(k2, (4,), dtype)
    dense = jax.random.normal(k3, (8, num_classes), dtype)

    def logits(x):
        h = jax.lax.conv_general_dilated(
            x, conv, (1,), "SAME", dimension_numbers=("NWC", "WIO", "NWC")
        )
        h = jnp.tanh(h + bias)
        pooled = jnp.concatenate([h.mean(axis=1), (h**2).mean(axis=1)], axis=-1)
        return pooled @ dense

    return logits


def pick(logits):
    """The explained scalar of a sigmoid model: ``logits[n, target[n]]``."""
    return lambda x, t: jnp.take_along_axis(logits(x), t[:, None], axis=1)[:, 0]


def central_difference(f, x: np.ndarray, index: tuple[int, int, int], eps: float) -> float:
    up, down = x.copy(), x.copy()
    up[index] += eps
    down[index] -= eps
    return (f(up) - f(down)) / (2 * eps)


COORDINATES = [(0, 0, 0), (0, 17, 3), (0, 47, 11), (1, 5, 7), (1, 30, 0), (1, 24, 6)]


def test_saliency_and_input_x_gradient_match_finite_differences():
    with jax.enable_x64(True):
        logits = smooth_logits(jax.random.key(0))
        x = np.asarray(jax.random.normal(jax.random.key(1), (2, LENGTH, LEADS), jnp.float64))
        target = jnp.array([2, 0])
        grad = np.asarray(gradients.saliency(pick(logits), jnp.asarray(x), target))
        ixg = np.asarray(gradients.input_x_gradient(pick(logits), jnp.asarray(x), target))
        absolute = gradients.saliency(pick(logits), jnp.asarray(x), target, absolute=True)
        forward = jax.jit(logits)
        for index in COORDINATES:
            b = index[0]
            scalar = lambda z, b=b: float(forward(jnp.asarray(z))[b, int(target[b])])  # noqa: E731
            expected = central_difference(scalar, x, index, 1e-5)
            assert grad[index] == pytest.approx(expected, rel=1e-6, abs=1e-9)
            assert ixg[index] == pytest.approx(x[index] * expected, rel=1e-6, abs=1e-9)
        np.testing.assert_array_equal(np.asarray(absolute), np.abs(grad))
        # A different target gives a different gradient (the target is really used).
        other = gradients.saliency(pick(logits), jnp.asarray(x), jnp.array([1, 1]))
        assert not np.allclose(np.asarray(other), grad)


class TinyConvNet(nnx.Module):
    """An NNX model (conv -> GELU -> global mean -> linear) for the entry point."""

    def __init__(self, num_classes: int, *, rngs: nnx.Rngs):
        self.conv = nnx.Conv(LEADS, 6, (7,), rngs=rngs)
        self.norm = nnx.BatchNorm(6, rngs=rngs)
        self.dense = nnx.Linear(6, num_classes, rngs=rngs)

    def __call__(self, x):
        return self.dense(jax.nn.gelu(self.norm(self.conv(x))).mean(axis=1))


def test_attribute_saliency_matches_finite_differences_in_float32():
    model = TinyConvNet(3, rngs=nnx.Rngs(0))
    x = np.asarray(jax.random.normal(jax.random.key(2), (2, LENGTH, LEADS)))
    target = np.array([1, 2])
    grad = np.asarray(attribute("saliency", model, x, target))
    ixg = np.asarray(attribute("input_x_gradient", model, x, target))
    model.eval()
    forward = nnx.jit(lambda m, z: m(z))
    for index in COORDINATES:
        b = index[0]
        scalar = lambda z, b=b: float(forward(model, jnp.asarray(z))[b, target[b]])  # noqa: E731
        expected = central_difference(scalar, x.astype(np.float32), index, 1e-2)
        assert grad[index] == pytest.approx(expected, rel=2e-2, abs=2e-4)
        assert ixg[index] == pytest.approx(x[index] * grad[index], rel=1e-6, abs=1e-7)


def test_integrated_gradients_is_exact_on_a_linear_model():
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(2, LENGTH, LEADS))  # two classes

    def logits(x):
        return jnp.einsum("ntl,ktl->nk", x, jnp.asarray(weights, x.dtype))

    x = rng.normal(size=(3, LENGTH, LEADS)).astype(np.float32)
    target = np.array([0, 1, 1])
    w_target = weights[target]
    one_baseline = rng.normal(size=(LENGTH, LEADS)).astype(np.float32)
    per_ecg = rng.normal(size=(3, LENGTH, LEADS)).astype(np.float32)
    for baseline, reference in [(None, 0.0), (one_baseline, one_baseline), (per_ecg, per_ecg)]:
        for rule in ("midpoint", "trapezoid"):
            ig = gradients.integrated_gradients(
                pick(logits), jnp.asarray(x), jnp.asarray(target), baseline=baseline,
                steps=5, rule=rule, chunk_size=2,
            )
            np.testing.assert_allclose(ig, w_target * (x - reference), rtol=1e-5, atol=1e-5)
    # The same through the entry point, with a plain logit function as the "model".
    ig = attribute("integrated_gradients", logits, x, target, baseline=one_baseline, steps=3)
    np.testing.assert_allclose(ig, w_target * (x - one_baseline), rtol=1e-5, atol=1e-5)


def test_integration_points_are_the_documented_rules():
    alphas, weights = gradients.integration_points(4, "midpoint")
    np.testing.assert_allclose(alphas, [0.125, 0.375, 0.625, 0.875])
    np.testing.assert_allclose(weights, [0.25] * 4)
    alphas, weights = gradients.integration_points(5, "trapezoid")
    np.testing.assert_allclose(alphas, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(weights, [0.125, 0.25, 0.25, 0.25, 0.125])
    with pytest.raises(ValueError, match="rule"):
        gradients.integration_points(4, "simpson")
    with pytest.raises(ValueError, match="steps"):
        gradients.integration_points(1, "trapezoid")


@pytest.mark.parametrize("rule", ["midpoint", "trapezoid"])
def test_integrated_gradients_completeness_error_falls_with_steps(rule):
    with jax.enable_x64(True):
        logits = smooth_logits(jax.random.key(3), num_classes=2)
        x = 2.0 * jax.random.normal(jax.random.key(4), (2, LENGTH, LEADS), jnp.float64)
        baseline = 0.5 * jax.random.normal(jax.random.key(5), (LENGTH, LEADS), jnp.float64)
        target = jnp.array([1, 0])
        exact_gap = pick(logits)(x, target) - pick(logits)(
            jnp.broadcast_to(baseline, x.shape), target
        )
        errors = []
        for steps in (4, 16, 64):
            ig = gradients.integrated_gradients(
                pick(logits), x, target, baseline=baseline, steps=steps, rule=rule,
                chunk_size=128,
            )
            errors.append(float(jnp.abs(ig.sum(axis=(1, 2)) - exact_gap).max()))
    assert errors[0] > 1e-4, errors  # the model is nonlinear enough for the test to bite
    # Both rules are second order: 4x the steps cuts the error ~16x.
    assert errors[1] < errors[0] / 8 and errors[2] < errors[1] / 8, errors


def test_integrated_gradients_does_not_depend_on_chunking():
    logits = smooth_logits(jax.random.key(6), dtype=jnp.float32)
    x = jax.random.normal(jax.random.key(7), (5, LENGTH, LEADS))
    target = jnp.array([0, 1, 2, 0, 1])
    reference = gradients.integrated_gradients(pick(logits), x, target, steps=10, chunk_size=64)
    # 3 points per chunk (4 chunks, 2 padded nodes) and ECGs one at a time.
    chunked = gradients.integrated_gradients(pick(logits), x, target, steps=10, chunk_size=3)
    np.testing.assert_allclose(chunked, reference, rtol=1e-5, atol=1e-6)


def linear_model(seed: int = 0):
    weights = np.random.default_rng(seed).normal(size=(LENGTH, LEADS)).astype(np.float32)
    return weights, lambda x: jnp.einsum("ntl,tl->n", x, jnp.asarray(weights, x.dtype))[:, None]


def test_gradient_shap_on_a_linear_model_with_one_reference_is_exact():
    weights, logits = linear_model()
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, LENGTH, LEADS)).astype(np.float32)
    reference = rng.normal(size=(LENGTH, LEADS)).astype(np.float32)
    background = np.stack([reference] * 3)  # one reference, repeated
    phi = attribute("gradient_shap", logits, x, 0, background=background, n_samples=7)
    np.testing.assert_allclose(phi, weights * (x - reference), rtol=1e-5, atol=1e-5)


def test_gradient_shap_on_a_linear_model_converges_to_the_background_mean():
    weights, logits = linear_model()
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, LENGTH, LEADS)).astype(np.float32)
    levels = np.array([-2.0, 0.0, 1.0, 4.0], np.float32)  # constant reference ECGs
    background = levels[:, None, None] * np.ones((1, LENGTH, LEADS), np.float32)
    errors = []
    for n_samples in (16, 1024):
        phi = np.asarray(
            attribute("gradient_shap", logits, x, 0, background=background, n_samples=n_samples)
        )
        # For a linear model phi = w * (x - mean of the drawn references): x - phi / w is
        # one constant per ECG, the average of n draws from the (integer) levels.
        drawn_mean = x - phi / weights
        per_ecg = np.median(drawn_mean, axis=(1, 2))
        np.testing.assert_allclose(
            drawn_mean, np.broadcast_to(per_ecg[:, None, None], x.shape), atol=1e-3
        )
        assert np.all((per_ecg >= levels.min() - 1e-4) & (per_ecg <= levels.max() + 1e-4))
        np.testing.assert_allclose(per_ecg * n_samples, np.round(per_ecg * n_samples), atol=0.05)
        errors.append(np.abs(per_ecg - levels.mean()).max())
    # Monte Carlo error ~ std(levels) / sqrt(n): 2.3 / 4 at n = 16, 2.3 / 32 at n = 1024.
    assert errors[1] < 0.25, errors


def test_gradient_shap_matches_integrated_gradients_from_a_single_reference():
    # With one reference, expected gradients is IG with a Monte Carlo alpha.
    logits = smooth_logits(jax.random.key(8), num_classes=2, dtype=jnp.float32)
    x = jax.random.normal(jax.random.key(9), (1, LENGTH, LEADS))
    reference = 0.3 * jax.random.normal(jax.random.key(10), (LENGTH, LEADS))
    target = jnp.array([1])
    ig = gradients.integrated_gradients(pick(logits), x, target, baseline=reference, steps=64)
    phi = gradients.gradient_shap(
        pick(logits), x, target, background=reference[None], n_samples=2048, chunk_size=2048
    )
    scale = float(jnp.abs(ig).max())
    assert float(jnp.abs(phi - ig).max()) < 0.05 * scale
    # Not the trivial agreement of a linear model: the gradient varies along the path.
    saliency_at_x = gradients.input_x_gradient(pick(logits), x - reference, target)
    assert float(jnp.abs(saliency_at_x - ig).max()) > 0.1 * scale


def test_gradient_shap_seeding_chunking_and_smoothing():
    weights, logits = linear_model()
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, LENGTH, LEADS)).astype(np.float32)
    background = rng.normal(size=(5, LENGTH, LEADS)).astype(np.float32)
    target_logit = pick(logits)
    target = jnp.zeros(2, jnp.int32)

    @functools.partial(jax.jit, static_argnames=("chunk_size", "local_smoothing"))
    def explain(seed, chunk_size=64, local_smoothing=0.0):
        return gradients.gradient_shap(
            target_logit, jnp.asarray(x), target, background=background, n_samples=20,
            seed=seed, chunk_size=chunk_size, local_smoothing=local_smoothing,
        )

    def run(seed, **options):
        return np.asarray(explain(jnp.uint32(seed), **options))

    base = run(seed=0)
    np.testing.assert_array_equal(run(seed=0), base)
    assert not np.allclose(run(seed=1), base)
    # Draw j is keyed by j alone, so the chunk size changes nothing (3 chunks of 7 draws, the
    # last one padded), and neither do the ECG's batch and place in it.
    np.testing.assert_allclose(run(seed=0, chunk_size=7), base, rtol=1e-6, atol=1e-6)
    alone = gradients.gradient_shap(target_logit, jnp.asarray(x[1:]), target[1:], background=background,
                                    n_samples=20, seed=jnp.uint32(0))
    np.testing.assert_allclose(np.asarray(alone), base[1:], rtol=1e-6, atol=1e-6)
    # local_smoothing adds N(0, s^2) to x in each draw: for a linear model the change is
    # w * mean of n noise draws, whose standard deviation is s / sqrt(n).
    smoothing = 0.5
    noise_mean = (run(seed=0, local_smoothing=smoothing) - base) / weights
    assert 0.8 < noise_mean.std() / (smoothing / np.sqrt(20)) < 1.2
    # The entry point passes seed and smoothing through.
    via_api = attribute("gradient_shap", logits, x, 0, background=background, n_samples=20)
    np.testing.assert_allclose(via_api, base, rtol=1e-6, atol=1e-6)


def test_gradient_shap_needs_a_background():
    _, logits = linear_model()
    x = np.zeros((1, LENGTH, LEADS), np.float32)
    with pytest.raises(ValueError, match="background"):
        attribute("gradient_shap", logits, x, 0)
    with pytest.raises(ValueError, match="background"):
        attribute("gradient_shap", logits, x, 0, background=np.zeros((2, LENGTH + 1, LEADS)))


def test_random_control_is_seeded_standard_normal():
    _, logits = linear_model()
    x = np.zeros((4, LENGTH, LEADS), np.float32)
    a = np.asarray(attribute("random", logits, x, 0, seed=3))
    assert a.shape == x.shape and a.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(attribute("random", logits, x, 0, seed=3)), a)
    assert not np.allclose(np.asarray(attribute("random", logits, x, 0, seed=4)), a)
    assert abs(a.mean()) < 0.05 and abs(a.std() - 1) < 0.05
