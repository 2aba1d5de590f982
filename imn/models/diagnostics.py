"""How a freshly initialised model behaves: its initial logits over many seeds.

A saturated start (|logit| in the hundreds, every probability rounded to 0 or 1) is what
keeps the faithful ECG-IMN from training in small budgets; these functions measure it the
way the trainability study and the initialisation tests need: in training mode (batch
statistics, dropout on), as the first optimiser step sees the model.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from imn.models.registry import construct


def initial_logits(name: str, signals: np.ndarray, seeds: range | list[int], *,
                   num_classes: int = 1, **overrides: Any) -> np.ndarray:
    """Logits of model ``name`` freshly built from each seed, in training mode.

    One ``jax.jit`` program takes the seed as an argument, so many seeds cost one compile.
    Args:
      signals: ``(N, L, 12)`` normalised ECGs (one batch: BatchNorm uses its statistics).
      seeds: initialisation seeds (the dropout stream is seeded alike).
      num_classes / overrides: as for :func:`imn.models.registry.create_model`.
    Returns:
      ``(len(seeds), N, K)`` float32 logits.
    """
    signals = np.asarray(signals, np.float32)
    if signals.ndim != 3:
        raise ValueError(f"expected signals of shape (N, L, leads), got {signals.shape}")
    length = signals.shape[1]

    @jax.jit
    def logits_for(seed: jax.Array, x: jax.Array) -> jax.Array:
        key = jax.random.key(seed)
        model = construct(name, num_classes, nnx.Rngs(key), length, **overrides)
        model.train()
        return model(x).astype(jnp.float32)

    x = jnp.asarray(signals)
    return np.stack([np.asarray(logits_for(jnp.asarray(seed, jnp.uint32), x)) for seed in seeds])


def median_abs(logits: np.ndarray) -> float:
    """Median |logit| over every seed, record and class."""
    return float(np.median(np.abs(np.asarray(logits))))
