"""Cascading parameter randomisation on a tiny model."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from imn.faithfulness import parameter_randomization, parameterised_layers
from imn.faithfulness.randomization import randomization_attributions, rank_correlation


class Tiny(nnx.Module):
    """Layers deliberately defined in non-alphabetical order: first, norm, blocks/0, head."""

    def __init__(self, rngs: nnx.Rngs):
        self.first = nnx.Linear(12, 8, rngs=rngs)
        self.norm = nnx.BatchNorm(8, rngs=rngs)
        self.blocks = nnx.List([nnx.Linear(8, 8, rngs=rngs)])
        self.head = nnx.Linear(8, 2, rngs=rngs)

    def __call__(self, x):  # (B, L, 12) -> (B, 2)
        h = self.norm(jnp.tanh(self.first(x)))
        return self.head(jnp.tanh(self.blocks[0](h))).mean(axis=1)


def gradient(model, x, target):
    def score(x):
        return jnp.sum(jnp.take_along_axis(model(x), target[:, None], axis=1))

    return jax.grad(score)(x)


@pytest.fixture(scope="module")
def setup():
    model = Tiny(nnx.Rngs(0))
    model.eval()
    x = jnp.asarray(np.random.default_rng(0).normal(size=(3, 40, 12)), jnp.float32)
    return model, x, jnp.array([0, 1, 0])


def test_layers_in_definition_order(setup):
    model, _, _ = setup
    names = [name for name, _ in parameterised_layers(model)]
    assert names == ["first", "norm", "blocks/0", "head"]


def test_cascade_top_down_and_correlation_drops(setup):
    model, x, target = setup
    before = jax.tree.map(np.asarray, nnx.state(model))
    result = parameter_randomization(model, gradient, x, target, seed=1)
    assert list(result) == ["original", "head", "blocks/0", "norm", "first"]
    np.testing.assert_allclose(np.asarray(result["original"]), 1.0, atol=1e-6)
    assert all(v.shape == (3,) for v in result.values())
    # The gradient map changes as soon as the head is re-drawn, and ends far from 1.
    assert np.all(np.asarray(result["head"]) < 0.99)
    assert np.mean(np.asarray(result["first"])) < 0.5
    # The caller's model is untouched.
    after = jax.tree.map(np.asarray, nnx.state(model))
    jax.tree.map(np.testing.assert_array_equal, before, after)


def test_cascade_is_cumulative_and_reproducible(setup):
    model, x, target = setup
    first = randomization_attributions(model, gradient, x, target, seed=4)
    again = randomization_attributions(model, gradient, x, target, seed=4)
    for name in first:
        np.testing.assert_array_equal(np.asarray(first[name]), np.asarray(again[name]))
    # Cumulative: stage "blocks/0" has head and blocks/0 from the fresh model and the rest
    # trained; the last stage has every Param fresh (batch statistics stay trained).
    fresh = Tiny(nnx.Rngs(7))
    staged = randomization_attributions(model, gradient, x, target, random_model=fresh)
    expected = nnx.clone(model)
    for name in ("head", "blocks"):
        nnx.update(getattr(expected, name), nnx.state(getattr(fresh, name), nnx.Param))
    np.testing.assert_allclose(np.asarray(staged["blocks/0"]),
                               np.asarray(gradient(expected, x, target)), rtol=1e-6)
    nnx.update(expected, nnx.state(fresh, nnx.Param))
    np.testing.assert_allclose(np.asarray(staged["first"]),
                               np.asarray(gradient(expected, x, target)), rtol=1e-6)
    assert not np.allclose(np.asarray(staged["head"]), np.asarray(staged["blocks/0"]))


def test_random_model_supplies_the_new_parameters(setup):
    model, x, target = setup
    # A "fresh" model that is a copy of the trained one: nothing changes at any stage.
    copy = nnx.clone(model)
    result = parameter_randomization(model, gradient, x, target, random_model=copy,
                                     absolute=False)
    for value in result.values():
        np.testing.assert_allclose(np.asarray(value), 1.0, atol=1e-6)
    # A genuinely fresh initialisation decorrelates.
    fresh = Tiny(nnx.Rngs(123))
    fresh.eval()
    drawn = parameter_randomization(model, gradient, x, target, random_model=fresh)
    assert np.mean(np.asarray(drawn["first"])) < 0.5


def test_random_model_must_match(setup):
    model, x, target = setup

    class Other(nnx.Module):
        def __init__(self, rngs):
            self.first = nnx.Linear(12, 4, rngs=rngs)

    with pytest.raises(ValueError, match="random_model"):
        randomization_attributions(model, gradient, x, target, random_model=Other(nnx.Rngs(0)))


def test_imn_layer_order():
    from imn.models.imn import ECGIMN

    model = ECGIMN(1, widths=(2, 4, 8), rngs=nnx.Rngs(params=0, dropout=1))
    layers = parameterised_layers(model)
    names = [name for name, _ in layers]
    assert names[:2] == ["encoder/blocks/0/conv", "encoder/blocks/0/norm"]
    assert names[-3:] == ["decoder/block2/norm", "decoder/out", "bias_head"]
    assert sum(len(paths) for _, paths in layers) == 19


def test_rank_correlation_of_identical_maps_is_one():
    a = jnp.asarray(np.random.default_rng(0).normal(size=(2, 30, 12)), jnp.float32)
    np.testing.assert_allclose(np.asarray(rank_correlation(a, a)), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.asarray(rank_correlation(a, -a, absolute=False)), -1.0,
                               atol=1e-6)


def test_randomized_copy_is_the_end_of_the_cascade(setup):
    from imn.faithfulness import randomized_copy

    model, x, target = setup
    cascade = randomization_attributions(model, gradient, x, target, seed=3)
    copy = randomized_copy(model, seed=3)
    np.testing.assert_allclose(np.asarray(gradient(copy, x, target)), np.asarray(cascade["first"]),
                               rtol=1e-5, atol=1e-6)
    # The trained model itself is untouched.
    np.testing.assert_array_equal(np.asarray(gradient(model, x, target)), np.asarray(cascade["original"]))
