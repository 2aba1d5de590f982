import jax.numpy as jnp
import numpy as np
import pytest

from imn.train import losses


def test_weighted_bce_matches_the_textbook_formula():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 3)).astype(np.float32) * 3
    labels = (rng.random((6, 3)) > 0.5).astype(np.float32)
    pos_weight = np.array([1.0, 2.5, 0.3], np.float32)
    mask = np.array([1, 1, 1, 1, 0, 1], np.float32)
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    per = -(pos_weight * labels * np.log(p) + (1 - labels) * np.log(1 - p))
    expected = per[mask > 0].mean()
    got = losses.weighted_bce(jnp.asarray(logits), jnp.asarray(labels), jnp.asarray(pos_weight), jnp.asarray(mask))
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_weighted_cross_entropy_matches_a_weighted_average_of_nll():
    logits = np.array([[2.0, -1.0], [0.5, 0.5], [-3.0, 1.0]], np.float32)
    labels = np.array([[0], [1], [1]], np.float32)
    weights = np.array([0.75, 1.5], np.float32)
    mask = np.ones(3, np.float32)
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    nll = -log_softmax[np.arange(3), labels[:, 0].astype(int)]
    w = weights[labels[:, 0].astype(int)]
    expected = (nll * w).sum() / w.sum()
    got = losses.weighted_cross_entropy(jnp.asarray(logits), jnp.asarray(labels), jnp.asarray(weights), jnp.asarray(mask))
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_class_weights_from_training_labels():
    labels = np.array([[1, 0], [0, 0], [0, 0], [1, 0]], np.float32)
    np.testing.assert_allclose(losses.positive_weights(labels), [1.0, 1.0])
    labels = np.array([[1], [0], [0], [0]], np.float32)
    np.testing.assert_allclose(losses.positive_weights(labels), [3.0])
    np.testing.assert_allclose(losses.balanced_class_weights(labels), [4 / 6, 4 / 2])
