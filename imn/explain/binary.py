"""A one-output (sigmoid) binary model seen as a two-class softmax model, so that either side
of its decision can be explained.

A binary task's model has one logit ``z`` and reports ``p = sigmoid(z)``. Explaining ``z`` for
every ECG explains "evidence for class 1" even where the model says class 0, and there the
faithfulness curves track a probability already near 0 that no deletion can lower. The
fair target is the side the model predicts. :func:`two_class_view` wraps the model so that
its logits are ``(0, z)`` under a softmax head: then ``softmax(0, z) = (1 - p, p)`` exactly,
and the decision logit of :mod:`imn.explain.model_fns` is ``z`` for target 1 and ``-z`` for
target 0, so every explainer and metric handles both sides unchanged:

* ``imn``: the contrast of the per-class maps, ``(W_1 - W_0) * x`` with ``W_0 = 0``, i.e.
  ``W * x`` for target 1 and ``-W * x`` for target 0 (still an exact decomposition);
* Grad-CAM: the gradients of ``-z`` for target 0 (not the negated class-1 map: the ReLU
  keeps the regions that argue *for* class 0);
* the curves: the probability of the predicted side, ``1 - p`` for target 0.

The wrapper has no parameters of its own; it holds the model as a submodule, so evaluation
views, parameter randomisation and splitting reach the model's own layers.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx


def _with_zero_class(values: jax.Array, axis: int = -1) -> jax.Array:
    """Prepend an all-zero class-0 slice along ``axis`` to a one-class array."""
    return jnp.concatenate([jnp.zeros_like(values), values], axis=axis)


class TwoClassView(nnx.Module):
    """``x (B, L, 12) -> logits (B, 2) = (0, z(x))`` under a softmax head."""

    def __init__(self, model: nnx.Module):
        # The caller knows the output count (the task's classes); the head is checked here.
        if getattr(model, "head_type", "sigmoid") != "sigmoid":
            raise ValueError(f"two_class_view wraps a one-output sigmoid model; "
                             f"{type(model).__name__} has a {model.head_type!r} head")
        self.model = model
        # Where the wrapped model's feature steps sit (Grad-CAM's upsampling), if it says.
        self.time_ops = getattr(model, "time_ops", None)
        self.head_type = "softmax"
        self.num_classes = 2

    def __call__(self, x: jax.Array) -> jax.Array:
        return _with_zero_class(self.model(x))


class _TwoClassLinearModel(TwoClassView):
    """An IMN's view: class 0's linear model is ``W_0 = 0``, ``b_0 = 0``."""

    def generate(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(weights (B, 2, L, 12), bias (B, 2))``."""
        weights, bias = self.model.generate(x)
        return _with_zero_class(weights, axis=1), _with_zero_class(bias)


class _TwoClassFeatureModel(TwoClassView):
    """A baseline's view, with the ``features`` / ``head`` split that Grad-CAM needs."""

    def features(self, x: jax.Array) -> jax.Array:
        return self.model.features(x)

    def head(self, features: jax.Array) -> jax.Array:
        return _with_zero_class(self.model.head(features))


class _TwoClassAttentionModel(_TwoClassFeatureModel):
    """xECGNet's view: its attention map is the same for every class, so it passes through."""

    def attention_map(self, x: jax.Array) -> jax.Array:
        return self.model.attention_map(x)


def two_class_view(model: Any) -> TwoClassView:
    """The two-class view of a one-output sigmoid model (see the module docstring)."""
    if callable(getattr(model, "generate", None)):
        return _TwoClassLinearModel(model)
    if callable(getattr(model, "features", None)) and callable(getattr(model, "head", None)):
        if callable(getattr(model, "attention_map", None)):
            return _TwoClassAttentionModel(model)
        return _TwoClassFeatureModel(model)
    return TwoClassView(model)
