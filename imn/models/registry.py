"""Model registry: one name -> one constructor, for configs and the CLI.

    model = create_model("imn", num_classes=1, sampling_rate=100)

The black-box baselines are imported lazily, inside their builders, so that the IMN models
work even when a baseline module is missing or broken.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import jax
from flax import nnx

from imn.errors import ConfigError

DEFAULT_SECONDS = 10.0

# Models built on the IMN encoder pool time twice by 2.
_IMN_FAMILY = ("imn", "imn_softmax", "imn_direct", "imn_stable", "cnn2d")

# ``imn_stable``: ECG-IMN whose generated W is multiplied by the constant 1/sqrt(12 L)
# before the read-out (``readout_scale="sqrt"``; the W it returns is the scaled one, so
# sum(W * x) + b == logit stays exact). A DEVIATION FROM THE PAPER, whose IMN has no such
# factor and starts saturated (initial |logit| in the hundreds at 100 Hz, growing with L).
# Same architecture, parameters and initialisation (PyTorch's) as ``imn``.
#
# Chosen over a zero-initialised W-writing conv (``weight_init_scale=0``) by a one-seed probe
# on the PTB-XL slice, norm_vs_mi, configs/imn.py:cpu with epochs=5, batch_size=32 (2-core
# AMD EPYC, shared): initial median |logit| 1.9 (sqrt) vs 0.17 (zero) vs 188 (faithful);
# epoch-1 train loss 11.0 vs 28.7 vs 1,206; best validation AUROC 0.882 vs 0.905 (44
# records: not a difference); validation ECE before temperature scaling 0.116 vs 0.241,
# fitted T 0.80 vs 3.43, saturated validation probabilities 0 vs 1. Starting at zero only
# delays the saturation (W grows with L again as it trains); the constant factor removes
# the L-dependence for good, so its probabilities stay calibrated.
STABLE_IMN_OVERRIDES: dict[str, Any] = {"readout_scale": "sqrt"}


def _build_imn(num_classes: int, rngs: nnx.Rngs, input_length: int, **overrides: Any):
    from imn.models.imn import ECGIMN

    return ECGIMN(num_classes, rngs=rngs, **overrides)


def _build_imn_softmax(num_classes: int, rngs: nnx.Rngs, input_length: int, **overrides: Any):
    from imn.models.imn import ECGIMN

    if num_classes != 2:
        raise ValueError(
            f"imn_softmax is the paper's categorical 2-class variant; it needs num_classes=2, "
            f"got {num_classes}"
        )
    overrides.pop("head", None)
    return ECGIMN(num_classes, rngs=rngs, head="softmax", **overrides)


def _build_imn_stable(num_classes: int, rngs: nnx.Rngs, input_length: int, **overrides: Any):
    from imn.models.imn import ECGIMN

    return ECGIMN(num_classes, rngs=rngs, **{**STABLE_IMN_OVERRIDES, **overrides})


def _build_imn_direct(num_classes: int, rngs: nnx.Rngs, input_length: int, **overrides: Any):
    from imn.models.imn import IMNDirect

    return IMNDirect(num_classes, input_length=input_length, rngs=rngs, **overrides)


def _lazy(module: str, class_name: str) -> Callable[..., nnx.Module]:
    """A builder that imports ``module.class_name`` only when the model is requested."""

    def build(num_classes: int, rngs: nnx.Rngs, input_length: int, **overrides: Any):
        try:
            cls = getattr(importlib.import_module(module), class_name)
        except (ImportError, AttributeError) as error:
            raise ImportError(
                f"model class {module}.{class_name} could not be imported: {error}"
            ) from error
        return cls(num_classes, rngs=rngs, **overrides)

    return build


_BUILDERS: dict[str, Callable[..., nnx.Module]] = {
    "imn": _build_imn,
    "imn_softmax": _build_imn_softmax,
    "imn_direct": _build_imn_direct,
    "imn_stable": _build_imn_stable,
    "cnn2d": _lazy("baselines.cnn2d", "CNN2D"),
    "inception1d": _lazy("baselines.inception1d", "Inception1D"),
    "resnet1d_wang": _lazy("baselines.resnet1d", "ResNet1dWang"),
    "xresnet1d101": _lazy("baselines.resnet1d", "XResNet1d101"),
    "resnet34_1d": _lazy("baselines.resnet34", "ResNet34_1D"),
    "xecgnet": _lazy("baselines.xecgnet", "XECGNet"),
}

MODEL_NAMES: tuple[str, ...] = tuple(_BUILDERS)


def construct(name: str, num_classes: int, rngs: nnx.Rngs, input_length: int,
              **overrides: Any) -> nnx.Module:
    """Calls the registered constructor of ``name`` as is (no jit, no mode switch): for
    code that builds models inside its own traced function (e.g. many seeds under one
    ``jax.jit``, :mod:`imn.models.diagnostics`)."""
    if name not in _BUILDERS:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(MODEL_NAMES)}")
    return _BUILDERS[name](num_classes, rngs, input_length, **overrides)


def create_model(
    name: str,
    *,
    num_classes: int,
    sampling_rate: int,
    seed: int = 0,
    input_length: int | None = None,
    **overrides: Any,
) -> nnx.Module:
    """Builds a registered model with parameters initialised from ``seed``.

    Args:
      name: one of :data:`MODEL_NAMES`.
      num_classes: K, the number of logits (2 for ``imn_softmax``).
      sampling_rate: Hz; sets the default ``input_length`` (10 s of signal).
      seed: initialisation and dropout seed; the same seed gives the same model.
      input_length: samples per ECG fed to the model (crops pass it explicitly). Only
        ``imn_direct`` depends on it; for the IMN family it must be divisible by 4.
      **overrides: constructor keyword arguments (e.g. ``dropout=0.1``).
    Returns:
      The model in training mode (``model.eval()`` switches BatchNorm/dropout off).
    Raises:
      ConfigError (a ValueError): for an unknown name, listing the known ones; ValueError:
        for an unusable length.
    """
    if name not in _BUILDERS:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(MODEL_NAMES)}")
    if input_length is None:
        input_length = int(round(DEFAULT_SECONDS * sampling_rate))
    if name in _IMN_FAMILY and input_length % 4:
        raise ValueError(
            f"model {name!r} pools time twice by 2, so input_length must be divisible by 4; "
            f"got {input_length}"
        )
    # Built under one jit: eagerly, every initialiser of every shape compiles its own small
    # program (about 11 s for IMN on a 2-core CPU); jitted, the whole init is one program.
    # The parameters are bit-identical either way.
    model = nnx.jit(lambda: construct(name, num_classes, nnx.Rngs(seed), input_length, **overrides))()
    model.train()
    return model


def count_params(model: nnx.Module) -> int:
    """Number of trainable parameters (``nnx.Param`` leaves; BatchNorm statistics excluded)."""
    return int(sum(leaf.size for leaf in jax.tree.leaves(nnx.state(model, nnx.Param))))
