"""Optimiser and learning-rate schedules (paper: AdamW, x0.1 every 10 epochs)."""

from __future__ import annotations

import optax

from imn.train.config import OptimConfig

SCHEDULES = ("step", "cosine", "onecycle", "constant")


def make_schedule(config: OptimConfig, steps_per_epoch: int, epochs: int) -> optax.Schedule:
    """Learning rate as a function of the optimiser step."""
    total = max(1, steps_per_epoch * epochs)
    warmup = int(config.warmup_epochs * steps_per_epoch)
    lr = config.learning_rate
    if config.schedule == "step":
        main = optax.exponential_decay(
            lr, transition_steps=max(1, config.step_epochs * steps_per_epoch),
            decay_rate=config.step_factor, staircase=True,
        )
    elif config.schedule == "cosine":
        main = optax.cosine_decay_schedule(lr, decay_steps=max(1, total - warmup))
    elif config.schedule == "onecycle":
        # One-cycle brings its own warm-up (30% of training by default).
        return optax.cosine_onecycle_schedule(total, lr)
    elif config.schedule == "constant":
        main = optax.constant_schedule(lr)
    else:
        raise ValueError(f"unknown schedule {config.schedule!r}; expected one of {SCHEDULES}")
    if warmup <= 0:
        return main
    return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), main], [warmup])


def make_optimizer(config: OptimConfig, steps_per_epoch: int, epochs: int) -> optax.GradientTransformation:
    schedule = make_schedule(config, steps_per_epoch, epochs)
    if config.optimizer == "adamw":
        tx = optax.adamw(schedule, weight_decay=config.weight_decay)
    elif config.optimizer == "adam":
        tx = optax.adam(schedule)
    elif config.optimizer == "sgd":
        tx = optax.sgd(schedule, momentum=0.9, nesterov=True)
    else:
        raise ValueError(f"unknown optimizer {config.optimizer!r}; expected adamw, adam or sgd")
    if config.grad_clip_norm:
        tx = optax.chain(optax.clip_by_global_norm(config.grad_clip_norm), tx)
    return tx
