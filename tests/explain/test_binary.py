"""The two-class view of a one-output model: both sides of a binary decision are explained
exactly, with the same explainers and metrics."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from imn.explain import attribute
from imn.explain.api import imn_decomposition
from imn.explain.binary import TwoClassView, two_class_view
from imn.explain.model_fns import logit_fn, predict_fn
from imn.models import create_model


@pytest.fixture(scope="module")
def x():
    return np.asarray(jax.random.normal(jax.random.key(3), (3, 200, 12)))


@pytest.fixture(scope="module")
def imn():
    return create_model("imn", num_classes=1, sampling_rate=100, input_length=200, seed=1)


def test_view_reports_both_probabilities_of_the_same_model(imn, x):
    view = two_class_view(imn)
    assert view.head_type == "softmax"
    p = np.asarray(predict_fn(imn)(x))[:, 0]
    both = np.asarray(predict_fn(view)(x))
    np.testing.assert_allclose(both, np.stack([1 - p, p], axis=1), atol=1e-6)
    np.testing.assert_allclose(np.asarray(logit_fn(view)(x))[:, 0], 0.0)


def test_imn_map_of_either_side_is_an_exact_decomposition(imn, x):
    view = two_class_view(imn)
    z = np.asarray(logit_fn(imn)(x))[:, 0]
    positive = np.asarray(attribute("imn", imn, x, 0))
    for target, sign in ((1, 1.0), (0, -1.0)):
        attribution, bias = imn_decomposition(view, x, np.full(len(x), target))
        np.testing.assert_allclose(np.asarray(attribution), sign * positive, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(np.asarray(attribution).sum(axis=(1, 2)) + np.asarray(bias),
                                   sign * z, rtol=1e-4, atol=1e-3)


def test_gradients_of_side_zero_are_the_negated_gradients(imn, x):
    view = two_class_view(imn)
    np.testing.assert_allclose(np.asarray(attribute("saliency", view, x, 0)),
                               -np.asarray(attribute("saliency", imn, x, 0)), rtol=1e-5, atol=1e-7)


def test_gradcam_of_side_zero_keeps_the_evidence_for_class_zero(x):
    model = create_model("cnn2d", num_classes=1, sampling_rate=100, input_length=200, seed=2)
    view = two_class_view(model)
    side_one = np.asarray(attribute("gradcam", view, x, 1))
    np.testing.assert_allclose(side_one, np.asarray(attribute("gradcam", model, x, 0)), atol=1e-6)
    side_zero = np.asarray(attribute("gradcam", view, x, 0))
    assert (side_zero >= 0).all()
    # The ReLU keeps opposite halves of the same weighted feature map: not a sign flip but
    # (up to the interpolation between feature cells) maps with disjoint support.
    overlap, union = np.minimum(side_zero, side_one).sum(), np.maximum(side_zero, side_one).sum()
    assert union > 0 and overlap < 0.05 * union


def test_view_refuses_a_softmax_model():
    model = create_model("imn_softmax", num_classes=2, sampling_rate=100, input_length=200)
    with pytest.raises(ValueError, match="one-output sigmoid"):
        TwoClassView(model)
