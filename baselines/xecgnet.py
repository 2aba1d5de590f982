"""``xecgnet``: xECGNet (Yoo, Jun, Kim et al., Comput. Methods Programs Biomed. 2021).

An attention branch network (ABN; Fukui et al., CVPR 2019) for multi-label arrhythmia
classification. Architecture (channel widths, kernel 3, pooling and the branch layout from the
paper and its public code, jungsunyoo/amc-xECGNet; LeakyReLU and dropout 0.2 from the paper):

* backbone: five blocks of kernel-3 convolutions, each conv + BatchNorm + LeakyReLU, the block
  ending in max-pool(3, stride 3, 'same') and dropout 0.2; widths ``(64, 64)``, ``(128, 128)``,
  ``(256,) * 3``, ``(512,) * 3``, ``(512, 256, 128)``. Time: ``L -> ceil(L / 3)`` five times
  (``L = 1000 -> 5``, ``2880 -> 12``, ``15000 -> 62``).
* attention branch on the backbone features ``f (B, T', 128)``: BatchNorm, 1x1 conv to K
  channels + ReLU (the class *response maps* ``R (B, T', K)``); its own prediction is a 1x1
  conv K -> K, global average pooling (+ sigmoid in the loss); the attention map is a 1x1 conv
  K -> 1, BatchNorm, sigmoid: ``a (B, T')`` in (0, 1).
* perception branch on the attended features ``f * a + f``: global average pooling, Dense 512,
  Dense K (+ sigmoid in the loss), as the authors' code (no activation between the two dense
  layers).

``model(x)`` is the perception branch's logits (the prediction); :meth:`branches` returns
both branches' logits and the attention map for training (ABN's loss is the sum of both
branches' BCE; xECGNet's fine-tuning adds ``gamma * sum_t |heatmap - a|``, see
:mod:`imn.train.attention`). :meth:`attention_map` is the intrinsic explanation (method
``attention`` in :mod:`imn.explain`), and ``features`` / ``head`` (the attended features, and
pooling + the dense layers) let Grad-CAM explain it as any baseline.

Initialisation follows the authors' Keras defaults: Glorot-uniform kernels, zero biases,
BatchNorm momentum 0.99 and epsilon 1.001e-5, LeakyReLU slope 0.3 (Keras's default).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

BACKBONE_WIDTHS: tuple[tuple[int, ...], ...] = (
    (64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 256, 128),
)
KERAS_BN_MOMENTUM = 0.99
KERAS_BN_EPSILON = 1.001e-5
KERAS_LEAKY_SLOPE = 0.3


def _conv(c_in: int, c_out: int, kernel: int, *, use_bias: bool, rngs: nnx.Rngs) -> nnx.Conv:
    return nnx.Conv(c_in, c_out, kernel_size=(kernel,), padding="SAME", use_bias=use_bias,
                    kernel_init=nnx.initializers.glorot_uniform(),
                    bias_init=nnx.initializers.zeros_init(), rngs=rngs)


def _norm(channels: int, *, rngs: nnx.Rngs) -> nnx.BatchNorm:
    return nnx.BatchNorm(channels, momentum=KERAS_BN_MOMENTUM, epsilon=KERAS_BN_EPSILON, rngs=rngs)


def _dense(c_in: int, c_out: int, *, rngs: nnx.Rngs) -> nnx.Linear:
    return nnx.Linear(c_in, c_out, kernel_init=nnx.initializers.glorot_uniform(),
                      bias_init=nnx.initializers.zeros_init(), rngs=rngs)


def pooled_length(length: int, pool: int = 3, blocks: int = len(BACKBONE_WIDTHS)) -> int:
    """Time steps of the attention map for an input of ``length`` samples ('same' pooling)."""
    for _ in range(blocks):
        length = -(-length // pool)
    return length


class XECGNetOutput(NamedTuple):
    logits: jax.Array  # (B, K) perception branch
    attention_logits: jax.Array  # (B, K) attention branch's own prediction
    attention: jax.Array  # (B, T') attention map in (0, 1)
    responses: jax.Array  # (B, T', K) class response maps of the attention branch


class ConvBlock(nnx.Module):
    """Convs (+ BN + LeakyReLU), max-pool(pool, stride pool, 'same'), dropout:
    ``(B, T, c_in) -> (B, ceil(T / pool), widths[-1])``."""

    def __init__(self, c_in: int, widths: Sequence[int], *, kernel_size: int, pool: int,
                 dropout: float, leaky_slope: float, rngs: nnx.Rngs):
        channels = [c_in, *widths]
        self.convs = nnx.List([_conv(a, b, kernel_size, use_bias=True, rngs=rngs)
                               for a, b in zip(channels[:-1], channels[1:])])
        self.norms = nnx.List([_norm(b, rngs=rngs) for b in widths])
        self.dropout = nnx.Dropout(dropout, rngs=rngs)
        self.pool = pool
        self.leaky_slope = leaky_slope

    def __call__(self, x: jax.Array) -> jax.Array:
        for conv, norm in zip(self.convs, self.norms):
            x = jax.nn.leaky_relu(norm(conv(x)), self.leaky_slope)
        x = nnx.max_pool(x, (self.pool,), strides=(self.pool,), padding="SAME")
        return self.dropout(x)


class XECGNet(nnx.Module):
    """xECGNet: ``(B, L, in_leads)`` -> perception logits ``(B, num_classes)``, any length L.

    Shapes: ``features(x) (B, T', 128)`` (the attended features), ``head(features) (B, K)``,
    ``attention_map(x) (B, T')``, ``branches(x)`` an :class:`XECGNetOutput`;
    ``T' = pooled_length(L)``.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        rngs: nnx.Rngs,
        in_leads: int = 12,
        widths: Sequence[Sequence[int]] = BACKBONE_WIDTHS,
        kernel_size: int = 3,
        pool: int = 3,
        dropout: float = 0.2,
        dense: int = 512,
        leaky_slope: float = KERAS_LEAKY_SLOPE,
    ):
        self.in_leads = in_leads
        self.num_classes = num_classes
        blocks, c_in = [], in_leads
        for block_widths in widths:
            blocks.append(ConvBlock(c_in, block_widths, kernel_size=kernel_size, pool=pool,
                                    dropout=dropout, leaky_slope=leaky_slope, rngs=rngs))
            c_in = block_widths[-1]
        self.backbone = nnx.List(blocks)
        # Each block ends in a 'SAME' max-pool of ``pool``: where each feature (and attention)
        # step sits in the input (baselines.gradcam.window_centres; the first and last
        # windows are shorter than pool ** 5).
        self.time_ops = ((pool, pool, "same"),) * len(blocks)
        # attention branch
        self.attention_norm = _norm(c_in, rngs=rngs)
        self.response_conv = _conv(c_in, num_classes, 1, use_bias=False, rngs=rngs)
        self.attention_pred_conv = _conv(num_classes, num_classes, 1, use_bias=False, rngs=rngs)
        self.attention_conv = _conv(num_classes, 1, 1, use_bias=False, rngs=rngs)
        self.attention_map_norm = _norm(1, rngs=rngs)
        # perception branch
        self.dense = _dense(c_in, dense, rngs=rngs)
        self.classifier = _dense(dense, num_classes, rngs=rngs)

    def _backbone(self, x: jax.Array) -> jax.Array:
        if x.ndim != 3 or x.shape[-1] != self.in_leads:
            raise ValueError(f"XECGNet expects (batch, time, {self.in_leads}), got {x.shape}")
        for block in self.backbone:
            x = block(x)
        return x

    def _attention_branch(self, f: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``f (B, T', C)`` -> (attention logits (B, K), map (B, T'), responses (B, T', K))."""
        responses = jax.nn.relu(self.response_conv(self.attention_norm(f)))
        attention_logits = self.attention_pred_conv(responses).mean(axis=1)
        attention = jax.nn.sigmoid(self.attention_map_norm(self.attention_conv(responses)))[..., 0]
        return attention_logits, attention, responses

    def branches(self, x: jax.Array) -> XECGNetOutput:
        """Both branches and the attention map (for training): see :class:`XECGNetOutput`."""
        f = self._backbone(x)
        attention_logits, attention, responses = self._attention_branch(f)
        attended = f * attention[..., None] + f
        return XECGNetOutput(self.head(attended), attention_logits, attention, responses)

    def attention_map(self, x: jax.Array) -> jax.Array:
        """The attention map ``(B, T')`` in (0, 1): the same for every class."""
        return self._attention_branch(self._backbone(x))[1]

    def features(self, x: jax.Array) -> jax.Array:
        """The attended features ``f * a + f`` ``(B, T', C)``: what the perception branch reads."""
        f = self._backbone(x)
        attention = self._attention_branch(f)[1]
        return f * attention[..., None] + f

    def head(self, features: jax.Array) -> jax.Array:
        """``(B, T', C) -> (B, K)``: global average pooling, Dense 512, Dense K."""
        return self.classifier(self.dense(features.mean(axis=1).astype(jnp.float32)))

    def __call__(self, x: jax.Array) -> jax.Array:
        """``x (B, L, in_leads)`` -> perception logits ``(B, num_classes)``."""
        return self.head(self.features(x))
