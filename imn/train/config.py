"""Typed experiment configuration.

An experiment file under ``configs/`` defines ``get_config(preset) -> TrainConfig``; a run is
named ``configs/NAME.py:PRESET`` and may be adjusted with ``key=value`` overrides
(``optim.learning_rate=3e-4``, ``data.task=norm_vs_mi``). The resolved config is written as
``config.json`` into every run folder and read back on resume.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import types
import typing
from pathlib import Path
from typing import Any

from imn.errors import ConfigError


@dataclasses.dataclass
class DataConfig:
    """Where records come from and how they are prepared.

    ``source``: one of :data:`imn.data.sources.KINDS` with its folder in ``root``: 'ptbxl'
    (a PhysioNet-layout folder), 'cinc', 'cpsc2018', 'mimic', 'tfds'; 'synthetic' (generated in
    memory: ``synthetic_n`` records with ``seed`` at difficulty ``synthetic_level``, one of
    ``imn.data.synthetic.LEVELS``; or a folder from ``imn data synth`` in ``root``); or 'auto' (PTB-XL if ``root`` is given or the environment variable
    ``IMN_PTBXL`` names a folder, synthetic otherwise).
    """

    source: str = "auto"
    root: str | None = None
    task: str = "superdiagnostic"
    sampling_rate: int = 100
    normalization: str = "zscore"  # 'zscore' (paper), 'standard' (benchmark) or 'none'
    crop_seconds: float | None = None  # random training crops; None trains on whole records
    eval_window_seconds: float | None = None  # sliding windows at evaluation (crop-trained)
    eval_stride_seconds: float | None = None
    eval_aggregation: str = "max"
    train_folds: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8)
    validation_folds: tuple[int, ...] = (9,)
    test_folds: tuple[int, ...] = (10,)
    # PROTOCOLS: "separate" (default: validation folds select, test folds report) or
    # "merged_9_10" (the authors' code: folds 9 + 10 merged, used both to select the
    # checkpoint and to report; optimistic, labelled as such wherever it appears).
    protocol: str = "separate"
    synthetic_n: int = 2000
    synthetic_level: str = "default"  # 'easy', 'default' or 'hard' (imn.data.synthetic.LEVELS)
    max_records: int | None = None  # cap per split, for smoke tests

    def resolved_source(self) -> tuple[str, str | None]:
        """``(kind, root)`` after applying the 'auto' rule; root is None for generated data."""
        from imn.data.sources import KINDS

        if self.source == "synthetic":
            return "synthetic", self.root
        if self.source not in ("auto", *KINDS):
            raise ConfigError(f"unknown data.source {self.source!r}; expected 'auto' or one of {KINDS}")
        if self.source == "auto":
            root = self.root or os.environ.get("IMN_PTBXL")
            return ("ptbxl", root) if root else ("synthetic", None)
        root = self.root or (os.environ.get("IMN_PTBXL") if self.source == "ptbxl" else None)
        if not root:
            hint = " or the IMN_PTBXL environment variable" if self.source == "ptbxl" else ""
            raise ConfigError(f"data.source={self.source!r} needs data.root{hint}")
        return self.source, root


@dataclasses.dataclass
class ModelConfig:
    name: str = "imn"
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class OptimConfig:
    optimizer: str = "adamw"
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    schedule: str = "step"  # 'step' (paper: x0.1 every 10 epochs), 'cosine', 'onecycle', 'constant'
    step_epochs: int = 10
    step_factor: float = 0.1
    warmup_epochs: float = 0.0
    grad_clip_norm: float | None = None
    weight_l1: float = 1e-4  # lambda for IMN's mean|W| penalty; ignored for other models
    pos_weight: bool = True  # BCE pos_weight = n_neg / n_pos from the training split


@dataclasses.dataclass
class AttentionConfig:
    """xECGNet's two training stages (read only for models with an attention branch).

    Stage 1 trains the attention branch network as ABN does: the perception branch's BCE
    plus ``branch_weight`` times the attention branch's own BCE. Stage 2 fine-tunes the
    best checkpoint of the stage-1 run in ``init_from`` with, in addition,
    ``gamma * sum_t |heatmap - attention|`` per record, the heatmap being the stage-1 model's
    class activation maps of the record's true labels, averaged over those labels (computed
    once, on the training split only; see :mod:`imn.train.attention`).
    """

    stage: int = 1
    init_from: str | None = None  # stage 2: the stage-1 run folder
    branch_weight: float = 1.0
    gamma: float = 1e-4  # the authors' value


@dataclasses.dataclass
class TrainConfig:
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
    attention: AttentionConfig = dataclasses.field(default_factory=AttentionConfig)
    batch_size: int = 64
    eval_batch_size: int = 256
    epochs: int = 100
    patience: int | None = 10  # early stopping on validation macro AUROC
    # A new best (checkpoint kept, patience reset) must beat the best validation macro AUROC
    # by more than this. 0 counts any rise; a small margin (1e-3) stops a run whose curve has
    # gone flat at a low learning rate instead of letting fourth-decimal noise reach the cap.
    min_improvement: float = 0.0
    seed: int = 0
    # 'bfloat16': mixed precision (imn.train.steps.make_steps), for GPUs/TPUs; float32 is the
    # faster one on the CPU (XLA's CPU backend runs bf16 convolutions in float32; README).
    compute_dtype: str = "float32"
    log_every_steps: int = 50
    max_steps_per_epoch: int | None = None  # for smoke tests
    bootstrap_samples: int = 1000

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return _from_dict(cls, data)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        return cls.from_dict(json.loads(text))


def _from_dict(cls: type, data: dict[str, Any]):
    hints = typing.get_type_hints(cls)
    kwargs = {}
    names = {f.name for f in dataclasses.fields(cls)}
    for key, value in data.items():
        if key not in names:
            raise ConfigError(f"unknown config field {cls.__name__}.{key} (written by another version "
                              "of imn? see the run folder's provenance.json)")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _from_dict(hint, value)
        else:
            kwargs[key] = _coerce(value, hint, key)
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, name: str) -> Any:
    """Convert a JSON or command-line value to the field's declared type."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [h for h in typing.get_args(hint) if h is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        return _coerce(value, options[0], name)
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.replace("(", "").replace(")", "").split(",") if v.strip()]
        (item,) = {a for a in typing.get_args(hint) if a is not Ellipsis}
        return tuple(_coerce(v, item, name) for v in value)
    if origin is dict:
        return json.loads(value) if isinstance(value, str) else dict(value)
    if hint is bool:
        if isinstance(value, str):
            if value.lower() not in ("true", "false", "1", "0"):
                raise ConfigError(f"{name}: expected true or false, got {value!r}")
            return value.lower() in ("true", "1")
        return bool(value)
    if hint in (int, float, str):
        try:
            return hint(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: expected {hint.__name__}, got {value!r}") from None
    return value


def apply_overrides(config: TrainConfig, overrides: list[str]) -> TrainConfig:
    """Apply ``section.field=value`` strings; unknown keys are an error, not ignored."""
    data = config.to_dict()
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        node = data
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"unknown config key {key!r}")
            node = node[part]
        if parts[-1] not in node and not (len(parts) >= 2 and parts[-2] == "overrides"):
            raise ConfigError(f"unknown config key {key!r}")
        if parts[-2:-1] == ["overrides"]:
            try:
                node[parts[-1]] = json.loads(value)
            except json.JSONDecodeError:
                node[parts[-1]] = value
        else:
            node[parts[-1]] = value
    return TrainConfig.from_dict(data)


def load_config(spec: str, overrides: list[str] | None = None) -> TrainConfig:
    """Load ``path/to/file.py:preset`` (preset defaults to 'quick') and apply overrides."""
    path, _, preset = spec.partition(":")
    preset = preset or "quick"
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"config file {file} not found (expected configs/NAME.py:PRESET)")
    spec_obj = importlib.util.spec_from_file_location(f"imn_config_{file.stem}", file)
    module = importlib.util.module_from_spec(spec_obj)
    assert spec_obj.loader is not None
    spec_obj.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise ConfigError(f"{file} defines no get_config(preset)")
    config = module.get_config(preset)
    if not isinstance(config, TrainConfig):
        raise TypeError(f"{file}:get_config({preset!r}) returned {type(config).__name__}, not TrainConfig")
    return apply_overrides(config, overrides or [])
