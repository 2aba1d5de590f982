"""InceptionTime for 12-lead ECG, as in the PTB-XL benchmark (``fastai_inception1d``).

Strodthoff et al. (2021), "Deep learning for ECG analysis: benchmarks and insights from
PTB-XL", repository helme/ecg_ptbxl_benchmarking, ``code/models/inception1d.py``; the
benchmark builds it with ``kernel_size = 8 * 5 = 40``, ``lin_ftrs_head=[128]``,
``ps_head=0.5``. Architecture (all convolutions without bias, stride 1, 'same' length):

* inception block (``c_in -> 4 * filters``): a 1x1 bottleneck to 32 channels feeds three
  convolutions with kernels 39, 19, 9 (from 40, 20, 10, made odd); in parallel the *block
  input* goes through max-pool(3, stride 1) and a 1x1 convolution; the four 32-channel
  branches are concatenated to 128 channels, then BatchNorm, ReLU. The benchmark keeps the
  bottleneck even on the 12-lead input (unlike the original InceptionTime, which skips it
  for one-channel input).
* 6 blocks; after every third block a shortcut from the input of that group of three:
  ``relu(block_out + BN(conv1x1(group_input)))`` (a projection even when widths match).
* head: concat pooling and ``BN, Dropout(0.25), Linear(256, 128), ReLU, BN, Dropout(0.5),
  Linear(128, K)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from baselines.layers1d import ConcatPoolHead, ConvBn, batch_norm, conv1d, max_pool_same


def inception_kernel_sizes(kernel_size: int) -> tuple[int, int, int]:
    """The benchmark's branch kernels: ``k, k // 2, k // 4``, each made odd (40 -> 39, 19, 9)."""
    candidates = (kernel_size, kernel_size // 2, kernel_size // 4)
    sizes = tuple(k - 1 if k % 2 == 0 else k for k in candidates)
    if min(sizes) < 1:
        raise ValueError(f"kernel_size={kernel_size} is too small for three inception branches")
    return sizes  # type: ignore[return-value]


class InceptionBlock1d(nnx.Module):
    """One inception block: ``(B, T, in_channels) -> (B, T, (len(kernel_sizes) + 1) * filters)``."""

    def __init__(
        self,
        in_channels: int,
        *,
        filters: int,
        kernel_sizes: Sequence[int],
        bottleneck_size: int,
        rngs: nnx.Rngs,
    ):
        self.bottleneck = (
            conv1d(in_channels, bottleneck_size, 1, rngs=rngs) if bottleneck_size > 0 else None
        )
        branch_in = bottleneck_size if bottleneck_size > 0 else in_channels
        self.branches = nnx.List([conv1d(branch_in, filters, k, rngs=rngs) for k in kernel_sizes])
        self.pool_conv = conv1d(in_channels, filters, 1, rngs=rngs)
        self.norm = batch_norm((len(kernel_sizes) + 1) * filters, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        bottled = self.bottleneck(x) if self.bottleneck is not None else x
        outputs = [branch(bottled) for branch in self.branches]
        outputs.append(self.pool_conv(max_pool_same(x, 3, stride=1)))
        return jax.nn.relu(self.norm(jnp.concatenate(outputs, axis=-1)))


class Inception1D(nnx.Module):
    """InceptionTime baseline: ``(B, L, in_leads)`` -> logits ``(B, num_classes)``.

    ``features(x)`` is the last inception block's output after the final shortcut,
    ``(B, L, 4 * filters)`` = ``(B, L, 128)`` (the time axis is never downsampled), and
    ``model(x) == head(features(x))``.

    Hyper-parameters (benchmark names in brackets) default to the benchmark's:
    ``kernel_size=40`` [kernel_size = 8 * 5], ``depth=6``, ``bottleneck_size=32``,
    ``filters=32`` [nb_filters], ``use_residual=True``, ``head_hidden=(128,)``
    [lin_ftrs_head], ``head_dropout=0.5`` [ps_head], ``head_batch_norm=True`` [bn_head].
    """

    def __init__(
        self,
        num_classes: int,
        *,
        rngs: nnx.Rngs,
        in_leads: int = 12,
        kernel_size: int = 40,
        depth: int = 6,
        bottleneck_size: int = 32,
        filters: int = 32,
        use_residual: bool = True,
        head_hidden: Sequence[int] = (128,),
        head_dropout: float | Sequence[float] = 0.5,
        head_batch_norm: bool = True,
    ):
        if depth % 3:
            raise ValueError(
                f"depth must be a multiple of 3 (a shortcut spans 3 blocks), got {depth}"
            )
        kernel_sizes = inception_kernel_sizes(kernel_size)
        width = (len(kernel_sizes) + 1) * filters
        self.use_residual = use_residual
        self.blocks = nnx.List(
            [
                InceptionBlock1d(
                    in_leads if d == 0 else width,
                    filters=filters,
                    kernel_sizes=kernel_sizes,
                    bottleneck_size=bottleneck_size,
                    rngs=rngs,
                )
                for d in range(depth)
            ]
        )
        # The benchmark builds the shortcuts even when use_residual=False (they are then unused
        # parameters); only build them when they are used.
        self.shortcuts = nnx.List(
            [
                ConvBn(in_leads if s == 0 else width, width, 1, relu=False, rngs=rngs)
                for s in range(depth // 3)
            ]
            if use_residual
            else []
        )
        self.classifier = ConcatPoolHead(
            width,
            num_classes,
            hidden=head_hidden,
            dropout=head_dropout,
            use_batch_norm=head_batch_norm,
            rngs=rngs,
        )

    def features(self, x: jax.Array) -> jax.Array:
        """``x (B, L, in_leads)`` -> last feature map ``(B, L, 128)``, before pooling."""
        group_input = x
        for d, block in enumerate(self.blocks):
            x = block(x)
            if self.use_residual and d % 3 == 2:
                x = jax.nn.relu(x + self.shortcuts[d // 3](group_input))
                group_input = x
        return x

    def head(self, features: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
        """``features (B, T, 128)`` -> logits ``(B, num_classes)``."""
        return self.classifier(features, rngs=rngs)

    def __call__(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
        """``x (B, L, in_leads)`` -> logits ``(B, num_classes)``; any ``L`` works (e.g. crops)."""
        return self.head(self.features(x), rngs=rngs)
