"""Mixed precision (compute_dtype='bfloat16') against float32 from one seed."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from imn.bench.train import build_step_harness
from imn.models import create_model
from imn.train.steps import forward

LENGTH, BATCH, STEPS = 200, 8, 6


def _learnable_batch():
    """ECGs whose label is the sign of lead II's mean: a task the first steps make progress on."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, LENGTH, 12)).astype(np.float32)
    y = (x[:, :, 1].mean(axis=1, keepdims=True) > 0).astype(np.float32)
    x[:, :, 1] += np.where(y > 0, 0.5, -0.5)
    return x, y


def _train(model_name: str, compute_dtype: str):
    x, y = _learnable_batch()
    harness = build_step_harness(model_name, x, y, sampling_rate=100, compute_dtype=compute_dtype)
    initial = jax.tree.map(np.asarray, harness.state.params)
    losses = [float(harness.train_once()["loss"]) for _ in range(STEPS)]
    return initial, jax.tree.map(np.asarray, harness.state.params), losses


def _flat(tree) -> np.ndarray:
    return np.concatenate([np.ravel(leaf) for leaf in jax.tree.leaves(tree)])


@pytest.mark.slow
@pytest.mark.parametrize("model_name", ["imn", "cnn2d"])
def test_bfloat16_training_tracks_float32(model_name):
    initial, params32, losses32 = _train(model_name, "float32")
    initial_bf, params16, losses16 = _train(model_name, "bfloat16")
    np.testing.assert_array_equal(_flat(initial), _flat(initial_bf))  # one seed, one start
    # Parameters and optimiser state are float32 in both runs.
    assert all(leaf.dtype == np.float32 for leaf in jax.tree.leaves(params16))
    # The losses follow each other step by step (bfloat16 keeps about 3 significant digits).
    np.testing.assert_allclose(losses16, losses32, rtol=0.05, atol=0.05)
    # Both runs move the parameters the same way: their difference is small against the
    # distance either travelled from the shared start. (Not tiny: Adam scales every update
    # to about the learning rate, so a gradient entry near zero whose sign bfloat16 flips
    # moves its parameter the other way by the full step.)
    moved = np.linalg.norm(_flat(params32) - _flat(initial))
    gap = np.linalg.norm(_flat(params16) - _flat(params32))
    assert moved > 0
    assert gap < 0.25 * moved, (gap, moved)


def test_bfloat16_imn_read_out_is_exact_for_the_returned_weights():
    """With bfloat16 convolutions, ``sum(W * x) + b`` still equals the logit in float32."""
    model = create_model("imn", num_classes=3, sampling_rate=100, input_length=LENGTH)
    model.eval()
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    bf16 = jax.tree.map(lambda a: a.astype(jnp.bfloat16), params)
    model16 = nnx.merge(graphdef, bf16, rest)
    x = jnp.asarray(_learnable_batch()[0])
    output = model16.forward(x)
    assert output.weights.dtype == jnp.bfloat16  # the convolutions ran in bfloat16
    assert output.logits.dtype == jnp.float32
    recomposed = jnp.sum(output.weights.astype(jnp.float32) * x[:, None], axis=(2, 3)) + output.bias
    np.testing.assert_allclose(recomposed, output.logits, rtol=1e-5, atol=1e-4)
    # The training step's forward gives the model the float32 ECG for this read-out.
    logits, _ = forward(model16, x.astype(jnp.float32), jnp.bfloat16)
    np.testing.assert_allclose(logits, output.logits, rtol=1e-6)
