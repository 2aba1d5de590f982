"""Pure, jitted training and evaluation steps.

The model is split once into a static ``GraphDef`` and array states; a step merges them back
inside ``jit``. The training state is a plain pytree (so Orbax saves it and ``jax.sharding``
places it) and every step is a pure function ``(state, batch) -> (state, metrics)``: no I/O,
the state buffers donated, dropout keys folded from the step count so that a resumed run
draws the same masks as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from imn.train import losses


class TrainState(NamedTuple):
    """Everything that changes during training; a pytree of arrays."""

    step: jax.Array  # scalar int32
    params: Any  # nnx.State of nnx.Param
    batch_stats: Any  # nnx.State of nnx.BatchStat
    opt_state: Any


@dataclasses.dataclass(frozen=True)
class LossSpec:
    """How the task loss is computed; the class weights come from the training split."""

    head: str  # 'sigmoid' or 'softmax'
    class_weight: np.ndarray  # (K,) BCE pos_weight, or (2,) CE class weights
    weight_l1: float  # lambda for mean|W| (IMN only; 0 disables)
    # Optional extra training terms (e.g. xECGNet's attention branch, imn.train.attention):
    # ``auxiliary(model, x, batch, task_loss) -> (logits, extra_loss)`` replaces the plain
    # forward pass in the training step; evaluation is unchanged.
    auxiliary: Callable[..., tuple[jax.Array, jax.Array]] | None = None


def forward(model: nnx.Module, x: jax.Array, compute_dtype: jnp.dtype = jnp.float32,
            ) -> tuple[jax.Array, jax.Array]:
    """Logits ``(B, K)`` and the mean |W| penalty (0 for models that generate no weights).

    IMN-style models (with ``forward -> (logits, weights, bias)``) form the logits from the
    generated linear model, ``sum(W * x) + b``, the same read-out the explanation uses. They
    get the ECG in float32 whatever ``compute_dtype``: their convolutions follow the
    (cast) parameters' dtype, and the read-out ``W * x`` stays float32 with the exact ``x``.
    Other models get ``x`` in ``compute_dtype``.
    """
    if hasattr(model, "forward"):
        output = model.forward(x.astype(jnp.float32))
        return output.logits, jnp.mean(jnp.abs(output.weights.astype(jnp.float32)))
    return model(x.astype(compute_dtype)), jnp.zeros((), jnp.float32)


def _cast_floating(tree: Any, dtype: jnp.dtype) -> Any:
    return jax.tree.map(lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a, tree)


@dataclasses.dataclass(frozen=True)
class StepFunctions:
    """The jitted steps for one model and loss; built once per run by :func:`make_steps`."""

    train_step: Callable[[TrainState, dict], tuple[TrainState, dict]]
    eval_step: Callable[[TrainState, dict], jax.Array]
    init_state: Callable[[], TrainState]
    graphdef_eval: Any
    rest: Any


def make_steps(
    model: nnx.Module,
    tx: optax.GradientTransformation,
    loss_spec: LossSpec,
    *,
    seed: int,
    compute_dtype: str = "float32",
    state_sharding: Any = None,
) -> StepFunctions:
    """Build ``train_step``, ``eval_step`` and the initial state for ``model``.

    Args:
      model: an NNX model (its current parameters become the initial state).
      tx: the optax optimiser.
      loss_spec: head type, class weights, IMN's L1 weight.
      seed: dropout keys are ``fold_in(key(seed), step)``.
      compute_dtype: 'float32' or 'bfloat16'. Mixed precision: parameters and optimiser
        state stay float32 and are cast to ``compute_dtype`` for the forward and backward
        pass (convolutions, norms, activations); logits, IMN's ``W * x`` read-out, the loss,
        the gradients' accumulation into the update and the BatchNorm statistics stay float32.
      state_sharding: optional sharding for the state (replicated over the mesh).
    """
    model.train()
    graphdef_train, params, batch_stats, rest = nnx.split(model, nnx.Param, nnx.BatchStat, ...)
    model.eval()
    graphdef_eval, _, _, _ = nnx.split(model, nnx.Param, nnx.BatchStat, ...)
    dtype = jnp.dtype(compute_dtype)
    class_weight = jnp.asarray(loss_spec.class_weight, jnp.float32)
    dropout_key = jax.random.key(seed)

    def task_loss(logits: jax.Array, labels: jax.Array, mask: jax.Array) -> jax.Array:
        logits = logits.astype(jnp.float32)
        if loss_spec.head == "softmax":
            return losses.weighted_cross_entropy(logits, labels, class_weight, mask)
        return losses.weighted_bce(logits, labels, class_weight, mask)

    def train_step(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
        def loss_fn(params):
            # Fresh Variables for the running statistics, created inside this trace: BatchNorm
            # updates them in place, and NNX refuses to mutate Variables of an outer trace.
            batch_stats, rng_state = jax.tree.map(lambda a: a, (state.batch_stats, rest))
            model = nnx.merge(graphdef_train, _cast_floating(params, dtype), batch_stats, rng_state)
            # Models may draw dropout from a 'dropout' stream or the 'default' one.
            step_key = jax.random.fold_in(dropout_key, state.step)
            nnx.reseed(model, dropout=step_key, default=step_key)
            if loss_spec.auxiliary is None:
                logits, weight_penalty = forward(model, batch["x"], dtype)
                extra = jnp.zeros((), jnp.float32)
            else:
                logits, extra = loss_spec.auxiliary(model, batch["x"].astype(dtype), batch, task_loss)
                weight_penalty = jnp.zeros((), jnp.float32)
            loss = task_loss(logits, batch["y"], batch["mask"])
            total = loss + loss_spec.weight_l1 * weight_penalty + extra
            new_stats = _cast_floating(nnx.state(model, nnx.BatchStat), jnp.float32)
            return total, (loss, weight_penalty, new_stats, extra)

        (total, (loss, penalty, new_stats, extra)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        grads = _cast_floating(grads, jnp.float32)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        new_state = TrainState(state.step + 1, params, new_stats, opt_state)
        metrics = {
            "loss": total,
            "task_loss": loss,
            "weight_l1": penalty,
            "auxiliary_loss": extra,
            "grad_norm": optax.tree.norm(grads),
        }
        return new_state, metrics

    def eval_step(state: TrainState, batch: dict) -> jax.Array:
        """Scores in the label layout, ``(B, K)``, or ``(B, W, K)`` for windowed input."""
        model = nnx.merge(graphdef_eval, _cast_floating(state.params, dtype), state.batch_stats, rest)
        x = batch["x"]
        windowed = x.ndim == 4
        if windowed:
            batch_size, windows = x.shape[:2]
            x = x.reshape((batch_size * windows,) + x.shape[2:])
        logits, _ = forward(model, x, dtype)
        scores = losses.scores_from_logits(logits.astype(jnp.float32), loss_spec.head)
        if windowed:
            scores = scores.reshape(batch_size, windows, -1)
        return scores

    def init_state() -> TrainState:
        # Copies: the train step donates its input state, which must not delete the
        # initial arrays held here (they serve as restore targets later).
        fresh_params, fresh_stats = jax.tree.map(jnp.copy, (params, batch_stats))
        state = TrainState(jnp.zeros((), jnp.int32), fresh_params, fresh_stats, tx.init(fresh_params))
        if state_sharding is not None:
            state = jax.device_put(state, state_sharding)
        return state

    jit_kwargs = {}
    if state_sharding is not None:
        jit_kwargs = {"out_shardings": (state_sharding, None)}
    return StepFunctions(
        train_step=jax.jit(train_step, donate_argnums=0, **jit_kwargs),
        eval_step=jax.jit(eval_step),
        init_state=init_state,
        graphdef_eval=graphdef_eval,
        rest=rest,
    )


def merge_eval_model(steps: StepFunctions, state: TrainState) -> nnx.Module:
    """An NNX model in eval mode carrying ``state``'s parameters (for explanation code)."""
    return nnx.merge(steps.graphdef_eval, state.params, state.batch_stats, steps.rest)
