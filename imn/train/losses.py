"""Task losses: BCE with a positive-class weight, class-weighted cross-entropy, IMN's L1 term.

All losses take a ``mask`` (B,) so padded evaluation rows never count.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def positive_weights(labels: np.ndarray) -> np.ndarray:
    """``n_neg / n_pos`` per class from training labels ``(N, K)``; 1 for a class with no positive."""
    labels = np.asarray(labels, np.float64)
    positives = labels.sum(axis=0)
    negatives = len(labels) - positives
    return np.where(positives > 0, negatives / np.maximum(positives, 1), 1.0).astype(np.float32)


def balanced_class_weights(labels: np.ndarray) -> np.ndarray:
    """Weights ``N / (2 n_c)`` for the two classes of a binary task given ``(N, 1)`` labels."""
    positives = float(np.asarray(labels).sum())
    counts = np.array([len(labels) - positives, positives])
    return (len(labels) / (2.0 * np.maximum(counts, 1.0))).astype(np.float32)


def _masked_mean(values: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean of ``values`` (B, ...) over the real rows of a batch."""
    per_row = values.reshape(values.shape[0], -1).mean(axis=1)
    return jnp.sum(per_row * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def weighted_bce(logits: jax.Array, labels: jax.Array, pos_weight: jax.Array, mask: jax.Array) -> jax.Array:
    """Binary cross-entropy with logits, positive terms scaled by ``pos_weight`` (K,).

    Shapes: logits, labels ``(B, K)``; mask ``(B,)``. Written with log-sigmoid for stability
    at large |logit|.
    """
    log_p = jax.nn.log_sigmoid(logits)
    log_not_p = jax.nn.log_sigmoid(-logits)
    per_element = -(pos_weight * labels * log_p + (1.0 - labels) * log_not_p)
    return _masked_mean(per_element, mask)


def weighted_cross_entropy(
    logits: jax.Array, labels: jax.Array, class_weight: jax.Array, mask: jax.Array
) -> jax.Array:
    """Class-weighted softmax cross-entropy for a two-logit head on a binary task.

    Shapes: logits ``(B, 2)``, labels ``(B, 1)`` with 1 for the positive class,
    class_weight ``(2,)``, mask ``(B,)``. Normalised by the summed weights of the real rows,
    as PyTorch's weighted ``CrossEntropyLoss`` does.
    """
    target = labels[:, 0].astype(jnp.int32)
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    nll = -jnp.take_along_axis(log_probs, target[:, None], axis=-1)[:, 0]
    weight = class_weight[target] * mask
    return jnp.sum(nll * weight) / jnp.maximum(jnp.sum(weight), 1e-12)


def scores_from_logits(logits: jax.Array, head: str) -> jax.Array:
    """Per-class probabilities in the label layout: sigmoid ``(B, K)``, or p(class 1) ``(B, 1)``."""
    if head == "softmax":
        return jax.nn.softmax(logits, axis=-1)[:, 1:2]
    return jax.nn.sigmoid(logits)
