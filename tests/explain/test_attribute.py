"""The attribution entry point (imn.explain.attribute) and the pure model functions
(imn.explain.model_fns): IMN's exact decomposition, the softmax decision-logit convention,
targets, errors, evaluation mode and the jit cache."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from baselines.inception1d import Inception1D
from imn.explain import (
    METHODS,
    attribute,
    decision_logit_fn,
    imn_decomposition,
    logit_fn,
    predict_fn,
    target_logit_fn,
)
from imn.models.imn import ECGIMN

LENGTH, LEADS = 200, 12


@functools.cache
def _built_imn(num_classes: int, head: str) -> ECGIMN:
    # Initialising a model dispatches dozens of small programs (seconds on a busy CPU):
    # build each configuration once and hand out clones.
    return ECGIMN(num_classes, rngs=nnx.Rngs(params=0, dropout=1), widths=(4, 4, 4), head=head)


def tiny_imn(num_classes: int, head: str = "sigmoid") -> ECGIMN:
    """A fresh (training-mode) copy of a small IMN that tests may modify."""
    return nnx.clone(_built_imn(num_classes, head))


def ecgs(batch: int = 3, seed: int = 0) -> np.ndarray:
    return np.asarray(jax.random.normal(jax.random.key(seed), (batch, LENGTH, LEADS)))


def reference_generate(model: ECGIMN, x: np.ndarray):
    """W (B, K, L, 12), b (B, K), logits (B, K) from the module itself in evaluation mode."""
    model.eval()
    outputs = _reference_forward(model, jnp.asarray(x))
    return tuple(np.asarray(a, np.float64) for a in outputs)


@nnx.jit
def _reference_forward(model, x):
    return (*model.generate(x), model(x))


def assert_sums_to(attribution: np.ndarray, bias: np.ndarray, expected: np.ndarray) -> None:
    """``attribution.sum + bias == expected`` to float32 accuracy of the sum."""
    attribution = np.asarray(attribution, np.float64)
    total = attribution.sum(axis=(1, 2)) + bias
    scale = np.abs(attribution).sum(axis=(1, 2)) + np.abs(bias)
    np.testing.assert_array_less(np.abs(total - expected), 1e-5 * scale + 1e-5)


@pytest.mark.parametrize("num_classes", [1, 3])
def test_imn_attribution_is_the_exact_decomposition_of_a_sigmoid_logit(num_classes):
    model = tiny_imn(num_classes)
    x = ecgs()
    target = np.arange(3) % num_classes
    attribution = np.asarray(attribute("imn", model, x, target))
    weights, bias, logits = reference_generate(model, x)
    rows = np.arange(3)
    np.testing.assert_allclose(
        attribution, weights[rows, target] * x, rtol=1e-5, atol=1e-6
    )
    assert_sums_to(attribution, bias[rows, target], logits[rows, target])
    parts, bias_term = imn_decomposition(model, x, target)
    np.testing.assert_array_equal(np.asarray(parts), attribution)
    np.testing.assert_allclose(bias_term, bias[rows, target], rtol=1e-5, atol=1e-6)


def test_imn_softmax_attribution_is_the_decision_map():
    model = tiny_imn(2, head="softmax")
    x = ecgs()
    weights, bias, logits = reference_generate(model, x)
    decision_map = (weights[:, 1] - weights[:, 0]) * x
    one = np.asarray(attribute("imn", model, x, 1))
    zero = np.asarray(attribute("imn", model, x, 0))
    np.testing.assert_allclose(one, decision_map, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(zero, -decision_map, rtol=1e-5, atol=1e-6)
    assert_sums_to(one, bias[:, 1] - bias[:, 0], logits[:, 1] - logits[:, 0])
    assert_sums_to(zero, bias[:, 0] - bias[:, 1], logits[:, 0] - logits[:, 1])
    # The scalar explained by every other method is the same decision logit.
    explained = jax.jit(target_logit_fn(model))(jnp.asarray(x), jnp.array([1, 0, 1]))
    np.testing.assert_allclose(
        explained, (logits[:, 1] - logits[:, 0]) * np.array([1, -1, 1]), rtol=1e-5, atol=1e-5
    )


def test_softmax_with_three_classes_explains_the_contrast_to_the_other_classes():
    model = tiny_imn(3, head="softmax")
    x = ecgs()
    target = np.array([2, 0, 1])
    weights, bias, logits = reference_generate(model, x)
    rows = np.arange(3)
    others = (logits.sum(1) - logits[rows, target]) / 2
    explained = np.asarray(jax.jit(target_logit_fn(model))(jnp.asarray(x), jnp.asarray(target)))
    np.testing.assert_allclose(explained, logits[rows, target] - others, rtol=1e-5, atol=1e-5)
    attribution, bias_term = imn_decomposition(model, x, target)
    assert_sums_to(np.asarray(attribution), np.asarray(bias_term, np.float64), explained)
    np.testing.assert_allclose(
        jax.jit(decision_logit_fn(model))(jnp.asarray(x))[rows, target], explained, rtol=1e-6
    )


def test_model_is_explained_in_evaluation_mode_without_being_changed():
    model = tiny_imn(1)  # training mode: dropout 0.2 active, BatchNorm on batch statistics
    x = ecgs()
    attribution = np.asarray(attribute("imn", model, x, 0))
    logits = np.asarray(jax.jit(logit_fn(model))(jnp.asarray(x)))
    assert model.dropout.deterministic is False  # the caller's model is left as it was
    weights, _, eval_logits = reference_generate(model, x)  # now switch it to eval
    np.testing.assert_allclose(attribution, weights[:, 0] * x, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logits, eval_logits, rtol=1e-5, atol=1e-5)


def test_predict_fn_and_logit_fn_are_pure_functions_of_the_model():
    x = jnp.asarray(ecgs(2))
    sigmoid_model, softmax_model = tiny_imn(3), tiny_imn(3, head="softmax")
    logits = reference_generate(sigmoid_model, x)[2]
    np.testing.assert_allclose(
        jax.jit(predict_fn(sigmoid_model))(x), 1 / (1 + np.exp(-logits)), rtol=1e-5
    )
    soft_logits = reference_generate(softmax_model, x)[2]
    expected = np.exp(soft_logits) / np.exp(soft_logits).sum(1, keepdims=True)
    np.testing.assert_allclose(
        jax.jit(predict_fn(softmax_model))(x), expected, rtol=1e-5, atol=1e-7
    )
    # Jittable and vmappable; and closed over the parameters of the moment it was made.
    f = logit_fn(sigmoid_model)
    jitted = jax.jit(f)
    np.testing.assert_allclose(jitted(x), logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        jax.jit(jax.vmap(lambda e: f(e[None])[0]))(x), logits, rtol=1e-5, atol=1e-5
    )
    sigmoid_model.bias_head.bias[...] = sigmoid_model.bias_head.bias[...] + 1.0
    np.testing.assert_allclose(jitted(x), logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        jax.jit(logit_fn(sigmoid_model))(x), logits + 1.0, rtol=1e-5, atol=1e-5
    )


class FeatureNet(nnx.Module):
    """A tiny black box with a features()/head() split, for the model-agnostic methods."""

    def __init__(self, num_classes: int, *, rngs):
        self.conv = nnx.Conv(LEADS, 4, (5,), strides=(2,), rngs=rngs)
        self.dense = nnx.Linear(4, num_classes, rngs=rngs)

    def features(self, x):
        return jnp.tanh(self.conv(x))

    def head(self, features):
        return self.dense(features.mean(axis=1))

    def __call__(self, x):
        return self.head(self.features(x))


def test_every_method_returns_a_float32_map_of_the_input_shape():
    model = FeatureNet(2, rngs=nnx.Rngs(0))
    x = ecgs(2)
    extra = {
        "gradient_shap": {"background": ecgs(3, seed=1), "n_samples": 4},
        "integrated_gradients": {"steps": 4},
        "kernel_shap": {"segments": 2, "n_samples": 32},
    }
    for method in METHODS:
        if method in ("imn", "attention"):  # need an IMN / an attention branch network
            continue
        attribution = attribute(method, model, x, 1, **extra.get(method, {}))
        assert attribution.shape == x.shape and attribution.dtype == jnp.float32, method
        assert bool(jnp.isfinite(attribution).all()), method


def test_attention_needs_an_attention_branch_network():
    with pytest.raises(ValueError, match="no attention_map.*xecgnet"):
        attribute("attention", FeatureNet(2, rngs=nnx.Rngs(0)), ecgs(2), 1)


def test_target_as_int_and_as_array():
    model = FeatureNet(3, rngs=nnx.Rngs(0))
    x = ecgs(3)
    as_int = np.asarray(attribute("saliency", model, x, 2))
    np.testing.assert_array_equal(np.asarray(attribute("saliency", model, x, [2, 2, 2])), as_int)
    mixed = np.asarray(attribute("saliency", model, x, np.array([0, 2, 1])))
    np.testing.assert_array_equal(mixed[1], as_int[1])
    for b, t in [(0, 0), (2, 1)]:
        single = np.asarray(attribute("saliency", model, x, t))
        np.testing.assert_array_equal(mixed[b], single[b])
        assert not np.allclose(mixed[b], as_int[b])


def test_errors_are_clear():
    imn_model, black_box = tiny_imn(1), FeatureNet(2, rngs=nnx.Rngs(0))
    x = ecgs(2)
    with pytest.raises(ValueError, match=r"unknown attribution method 'lime'.*gradient_shap"):
        attribute("lime", black_box, x, 0)
    with pytest.raises(ValueError, match="IMN has no feature map; explain it with method='imn'"):
        attribute("gradcam", imn_model, x, 0)
    # An abstract model (no initialisation): the check only reads its methods.
    inception = nnx.eval_shape(
        lambda: Inception1D(2, rngs=nnx.Rngs(0), depth=3, filters=4, kernel_size=8)
    )
    with pytest.raises(ValueError, match=r"Inception1D has no generate\(\)"):
        attribute("imn", inception, x, 0)
    with pytest.raises(ValueError, match="needs a Flax NNX model"):
        attribute("gradcam", lambda z: z.sum((1, 2))[:, None], x, 0)
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['step'\].*'steps'"):
        attribute("integrated_gradients", black_box, x, 0, step=10)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        attribute("saliency", black_box, x, 2)
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        attribute("saliency", black_box, x, [0, 1, 1])
    with pytest.raises(TypeError, match="int"):
        attribute("saliency", black_box, x, 0.5)
    with pytest.raises(ValueError, match=r"\(B, L, leads\)"):
        attribute("saliency", black_box, x[0], 0)
    with pytest.raises(ValueError, match="does not broadcast"):
        attribute("integrated_gradients", black_box, x, 0, baseline=np.zeros((5, LEADS)))


TRACES = {"count": 0}


class CountedNet(nnx.Module):
    """Counts how often JAX traces its forward pass (a Python side effect)."""

    def __init__(self, *, rngs):
        self.dense = nnx.Linear(LEADS, 2, rngs=rngs)

    def __call__(self, x):
        TRACES["count"] += 1
        return self.dense(jnp.tanh(x).mean(axis=1))


def test_compiled_function_is_cached_per_architecture_method_and_options():
    x = ecgs(2)
    model = CountedNet(rngs=nnx.Rngs(0))
    first = attribute("integrated_gradients", model, x, 1, steps=8)
    traces = TRACES["count"]
    assert traces > 0
    again = attribute("integrated_gradients", model, x + 1.0, 0, steps=8, baseline=0.5)
    assert TRACES["count"] == traces  # new values of x, target and baseline: no retrace
    assert not np.allclose(again, first)
    # A new instance of the same architecture (other parameters) reuses the compiled code...
    other = attribute("integrated_gradients", CountedNet(rngs=nnx.Rngs(1)), x, 1, steps=8)
    assert TRACES["count"] == traces
    assert not np.allclose(other, first)
    # ... and so do changed parameters of the same model.
    model.dense.kernel[...] = 2 * model.dense.kernel[...]
    doubled = attribute("integrated_gradients", model, x, 1, steps=8)
    assert TRACES["count"] == traces
    np.testing.assert_allclose(doubled, 2 * np.asarray(first), rtol=1e-5, atol=1e-7)
    # A static option changes the program.
    attribute("integrated_gradients", model, x, 1, steps=9)
    assert TRACES["count"] > traces


def test_kernel_shap_is_dispatched_with_the_same_explained_scalar():
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(2, LENGTH, LEADS)).astype(np.float32)

    def linear(z):
        return jnp.einsum("ntl,ktl->nk", z, jnp.asarray(weights))

    x = ecgs(2)
    phi = np.asarray(attribute("kernel_shap", linear, x, [1, 0], segments=2, n_samples=64))
    # An additive game: each lead x half-record group's Shapley value is its w * x sum.
    contributions = weights[[1, 0]] * x
    halves = np.array_split(np.arange(LENGTH), 2)
    for half in halves:
        np.testing.assert_allclose(
            phi[:, half].sum(1), contributions[:, half].sum(1), rtol=1e-3, atol=1e-3
        )
    # Softmax IMN: efficiency holds for the decision logit (reference: zeros).
    model = tiny_imn(2, head="softmax")
    phi = np.asarray(attribute("kernel_shap", model, x, 0, segments=2, n_samples=64))
    explain = target_logit_fn(model)
    target = jnp.zeros(2, jnp.int32)
    gap = explain(jnp.asarray(x), target) - explain(jnp.zeros_like(jnp.asarray(x)), target)
    np.testing.assert_allclose(phi.sum((1, 2)), gap, rtol=1e-4, atol=1e-4)


def test_explanation_fn_is_attribute_as_a_traceable_function():
    from imn.explain import explanation_fn

    model = tiny_imn(2)
    x = ecgs()
    target = np.array([0, 1, 0], np.int32)
    for method, options in (("saliency", {}), ("integrated_gradients", {"steps": 4})):
        explain = jax.jit(explanation_fn(method, model, **options))
        np.testing.assert_allclose(np.asarray(explain(x, target)),
                                   np.asarray(attribute(method, model, x, target, **options)),
                                   rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="kernel_shap"):
        explanation_fn("kernel_shap", model)
    with pytest.raises(TypeError, match="unknown option"):
        explanation_fn("saliency", model, steps=3)
