"""Turn a Flax NNX model into pure functions that can be jitted, vmapped and differentiated.

Every explainer and faithfulness metric works on plain functions of arrays, never on a
stateful module. This module makes those functions from any registered model:

* :func:`logit_fn` ``(model) -> f(x (B, L, 12)) -> logits (B, K)``
* :func:`predict_fn` ``(model) -> f(x) -> probabilities (B, K)``: sigmoid of each logit for
  ``head_type == "sigmoid"`` (independent labels), softmax over the K logits for
  ``head_type == "softmax"``. Models without a ``head_type`` attribute (the black-box
  baselines) are sigmoid models.
* :func:`decision_logit_fn` ``(model) -> f(x) -> (B, K)``: the K scalars that explainers
  explain (convention below).
* :func:`target_logit_fn` ``(model) -> f(x, target (B,) int) -> (B,)``: the explained scalar
  of each ECG's target class.

Each function closes over the model's split ``(graphdef, state)`` (a snapshot of the
parameters when the function was made), so it is pure: the model object is not read again
when it runs, and later training of the model does not change it; make a new function to
see new parameters.

**Inference mode.** The functions always run the model in evaluation mode (dropout off,
BatchNorm on its running statistics) whatever mode the caller's model is in; the caller's
model is not modified (an evaluation *view* of it is split). Evaluation mode also makes each
sample's output depend on that sample only, which the batched gradients rely on.

**What is explained for a target class** (the "decision logit"):

* sigmoid heads: the target's logit ``z_t`` (the log-odds of that label).
* softmax heads: a softmax is unchanged when a constant is added to every logit, so a single
  softmax logit is not identified and explaining it alone is meaningless. The explained scalar
  is the contrast ``z_t - mean_{k != t} z_k``; for the paper's K = 2 variant this is the
  decision logit ``z_1 - z_0`` for target 1 and ``z_0 - z_1`` for target 0 (the log-odds
  ``log p_t / (1 - p_t)``). For K > 2 it is a linear contrast, not the log-odds.

Both cases are a linear map of the logits, ``s_t = sum_k c[t, k] z_k`` with the contrast
vector of :func:`contrast_vectors`; an IMN's exact decomposition carries over unchanged:
``sum_k c[t, k] W_k * x`` sums (with ``sum_k c[t, k] b_k``) to ``s_t`` (see
:mod:`imn.explain.api`, method ``"imn"``).
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

HEAD_TYPES = ("sigmoid", "softmax")

Array = jax.Array


def head_type_of(model: Any) -> str:
    """The model's ``head_type`` (``"sigmoid"`` when it has none, as the baselines)."""
    head = getattr(model, "head_type", "sigmoid")
    if head not in HEAD_TYPES:
        raise ValueError(
            f"{type(model).__name__}.head_type must be one of {HEAD_TYPES}, got {head!r}"
        )
    return head


def contrast_vectors(target: Array, num_classes: int, head_type: str) -> Array:
    """Rows ``c[t]`` such that the explained scalar is ``sum_k c[t, k] * logit_k``.

    Args:
      target: ``(B,)`` integer class indices.
    Returns:
      ``(B, K)`` float32: one-hot for sigmoid heads; ``(K * onehot - 1) / (K - 1)`` for
      softmax heads (``+1`` on the target, ``-1 / (K - 1)`` elsewhere; ``[-1, 1]`` for
      target 1 when K = 2).
    """
    onehot = jax.nn.one_hot(target, num_classes, dtype=jnp.float32)
    if head_type == "sigmoid":
        return onehot
    if head_type == "softmax":
        if num_classes < 2:
            raise ValueError("a softmax head needs at least 2 classes")
        return (num_classes * onehot - 1.0) / (num_classes - 1)
    raise ValueError(f"head_type must be one of {HEAD_TYPES}, got {head_type!r}")


def decision_logits(logits: Array, head_type: str) -> Array:
    """``(B, K)`` logits -> ``(B, K)`` explained scalars, one per class (module docstring)."""
    if head_type == "sigmoid":
        return logits
    if head_type == "softmax":
        num_classes = logits.shape[-1]
        if num_classes < 2:
            raise ValueError("a softmax head needs at least 2 classes")
        # z_k - mean_{j != k} z_j = (K z_k - sum_j z_j) / (K - 1)
        total = logits.sum(axis=-1, keepdims=True)
        return (num_classes * logits - total) / (num_classes - 1)
    raise ValueError(f"head_type must be one of {HEAD_TYPES}, got {head_type!r}")


def select_target(values: Array, target: Array) -> Array:
    """``values (B, K)``, ``target (B,)`` int -> ``values[b, target[b]]`` of shape ``(B,)``."""
    return jnp.take_along_axis(values, target[:, None].astype(jnp.int32), axis=1)[:, 0]


def probabilities(logits: Array, head_type: str) -> Array:
    """Sigmoid (independent labels) or softmax over classes, by ``head_type``."""
    if head_type == "sigmoid":
        return jax.nn.sigmoid(logits)
    if head_type == "softmax":
        return jax.nn.softmax(logits, axis=-1)
    raise ValueError(f"head_type must be one of {HEAD_TYPES}, got {head_type!r}")


# ---------------------------------------------------------------------------------------
# Splitting a model in evaluation mode
# ---------------------------------------------------------------------------------------

# id(model) -> (weak reference, graphdef as split, evaluation-mode graphdef). Building an
# evaluation view walks the whole module tree (~0.1-0.3 s for xresnet1d101), so the
# evaluation graphdef is cached; it is reused only while the model's own graphdef is
# unchanged (same structure and static attributes), and the state is split afresh on every
# call so that updated parameters are always used.
_EVAL_GRAPHDEFS: OrderedDict[int, tuple[Any, Any, Any]] = OrderedDict()
_EVAL_CACHE_SIZE = 32


def split_eval(model: nnx.Module) -> tuple[nnx.GraphDef, nnx.State]:
    """``(graphdef, state)`` of ``model`` in evaluation mode, without changing ``model``.

    ``nnx.merge(graphdef, state)`` is a module with dropout off and BatchNorm on running
    statistics, holding ``model``'s current parameter arrays (a snapshot: later updates of
    ``model`` do not reach it).
    """
    if not isinstance(model, nnx.Module):
        raise TypeError(f"expected a flax.nnx.Module, got {type(model).__name__}")
    graphdef, state = nnx.split(model)
    # nnx.split's state holds the model's own Variable objects, so a later update of the
    # model would show through; rebuilding the tree gives fresh Variables around the current
    # arrays: a snapshot (no copy of the arrays themselves).
    state = jax.tree.map(lambda leaf: leaf, state)
    key = id(model)
    cached = _EVAL_GRAPHDEFS.get(key)
    if cached is not None and cached[0]() is model and cached[1] == graphdef:
        _EVAL_GRAPHDEFS.move_to_end(key)
        return cached[2], state
    view = nnx.view(
        model, deterministic=True, use_running_average=True, raise_if_not_found=False
    )
    eval_graphdef, _ = nnx.split(view)
    try:
        ref = weakref.ref(model)
    except TypeError:  # not weak-referenceable: do not cache
        return eval_graphdef, state
    _EVAL_GRAPHDEFS[key] = (ref, graphdef, eval_graphdef)
    while len(_EVAL_GRAPHDEFS) > _EVAL_CACHE_SIZE:
        _EVAL_GRAPHDEFS.popitem(last=False)
    return eval_graphdef, state


def apply_method(graphdef: nnx.GraphDef, state: nnx.State, method: str, *args: Any) -> Any:
    """Pure call ``nnx.merge(graphdef, state).<method>(*args)`` (``"__call__"`` for logits).

    The merged module is discarded: in evaluation mode no state is updated.
    """
    module = nnx.merge(graphdef, state)
    return getattr(module, method)(*args)


# ---------------------------------------------------------------------------------------
# Pure functions of a model
# ---------------------------------------------------------------------------------------


def logit_fn(model: nnx.Module) -> Callable[[Array], Array]:
    """``f(x (B, L, 12)) -> logits (B, K)`` float32, pure (closes over the split model)."""
    graphdef, state = split_eval(model)

    def logits(x: Array) -> Array:
        return apply_method(graphdef, state, "__call__", x).astype(jnp.float32)

    return logits


def predict_fn(model: nnx.Module) -> Callable[[Array], Array]:
    """``f(x (B, L, 12)) -> probabilities (B, K)``: sigmoid or softmax by ``head_type``."""
    head = head_type_of(model)
    logits = logit_fn(model)

    def predict(x: Array) -> Array:
        return probabilities(logits(x), head)

    return predict


def decision_logit_fn(model: nnx.Module) -> Callable[[Array], Array]:
    """``f(x (B, L, 12)) -> (B, K)``: for each class the scalar explained for it.

    The logits themselves for sigmoid heads; ``z_k - mean_{j != k} z_j`` for softmax heads.
    """
    head = head_type_of(model)
    logits = logit_fn(model)

    def decision(x: Array) -> Array:
        return decision_logits(logits(x), head)

    return decision


def target_logit_fn(model: nnx.Module) -> Callable[[Array, Array], Array]:
    """``f(x (B, L, 12), target (B,) int) -> (B,)``: the explained scalar of each target.

    The target logit for sigmoid heads; the decision logit ``z_t - mean_{k != t} z_k``
    (``z_1 - z_0`` for target 1 when K = 2) for softmax heads.
    """
    decision = decision_logit_fn(model)

    def target_logit(x: Array, target: Array) -> Array:
        return select_target(decision(x), target)

    return target_logit
