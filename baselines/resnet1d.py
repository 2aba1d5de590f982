"""The two ResNet baselines of the PTB-XL benchmark: ``resnet1d_wang`` and ``xresnet1d101``.

Strodthoff et al. (2021), repository helme/ecg_ptbxl_benchmarking, ``code/models/resnet1d.py``
and ``code/models/xresnet1d.py``, built there with ``kernel_size=5``, ``lin_ftrs_head=[128]``,
``ps_head=0.5`` and the concat-pool head of ``basic_conv1d.create_head1d``.

``ResNet1dWang`` (Wang et al. 2017's ResNet as the benchmark adapts it): stem conv k7 stride 1
to 128 channels + BN + ReLU, no stem pooling; three basic blocks (conv k5 -> BN -> ReLU ->
conv k3 -> BN, add, ReLU), all 128 channels wide, the 2nd and 3rd with stride 2 in the first
conv and a 1x1 stride-2 conv + BN projection on the shortcut. Time: ``L -> ceil(ceil(L/2)/2)``.

``XResNet1d101`` (fastai's XResNet, "bag of tricks" ResNet-D, in 1-D): a stem of three
conv k5 + BN + ReLU (12 -> 32 stride 2, 32 -> 32, 32 -> 64), max-pool(3, 2, pad 1); then
bottleneck blocks (expansion 4, hidden 64, out 256) in stages of [3, 4, 23, 3] with stride
1, 2, 2, 2: ``1x1 -> k5 (strided) -> 1x1``, each conv + BN (+ ReLU except the last); the
shortcut is ``avg-pool(2, ceil) -> [1x1 conv + BN if the width changes]`` (the width only
changes in the very first block, 64 -> 256). Time: ``L -> L/32`` (ceil at every halving).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
from flax import nnx

from baselines.layers1d import ConcatPoolHead, ConvBn, avg_pool2_ceil, max_pool_same


def _pair(kernel_size: int | Sequence[int]) -> tuple[int, int]:
    """Benchmark rule for a basic block's two kernels: an int ``k`` means ``(k, k // 2 + 1)``."""
    if isinstance(kernel_size, int):
        return kernel_size, kernel_size // 2 + 1
    first, second = kernel_size
    return int(first), int(second)


class BasicBlock1d(nnx.Module):
    """torchvision-style basic block: ``(B, T, in_channels) -> (B, ceil(T / stride), channels)``."""

    def __init__(
        self,
        in_channels: int,
        channels: int,
        *,
        stride: int = 1,
        kernel_sizes: tuple[int, int] = (5, 3),
        rngs: nnx.Rngs,
    ):
        self.conv1 = ConvBn(in_channels, channels, kernel_sizes[0], stride, relu=True, rngs=rngs)
        self.conv2 = ConvBn(channels, channels, kernel_sizes[1], relu=False, rngs=rngs)
        needs_projection = stride != 1 or in_channels != channels
        self.downsample = (
            ConvBn(in_channels, channels, 1, stride, relu=False, rngs=rngs)
            if needs_projection
            else None
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        residual = self.downsample(x) if self.downsample is not None else x
        return jax.nn.relu(self.conv2(self.conv1(x)) + residual)


class ResNet1dWang(nnx.Module):
    """``resnet1d_wang``: ``(B, L, in_leads)`` -> logits ``(B, num_classes)``.

    ``features(x)`` is the last block's output ``(B, ceil(ceil(L/2)/2), width)`` =
    ``(B, 250, 128)`` for L = 1000; ``model(x) == head(features(x))``.

    Hyper-parameters (benchmark names in brackets), defaulting to the benchmark's:
    ``layers=(1, 1, 1)``, ``width=128`` [inplanes; fix_feature_dim=True, so every stage has
    this width], ``kernel_size=5`` [-> (5, 3) per block], ``stem_kernel_size=7``
    [kernel_size_stem], ``stem_stride=1`` [stride_stem], ``stem_pool=False`` [pooling_stem],
    ``stride=2`` (first block of every stage after the first), ``head_hidden=(128,)``,
    ``head_dropout=0.5``, ``head_batch_norm=True``.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        rngs: nnx.Rngs,
        in_leads: int = 12,
        layers: Sequence[int] = (1, 1, 1),
        width: int = 128,
        kernel_size: int | Sequence[int] = 5,
        stem_kernel_size: int = 7,
        stem_stride: int = 1,
        stem_pool: bool = False,
        stride: int = 2,
        head_hidden: Sequence[int] = (128,),
        head_dropout: float | Sequence[float] = 0.5,
        head_batch_norm: bool = True,
    ):
        kernel_sizes = _pair(kernel_size)
        self.stem = ConvBn(in_leads, width, stem_kernel_size, stem_stride, relu=True, rngs=rngs)
        self.stem_pool = stem_pool
        # The strided time operations: where each feature step sits in the input
        # (baselines.gradcam.window_centres, for Grad-CAM's upsampling).
        strided_blocks = sum(1 for stage, n in enumerate(layers) if stage > 0 and n > 0)
        self.time_ops = tuple(
            ([(stem_kernel_size, stem_stride, (stem_kernel_size - 1) // 2)] if stem_stride > 1 else [])
            + ([(3, 2, 1)] if stem_pool else [])
            + [(kernel_sizes[0], stride, (kernel_sizes[0] - 1) // 2)] * (strided_blocks if stride > 1 else 0))
        blocks = []
        for stage, num_blocks in enumerate(layers):
            for b in range(num_blocks):
                first_strided = stage > 0 and b == 0
                blocks.append(
                    BasicBlock1d(
                        width,
                        width,
                        stride=stride if first_strided else 1,
                        # the benchmark passes the kernel sizes to the first block of a stage
                        # only; the others get torchvision's default (3, 3)
                        kernel_sizes=kernel_sizes if b == 0 else (3, 3),
                        rngs=rngs,
                    )
                )
        self.blocks = nnx.List(blocks)
        self.classifier = ConcatPoolHead(
            width,
            num_classes,
            hidden=head_hidden,
            dropout=head_dropout,
            use_batch_norm=head_batch_norm,
            rngs=rngs,
        )

    def features(self, x: jax.Array) -> jax.Array:
        """``x (B, L, in_leads)`` -> last feature map ``(B, T', width)``, before pooling."""
        x = self.stem(x)
        if self.stem_pool:
            x = max_pool_same(x, 3, stride=2)
        for block in self.blocks:
            x = block(x)
        return x

    def head(self, features: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
        """``features (B, T', width)`` -> logits ``(B, num_classes)``."""
        return self.classifier(features, rngs=rngs)

    def __call__(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
        """``x (B, L, in_leads)`` -> logits ``(B, num_classes)``."""
        return self.head(self.features(x), rngs=rngs)


class XResBlock1d(nnx.Module):
    """fastai ``ResBlock``: ``(B, T, in_channels) -> (B, ceil(T / stride), out_channels)``.

    Expansion 1: ``k -> k`` convs; expansion > 1: ``1x1 -> k -> 1x1`` bottleneck, the stride
    on the k-wide conv. The last conv+BN has no ReLU; ReLU follows the residual sum.
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        *,
        stride: int,
        kernel_size: int,
        bottleneck: bool,
        rngs: nnx.Rngs,
    ):
        if bottleneck:
            convs = [
                ConvBn(in_channels, hidden_channels, 1, rngs=rngs),
                ConvBn(hidden_channels, hidden_channels, kernel_size, stride, rngs=rngs),
                ConvBn(hidden_channels, out_channels, 1, relu=False, rngs=rngs),
            ]
        else:
            convs = [
                ConvBn(in_channels, hidden_channels, kernel_size, stride, rngs=rngs),
                ConvBn(hidden_channels, out_channels, kernel_size, relu=False, rngs=rngs),
            ]
        self.convs = nnx.List(convs)
        self.pool_shortcut = stride != 1
        if stride not in (1, 2):
            raise ValueError(
                f"the XResNet shortcut pools by 2, so stride must be 1 or 2, got {stride}"
            )
        self.projection = (
            ConvBn(in_channels, out_channels, 1, relu=False, rngs=rngs)
            if in_channels != out_channels
            else None
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        residual = avg_pool2_ceil(x) if self.pool_shortcut else x
        if self.projection is not None:
            residual = self.projection(residual)
        out = x
        for conv in self.convs:
            out = conv(out)
        return jax.nn.relu(out + residual)


class XResNet1d101(nnx.Module):
    """``xresnet1d101``: ``(B, L, in_leads)`` -> logits ``(B, num_classes)``.

    ``features(x)`` is the last block's output ``(B, T', 256)`` with ``T' = 32`` for
    L = 1000 and ``T' = 8`` for L = 250; ``model(x) == head(features(x))``.

    Hyper-parameters, defaulting to the benchmark's: ``layers=(3, 4, 23, 3)``,
    ``expansion=4``, ``stem_widths=(32, 32, 64)`` [stem_szs], ``width=64`` (hidden width of
    every stage; fastai's 1-D variant keeps it fixed rather than doubling it),
    ``kernel_size=5``, ``stem_kernel_size=5``, ``head_hidden=(128,)``, ``head_dropout=0.5``,
    ``head_batch_norm=True``. Other depths of the family: ``layers=(3, 4, 6, 3)`` is
    xresnet1d50, ``(3, 8, 36, 3)`` xresnet1d152, ``expansion=1`` the 18/34 variants.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        rngs: nnx.Rngs,
        in_leads: int = 12,
        layers: Sequence[int] = (3, 4, 23, 3),
        expansion: int = 4,
        stem_widths: Sequence[int] = (32, 32, 64),
        width: int = 64,
        kernel_size: int = 5,
        stem_kernel_size: int = 5,
        head_hidden: Sequence[int] = (128,),
        head_dropout: float | Sequence[float] = 0.5,
        head_batch_norm: bool = True,
    ):
        stem_in = [in_leads, *stem_widths[:-1]]
        # The strided time operations (stem conv, max-pool, the first block of stages 2-4):
        # where each feature step sits in the input (baselines.gradcam.window_centres).
        strided_stages = sum(1 for stage, n in enumerate(layers) if stage > 0 and n > 0)
        self.time_ops = ((stem_kernel_size, 2, (stem_kernel_size - 1) // 2), (3, 2, 1),
                         *[(kernel_size, 2, (kernel_size - 1) // 2)] * strided_stages)
        self.stem = nnx.List(
            [
                ConvBn(c_in, c_out, stem_kernel_size, 2 if i == 0 else 1, rngs=rngs)
                for i, (c_in, c_out) in enumerate(zip(stem_in, stem_widths))
            ]
        )
        # fastai's block sizes are [64 // expansion, 64, 64, ...] *before* expansion, so the
        # first block reads (64 // expansion) * expansion = 64 channels: the stem's output.
        out_channels = width * expansion
        in_channels = (width // expansion) * expansion
        if in_channels != stem_widths[-1]:
            raise ValueError(
                f"the stem ends with {stem_widths[-1]} channels but the first block "
                f"expects {in_channels}"
            )
        blocks = []
        for stage, num_blocks in enumerate(layers):
            for b in range(num_blocks):
                blocks.append(
                    XResBlock1d(
                        in_channels,
                        width,
                        out_channels,
                        stride=2 if (stage > 0 and b == 0) else 1,
                        kernel_size=kernel_size,
                        bottleneck=expansion != 1,
                        rngs=rngs,
                    )
                )
                in_channels = out_channels
        self.blocks = nnx.List(blocks)
        self.classifier = ConcatPoolHead(
            out_channels,
            num_classes,
            hidden=head_hidden,
            dropout=head_dropout,
            use_batch_norm=head_batch_norm,
            rngs=rngs,
        )

    def features(self, x: jax.Array) -> jax.Array:
        """``x (B, L, in_leads)`` -> last feature map ``(B, T', width * expansion)``."""
        for layer in self.stem:
            x = layer(x)
        x = max_pool_same(x, 3, stride=2)
        for block in self.blocks:
            x = block(x)
        return x

    def head(self, features: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
        """``features (B, T', 256)`` -> logits ``(B, num_classes)``."""
        return self.classifier(features, rngs=rngs)

    def __call__(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
        """``x (B, L, in_leads)`` -> logits ``(B, num_classes)``."""
        return self.head(self.features(x), rngs=rngs)
