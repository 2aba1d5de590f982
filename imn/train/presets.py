"""Preset sizes shared by the experiment files in ``configs/``.

- ``tiny``: seconds; tests and smoke runs (a few steps on a few hundred synthetic records).
- ``quick``: minutes on a laptop CPU.
- ``cpu``: the full recipe at 100 Hz on whatever data is present (hours on a 2-core CPU).
- ``paper`` / ``paper500``: the paper's recipe at 100 / 500 Hz, meant for a GPU.
"""

from __future__ import annotations

import dataclasses

from imn.train.config import DataConfig, ModelConfig, OptimConfig, TrainConfig

PRESETS = ("tiny", "quick", "cpu", "paper", "paper500")


def check_preset(preset: str) -> None:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {PRESETS}")


def imn_paper_recipe(preset: str, model: str = "imn", task: str = "norm_vs_mi") -> TrainConfig:
    """The IMN paper's recipe: per-record z-score, whole 10 s records, AdamW 1e-3 / 1e-4,
    batch 64, x0.1 every 10 epochs, up to 100 epochs, early stopping (patience 10)."""
    check_preset(preset)
    config = TrainConfig(
        data=DataConfig(task=task, normalization="zscore"),
        model=ModelConfig(name=model),
        optim=OptimConfig(learning_rate=1e-3, weight_decay=1e-4, schedule="step", step_epochs=10),
        batch_size=64, epochs=100, patience=10,
    )
    return resize(config, preset)


def benchmark_recipe(preset: str, model: str = "inception1d", task: str = "superdiagnostic") -> TrainConfig:
    """The PTB-XL benchmark's recipe (Strodthoff et al. 2021): train-set standard scaler,
    random 2.5 s crops, 2.5 s windows with 1.25 s stride and max-aggregation at test,
    AdamW with a one-cycle schedule (lr 1e-2, weight decay 1e-2), batch 128, 50 epochs."""
    check_preset(preset)
    config = TrainConfig(
        data=DataConfig(task=task, normalization="standard", crop_seconds=2.5,
                        eval_window_seconds=2.5, eval_stride_seconds=1.25, eval_aggregation="max"),
        model=ModelConfig(name=model),
        optim=OptimConfig(learning_rate=1e-2, weight_decay=1e-2, schedule="onecycle"),
        batch_size=128, epochs=50, patience=None,
    )
    return resize(config, preset)


def tabular_recipe(preset: str, model: str = "xgboost", task: str = "norm_vs_mi") -> TrainConfig:
    """The clinical-feature route (``baselines.tabular``): raw mV signals (features carry
    units), one fit, no training loop; the preset sizes only the data."""
    check_preset(preset)
    config = TrainConfig(data=DataConfig(task=task, normalization="none"),
                         model=ModelConfig(name=model), epochs=1, patience=None)
    return dataclasses.replace(resize(config, preset), epochs=1, patience=None)


def resize(config: TrainConfig, preset: str) -> TrainConfig:
    """Shrink a full recipe to a preset's budget, keeping every choice that is not about size."""
    if preset == "tiny":
        return dataclasses.replace(
            config,
            data=dataclasses.replace(config.data, synthetic_n=160, max_records=48),
            batch_size=8, eval_batch_size=16, epochs=2, patience=None, max_steps_per_epoch=3,
            log_every_steps=1, bootstrap_samples=50,
        )
    if preset == "quick":
        return dataclasses.replace(
            config,
            data=dataclasses.replace(config.data, synthetic_n=1500),
            batch_size=min(config.batch_size, 32), epochs=8,
            patience=None if config.patience is None else 4, log_every_steps=10,
            bootstrap_samples=200,
        )
    if preset == "cpu":
        return dataclasses.replace(config, data=dataclasses.replace(config.data, synthetic_n=4000))
    if preset == "paper500":
        return dataclasses.replace(config, data=dataclasses.replace(config.data, sampling_rate=500))
    return config
