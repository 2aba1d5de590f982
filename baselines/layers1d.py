"""Building blocks shared by the 1-D black-box baselines (Inception1D, ResNet1D, XResNet1D).

Everything is channels-last: a signal is ``(batch, time, channels)``.

The layers reproduce the PyTorch/fastai conventions of the PTB-XL benchmark
(Strodthoff et al. 2021) where they change results or weight layout:

* convolutions pad ``(k - 1) // 2`` on both sides (PyTorch ``padding=`` semantics, so a stride-2
  convolution of a length-``T`` signal gives ``ceil(T / 2)`` steps for odd ``k``);
* BatchNorm keeps running statistics with PyTorch's momentum 0.1 (Flax momentum 0.9) and
  epsilon 1e-5;
* weights are initialised as the benchmark's ``weight_init`` does before training from
  scratch: Kaiming-normal (fan-in, gain sqrt 2) kernels, zero biases, BatchNorm scale 1 and
  bias 0 (this also overrides fastai's zero-initialised last BatchNorm of XResNet blocks);
* the classifier head is fastai's ``create_head1d`` with concat pooling.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from imn.models import ops

# torch.nn.init.kaiming_normal_: untruncated normal, std = sqrt(2 / fan_in).
KAIMING_NORMAL = nnx.initializers.variance_scaling(2.0, "fan_in", "normal")

# PyTorch BatchNorm momentum 0.1 weights the *new* batch statistic; Flax weights the old one.
BATCH_NORM_MOMENTUM = 0.9
BATCH_NORM_EPSILON = 1e-5


def conv1d(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    *,
    rngs: nnx.Rngs,
    use_bias: bool = False,
) -> nnx.Conv:
    """A 1-D convolution with PyTorch-style symmetric padding ``(kernel_size - 1) // 2``.

    Maps ``(B, T, in_channels)`` to ``(B, floor((T + 2p - k) / stride) + 1, out_channels)``,
    i.e. ``(B, T, out)`` for odd ``k`` and stride 1, ``(B, ceil(T / 2), out)`` for stride 2.
    """
    padding = (kernel_size - 1) // 2
    return nnx.Conv(
        in_channels,
        out_channels,
        kernel_size=(kernel_size,),
        strides=(stride,),
        padding=((padding, padding),),
        use_bias=use_bias,
        kernel_init=KAIMING_NORMAL,
        bias_init=nnx.initializers.zeros_init(),
        rngs=rngs,
    )


def batch_norm(num_features: int, *, rngs: nnx.Rngs) -> nnx.BatchNorm:
    """BatchNorm over the channel (last) axis with PyTorch's momentum and epsilon."""
    return nnx.BatchNorm(
        num_features, momentum=BATCH_NORM_MOMENTUM, epsilon=BATCH_NORM_EPSILON, rngs=rngs
    )


def linear(in_features: int, out_features: int, *, rngs: nnx.Rngs) -> nnx.Linear:
    """A dense layer initialised as the benchmark does (Kaiming-normal kernel, zero bias)."""
    return nnx.Linear(
        in_features,
        out_features,
        kernel_init=KAIMING_NORMAL,
        bias_init=nnx.initializers.zeros_init(),
        rngs=rngs,
    )


class ConvBn(nnx.Module):
    """Convolution (no bias) -> BatchNorm -> optional ReLU: ``(B, T, C_in) -> (B, T', C_out)``.

    This is fastai's ``ConvLayer`` with ``bn_1st=True`` and the conv/BN pair of a torchvision
    ResNet block; the bias is dropped because the BatchNorm shift makes it redundant.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        *,
        relu: bool = True,
        rngs: nnx.Rngs,
    ):
        self.conv = conv1d(in_channels, out_channels, kernel_size, stride, rngs=rngs)
        self.norm = batch_norm(out_channels, rngs=rngs)
        self.relu = relu

    def __call__(self, x: jax.Array) -> jax.Array:
        y = self.norm(self.conv(x))
        return jax.nn.relu(y) if self.relu else y


def max_pool_same(x: jax.Array, window: int, stride: int = 1) -> jax.Array:
    """PyTorch ``MaxPool1d(window, stride, padding=(window - 1) // 2)`` on ``(B, T, C)``.

    Padding is with -inf, so padded positions never win the max. Computed by
    :func:`imn.models.ops.max_pool`: the values and gradient of ``nnx.max_pool`` (ties go to
    the first sample of the window), with a fused backward pass instead of select-and-scatter.
    """
    padding = (window - 1) // 2
    return ops.max_pool(x, 1, window, stride, (padding, padding))


def avg_pool2_ceil(x: jax.Array) -> jax.Array:
    """PyTorch ``AvgPool1d(2, ceil_mode=True)`` on ``(B, T, C)`` -> ``(B, ceil(T / 2), C)``.

    With an odd ``T`` the last window holds a single step, and PyTorch divides it by 1 (the
    window is clipped to the signal, no padding is counted), so it is that step unchanged.
    """
    length = x.shape[1]
    if length % 2:
        x = jnp.concatenate([x, x[:, -1:]], axis=1)  # duplicating the step averages to itself
    batch, padded, channels = x.shape
    return x.reshape(batch, padded // 2, 2, channels).mean(axis=2)


def concat_pool(features: jax.Array) -> jax.Array:
    """fastai ``AdaptiveConcatPool1d`` + flatten: ``(B, T, C) -> (B, 2C)``, max first, then mean."""
    return jnp.concatenate([features.max(axis=1), features.mean(axis=1)], axis=-1)


def head_dropout_rates(dropout: float | Sequence[float], num_linear: int) -> tuple[float, ...]:
    """fastai's rule: one rate ``p`` means ``p / 2`` before every hidden layer and ``p`` last."""
    if isinstance(dropout, (int, float)):
        return (dropout / 2,) * (num_linear - 1) + (float(dropout),)
    rates = tuple(float(p) for p in dropout)
    if len(rates) != num_linear:
        raise ValueError(
            f"got {len(rates)} dropout rates for a head with {num_linear} linear layers"
        )
    return rates


class ConcatPoolHead(nnx.Module):
    """fastai ``create_head1d`` (concat pooling, ``bn_final=False``) as the benchmark uses it.

    ``(B, T, C) -> (B, num_classes)``: concat max+mean pooling to ``2C`` features, then for each
    linear layer ``[BatchNorm] -> Dropout -> Linear`` with a ReLU after every hidden one.
    With the benchmark's ``hidden=(128,)``, ``dropout=0.5``:
    BN(2C), Dropout(0.25), Linear(2C, 128), ReLU, BN(128), Dropout(0.5), Linear(128, K).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        hidden: Sequence[int] = (128,),
        dropout: float | Sequence[float] = 0.5,
        use_batch_norm: bool = True,
        rngs: nnx.Rngs,
    ):
        widths = [2 * in_channels, *hidden, num_classes]
        rates = head_dropout_rates(dropout, len(widths) - 1)
        self.norms = nnx.List(
            [batch_norm(w, rngs=rngs) for w in widths[:-1]] if use_batch_norm else []
        )
        # Dropout with p = 0 is an identity; keep the module so every layer has one.
        self.dropouts = nnx.List([nnx.Dropout(p, rngs=rngs) for p in rates])
        self.linears = nnx.List(
            [linear(w_in, w_out, rngs=rngs) for w_in, w_out in zip(widths[:-1], widths[1:])]
        )

    def __call__(self, features: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
        """``features (B, T, C)`` -> logits ``(B, num_classes)``.

        ``rngs`` optionally overrides the dropout streams (for pure, step-folded RNG).
        """
        h = concat_pool(features)
        last = len(self.linears) - 1
        for i, (dropout, dense) in enumerate(zip(self.dropouts, self.linears)):
            if len(self.norms):
                h = self.norms[i](h)
            h = dense(dropout(h, rngs=rngs))
            if i < last:
                h = jax.nn.relu(h)
        return h


def count_params(model: nnx.Module) -> int:
    """Number of trainable parameters (``nnx.Param`` leaves; BatchNorm running stats excluded)."""
    return sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
