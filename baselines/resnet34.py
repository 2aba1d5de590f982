"""``resnet34_1d``: the 1-D ResNet34 of the CPSC 2018 study (ecg-diagnosis).

The study (repository onlyzdd/ecg-diagnosis, ``resnet.py``) classifies the 9 CPSC 2018 classes
from 12 leads x 15,000 samples (the last 30 s at 500 Hz, zero-padded at the front). Architecture,
all convolutions without bias, PyTorch padding (``(k - 1) // 2`` both sides):

* stem: conv 12 -> 64, kernel 15, stride 2; BatchNorm; ReLU; max-pool(3, stride 2, pad 1);
* four stages of [3, 4, 6, 3] basic blocks at 64 / 128 / 256 / 512 channels, the first block of
  stages 2-4 with stride 2; a basic block is ``conv k7 (stride) -> BN -> ReLU -> dropout 0.2 ->
  conv k7 -> BN``, plus the residual (``1x1 conv (stride) + BN`` when the shape changes), ReLU;
* head: concatenated global *average* and *max* pooling (average first) -> Linear(1024, K).

Time: ``L -> ceil(L / 2)`` (stem) ``-> ceil(. / 2)`` (pool) and ``ceil(. / 2)`` per strided
stage, so ``L / 32`` rounded up at every halving: 15,000 -> 469, 1,000 -> 32, 250 -> 8.

Initialisation follows PyTorch's defaults, as the study trained from them: convolution and
linear kernels (and the linear bias) uniform within ``+-1 / sqrt(fan_in)``, BatchNorm scale 1
and shift 0; BatchNorm momentum 0.1 / epsilon 1e-5 in PyTorch's sense.

The study's training recipe (BCE, Adam 1e-4, batch 32, 40 epochs, per-lead amplitude and offset
augmentation, model chosen by mean per-class F1 at validation-tuned thresholds) is in
``configs/resnet34_1d.py``; its explanations (SHAP's GradientExplainer) are this project's
``gradient_shap``.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from baselines.layers1d import batch_norm, max_pool_same

# PyTorch's default Conv1d/Linear init: kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in)).
TORCH_DEFAULT = nnx.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def _torch_bias_init(fan_in: int):
    """PyTorch's default bias init for a layer with ``fan_in`` inputs: U(+-1/sqrt(fan_in))."""
    bound = 1.0 / float(fan_in) ** 0.5

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def torch_conv1d(c_in: int, c_out: int, kernel: int, stride: int = 1, *, rngs: nnx.Rngs) -> nnx.Conv:
    """Bias-free ``(B, T, c_in) -> (B, ceil(T / stride), c_out)`` for odd ``kernel``."""
    pad = (kernel - 1) // 2
    return nnx.Conv(c_in, c_out, kernel_size=(kernel,), strides=(stride,), padding=((pad, pad),),
                    use_bias=False, kernel_init=TORCH_DEFAULT, rngs=rngs)


def torch_linear(c_in: int, c_out: int, *, rngs: nnx.Rngs) -> nnx.Linear:
    return nnx.Linear(c_in, c_out, kernel_init=TORCH_DEFAULT, bias_init=_torch_bias_init(c_in),
                      rngs=rngs)


class BasicBlock7(nnx.Module):
    """``(B, T, c_in) -> (B, ceil(T / stride), channels)``: the study's kernel-7 basic block."""

    def __init__(self, c_in: int, channels: int, *, stride: int, kernel_size: int,
                 dropout: float, rngs: nnx.Rngs):
        self.conv1 = torch_conv1d(c_in, channels, kernel_size, stride, rngs=rngs)
        self.norm1 = batch_norm(channels, rngs=rngs)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)
        self.conv2 = torch_conv1d(channels, channels, kernel_size, rngs=rngs)
        self.norm2 = batch_norm(channels, rngs=rngs)
        if stride != 1 or c_in != channels:
            self.shortcut_conv = torch_conv1d(c_in, channels, 1, stride, rngs=rngs)
            self.shortcut_norm = batch_norm(channels, rngs=rngs)
        else:
            self.shortcut_conv = self.shortcut_norm = None

    def __call__(self, x: jax.Array) -> jax.Array:
        out = self.dropout(jax.nn.relu(self.norm1(self.conv1(x))))
        out = self.norm2(self.conv2(out))
        residual = x if self.shortcut_conv is None else self.shortcut_norm(self.shortcut_conv(x))
        return jax.nn.relu(out + residual)


class ResNet34_1D(nnx.Module):
    """``resnet34_1d``: ``(B, L, in_leads)`` -> logits ``(B, num_classes)``, any length L.

    ``features(x)`` is the last stage's output ``(B, T', 512)`` (T' = L / 32, rounded up at
    every halving); ``head(features)`` pools and classifies; ``model(x) == head(features(x))``.
    Grad-CAM explains it through this split.

    Hyper-parameters, defaulting to the study's: ``layers=(3, 4, 6, 3)``,
    ``widths=(64, 128, 256, 512)``, ``kernel_size=7``, ``stem_kernel_size=15``,
    ``dropout=0.2`` (inside every block).
    """

    def __init__(
        self,
        num_classes: int,
        *,
        rngs: nnx.Rngs,
        in_leads: int = 12,
        layers: Sequence[int] = (3, 4, 6, 3),
        widths: Sequence[int] = (64, 128, 256, 512),
        kernel_size: int = 7,
        stem_kernel_size: int = 15,
        dropout: float = 0.2,
    ):
        if len(layers) != len(widths):
            raise ValueError(f"layers {tuple(layers)} and widths {tuple(widths)} differ in length")
        self.in_leads = in_leads
        self.stem_conv = torch_conv1d(in_leads, widths[0], stem_kernel_size, 2, rngs=rngs)
        self.stem_norm = batch_norm(widths[0], rngs=rngs)
        blocks = []
        c_in = widths[0]
        for stage, (num_blocks, width) in enumerate(zip(layers, widths)):
            for b in range(num_blocks):
                stride = 2 if (stage > 0 and b == 0) else 1
                blocks.append(BasicBlock7(c_in, width, stride=stride, kernel_size=kernel_size,
                                          dropout=dropout, rngs=rngs))
                c_in = width
        self.blocks = nnx.List(blocks)
        self.classifier = torch_linear(2 * c_in, num_classes, rngs=rngs)

    def features(self, x: jax.Array) -> jax.Array:
        """``x (B, L, in_leads)`` -> last feature map ``(B, T', widths[-1])``."""
        if x.ndim != 3 or x.shape[-1] != self.in_leads:
            raise ValueError(f"ResNet34_1D expects (batch, time, {self.in_leads}), got {x.shape}")
        x = jax.nn.relu(self.stem_norm(self.stem_conv(x)))
        x = max_pool_same(x, 3, stride=2)
        for block in self.blocks:
            x = block(x)
        return x

    def head(self, features: jax.Array) -> jax.Array:
        """``(B, T', C) -> logits (B, K)``: [mean over time, max over time] -> Linear."""
        pooled = jnp.concatenate([features.mean(axis=1), features.max(axis=1)], axis=-1)
        return self.classifier(pooled.astype(jnp.float32))

    def __call__(self, x: jax.Array) -> jax.Array:
        """``x (B, L, in_leads)`` -> logits ``(B, num_classes)``."""
        return self.head(self.features(x))
