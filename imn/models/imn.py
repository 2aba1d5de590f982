"""ECG-IMN: a convolutional hypernetwork that writes a linear model for each ECG.

For an ECG ``x`` of shape ``(L, 12)`` the network generates weights ``W(x)`` of shape
``(K, L, 12)`` and a bias ``b(x)`` of shape ``(K,)``; the class logits are

    logit_k = sum_{t, lead} W(x)[k, t, lead] * x[t, lead] + b(x)[k]

so ``W(x) * x`` is an exact additive decomposition of each logit (the intrinsic explanation).

Two models live here:

* :class:`ECGIMN`, the paper's model (DESIGN.md section 2): encoder -> latent ``Z``
  (64 x 12 x L/4) -> transition decoder (two upsampling conv blocks and a K-channel conv)
  for ``W``, and a bias generator (global average of ``Z`` -> Linear) for ``b``.
* :class:`IMNDirect`, the paper's earlier "IMN-direct" ablation: the same encoder, then one
  dense layer from the globally pooled latent to all ``K * L * 12`` weights and ``K`` biases.

Neither model has ``features()``: they are explained by their own ``W * x``, not by
Grad-CAM. Both expose ``head_type`` (``"sigmoid"`` -> BCE, ``"softmax"`` -> CE) for the
trainer. The internal feature layout is ``(batch, lead, time, channel)``, see
:mod:`imn.models.layers`; all public arrays are channels-last ``(batch, time, lead)``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from imn.models.layers import ConvBlock, Encoder, LeadConv, check_init, dense, ecg_to_image

HEAD_TYPES = ("sigmoid", "softmax")

# ``readout_scale`` of :class:`ECGIMN`: the generated W is multiplied by 1 ("none", the
# paper), 1/sqrt(12 L) ("sqrt") or 1/(12 L) ("linear") before the read-out, L x 12 being
# the number of terms a logit sums. Anything but "none" is a deviation from the paper.
READOUT_SCALES = ("none", "sqrt", "linear")


def readout_multiplier(readout_scale: str, length: int, leads: int) -> float:
    """The factor :class:`ECGIMN` applies to its generated W for an input ``(L, leads)``."""
    if readout_scale not in READOUT_SCALES:
        raise ValueError(f"readout_scale must be one of {READOUT_SCALES}, got {readout_scale!r}")
    terms = float(length * leads)
    return {"none": 1.0, "sqrt": terms ** -0.5, "linear": 1.0 / terms}[readout_scale]


class IMNOutput(NamedTuple):
    """Everything one forward pass of an IMN produces.

    logits: ``(B, K)``; weights: ``(B, K, L, 12)``; bias: ``(B, K)``;
    ``logits == sum(weights * x[:, None], axis=(2, 3)) + bias``.
    """

    logits: jax.Array
    weights: jax.Array
    bias: jax.Array


def _check_head(head: str, num_classes: int) -> None:
    if head not in HEAD_TYPES:
        raise ValueError(f"head must be one of {HEAD_TYPES}, got {head!r}")
    if head == "softmax" and num_classes < 2:
        raise ValueError(f"a softmax head needs at least 2 classes, got num_classes={num_classes}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")


def _linear_readout(weights_internal: jax.Array, x: jax.Array) -> jax.Array:
    """``sum_{t, lead} W[b, lead, t, k] * x[b, t, lead]`` in float32 -> ``(B, K)``."""
    return jnp.einsum(
        "bltk,btl->bk", weights_internal.astype(jnp.float32), x.astype(jnp.float32)
    )


class TransitionDecoder(nnx.Module):
    """Latent ``Z`` to per-class weight maps.

    [3x3 conv C->C/2, BN, GELU, nearest x2 over time], [3x3 conv C/2->C/4, BN, GELU,
    nearest x2], 3x3 conv C/4->K with bias and no activation.

    Each upsampling is folded into the convolution that follows it (``upsample_input``,
    see :func:`imn.models.layers.polyphase_upsample_kernel`): same function, same
    parameters, no upsampled tensors in memory.

    Shapes: ``(B, leads, L/4, C) -> (B, leads, L, K)``.
    """

    def __init__(
        self,
        in_features: int,
        hidden: tuple[int, int],
        num_classes: int,
        *,
        impl: str = "auto",
        dtype: jnp.dtype | None = None,
        param_dtype: jnp.dtype = jnp.float32,
        init: str = "torch",
        out_init_scale: float = 1.0,
        rngs: nnx.Rngs,
    ):
        common = dict(impl=impl, dtype=dtype, param_dtype=param_dtype, init=init, rngs=rngs)
        self.block1 = ConvBlock(in_features, hidden[0], 3, **common)
        self.block2 = ConvBlock(hidden[0], hidden[1], 3, upsample_input=True, **common)
        self.out = LeadConv(
            hidden[1], num_classes, 3, use_bias=True, upsample_input=True,
            init_scale=out_init_scale, **common
        )

    def __call__(self, z: jax.Array) -> jax.Array:
        return self.out(self.block2(self.block1(z)))


class ECGIMN(nnx.Module):
    """The ECG-IMN of Thambawita et al. (2026).

    Args:
      num_classes: K. For ``head="softmax"`` the K logits are the categorical logits
        (the paper's variant uses K = 2).
      widths: encoder widths (16, 32, 64); the decoder uses ``widths[1], widths[0]``.
      kernel: encoder kernel (leads, time) = (3, 15); the decoder kernel is 3 x 3.
      dropout: rate of the dropout on the latent ``Z`` (feeds both decoder and bias head).
      head: ``"sigmoid"`` (independent logits, BCE) or ``"softmax"`` (CE).
      impl: how the 3 x k convolutions are computed (same function either way), see
        :class:`imn.models.layers.LeadConv`; ``"auto"`` picks the fastest for the backend.
      dtype / param_dtype: computation / storage dtype of the convolutions and norms
        (e.g. ``jnp.bfloat16`` compute on accelerators; no faster on the AVX2 test CPU);
        logits are always float32.
      init: ``"torch"`` (default: PyTorch's initialisation, as in the authors' code) or
        ``"flax"`` (LeCun-normal kernels and zero biases, this codebase's earlier default,
        whose W starts about sqrt(3) larger); see :data:`imn.models.layers.INIT_SCHEMES`.
      weight_init_scale: multiplies the initial kernel and bias of the decoder's last
        convolution, which writes ``W`` (0 starts W at zero).
      readout_scale: :data:`READOUT_SCALES`; multiplies the generated W by a constant
        before the read-out. The returned W is the scaled one, so the decomposition stays
        exact. "none" is the paper's model.

    Initial logit scale: a logit sums ``L x 12`` terms ``W * x``, and ``W(x)`` is computed
    from ``x`` and correlates with it, so the terms do not cancel like independent noise:
    the initial |logit| grows about linearly with ``L`` (not like ``sqrt(12 L)``). Measured
    with the authors' (PyTorch) initialisation on z-scored PTB-XL records in training mode:
    a median in the low hundreds at 100 Hz and in the thousands at 500 Hz, so the faithful
    model starts saturated (``imn_stable`` in :mod:`imn.models.registry`, with
    ``readout_scale="sqrt"``, is the deviation that does not: its initial median |logit| is
    about 2 at 100 Hz, growing like sqrt(L)).
    Shapes:
      ``x (B, L, 12) -> logits (B, K)``, any L divisible by 4.
      In training mode every call draws fresh dropout; use :meth:`forward` to get logits,
      W and b from one pass.

    Parameter count (``nnx.Param`` leaves): 139,490 for K = 1 and 139,280 + 210 K in general.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        rngs: nnx.Rngs,
        widths: tuple[int, int, int] = (16, 32, 64),
        kernel: tuple[int, int] = (3, 15),
        dropout: float = 0.2,
        head: str = "sigmoid",
        impl: str = "auto",
        dtype: jnp.dtype | None = None,
        param_dtype: jnp.dtype = jnp.float32,
        init: str = "torch",
        weight_init_scale: float = 1.0,
        readout_scale: str = "none",
    ):
        _check_head(head, num_classes)
        check_init(init)
        readout_multiplier(readout_scale, 4, 12)  # validates the name
        self.num_classes = num_classes
        self.head_type = head
        self.readout_scale = readout_scale
        self.encoder = Encoder(
            widths=widths, kernel=kernel, impl=impl, dtype=dtype, param_dtype=param_dtype,
            init=init, rngs=rngs,
        )
        self.dropout = nnx.Dropout(dropout, rngs=rngs)
        self.decoder = TransitionDecoder(
            widths[-1], (widths[-2], widths[-3]), num_classes, impl=impl, dtype=dtype,
            param_dtype=param_dtype, init=init, out_init_scale=weight_init_scale, rngs=rngs,
        )
        self.bias_head = dense(widths[-1], num_classes, init=init, param_dtype=param_dtype,
                               rngs=rngs)

    def _generate_internal(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``x (B, L, 12)`` -> ``(W (B, 12, L, K), b (B, K))`` in the internal layout."""
        z = self.dropout(self.encoder(ecg_to_image(x)))
        weights = self.decoder(z)
        if self.readout_scale != "none":
            weights = weights * readout_multiplier(self.readout_scale, x.shape[1], x.shape[2])
        bias = self.bias_head(z.mean(axis=(1, 2)).astype(jnp.float32))
        return weights, bias

    def forward(self, x: jax.Array) -> IMNOutput:
        """One pass giving logits, ``W`` (B, K, L, 12) and ``b`` (B, K) (for the W penalty)."""
        weights, bias = self._generate_internal(x)
        logits = _linear_readout(weights, x) + bias
        return IMNOutput(logits, jnp.transpose(weights, (0, 3, 2, 1)), bias)

    def generate(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """The linear model written for each ECG: ``(weights (B, K, L, 12), bias (B, K))``."""
        _, weights, bias = self.forward(x)
        return weights, bias

    def __call__(self, x: jax.Array) -> jax.Array:
        """``x (B, L, 12) -> logits (B, K)``."""
        weights, bias = self._generate_internal(x)
        return _linear_readout(weights, x) + bias


class IMNDirect(nnx.Module):
    """The "IMN-direct" ablation: the IMN encoder, then one dense layer that emits every
    weight of the linear model at once.

    To keep it tractable the dense layer reads the latent ``Z`` globally averaged over leads
    and time (``widths[-1]`` = 64 numbers), not the full ``Z``; it outputs
    ``K * L * 12`` weights followed by ``K`` biases. Unlike :class:`ECGIMN` the model is tied
    to one input length. ``init="torch"`` (default) initialises every layer as PyTorch
    would (the dense layer uniform within +-1/sqrt(64)); ``init="flax"`` is this codebase's
    earlier scheme, with the dense kernel at variance ``1 / (64 * L * 12)`` so that the
    initial logits (sums over ``L * 12`` terms) are O(1).

    Shapes: ``x (B, input_length, 12) -> logits (B, K)``.
    Parameter count: 116,144 (encoder) + 65 * K * (12 L + 1); 896,209 for K = 1, L = 1000.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        input_length: int,
        rngs: nnx.Rngs,
        widths: tuple[int, int, int] = (16, 32, 64),
        kernel: tuple[int, int] = (3, 15),
        dropout: float = 0.2,
        head: str = "sigmoid",
        num_leads: int = 12,
        impl: str = "auto",
        dtype: jnp.dtype | None = None,
        param_dtype: jnp.dtype = jnp.float32,
        init: str = "torch",
    ):
        _check_head(head, num_classes)
        check_init(init)
        if input_length <= 0 or input_length % 4:
            raise ValueError(f"input_length must be a positive multiple of 4, got {input_length}")
        self.num_classes = num_classes
        self.head_type = head
        self.input_length = input_length
        self.num_leads = num_leads
        self.encoder = Encoder(
            widths=widths, kernel=kernel, impl=impl, dtype=dtype, param_dtype=param_dtype,
            init=init, rngs=rngs,
        )
        self.dropout = nnx.Dropout(dropout, rngs=rngs)
        num_weights = num_classes * input_length * num_leads
        if init == "torch":
            self.readout = dense(widths[-1], num_weights + num_classes, init=init,
                                 param_dtype=param_dtype, rngs=rngs)
        else:
            self.readout = nnx.Linear(
                widths[-1],
                num_weights + num_classes,
                kernel_init=nnx.initializers.variance_scaling(
                    1.0 / (input_length * num_leads), "fan_in", "truncated_normal"
                ),
                param_dtype=param_dtype,
                rngs=rngs,
            )

    def forward(self, x: jax.Array) -> IMNOutput:
        batch, length, leads = x.shape
        if (length, leads) != (self.input_length, self.num_leads):
            raise ValueError(
                f"IMNDirect was built for inputs of shape (batch, {self.input_length}, "
                f"{self.num_leads}), got {x.shape}"
            )
        z = self.dropout(self.encoder(ecg_to_image(x)))
        out = self.readout(z.mean(axis=(1, 2)).astype(jnp.float32))
        num_weights = self.num_classes * length * leads
        weights = out[:, :num_weights].reshape(batch, self.num_classes, length, leads)
        bias = out[:, num_weights:]
        logits = jnp.einsum("bktl,btl->bk", weights, x.astype(jnp.float32)) + bias
        return IMNOutput(logits, weights, bias)

    def generate(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(weights (B, K, L, 12), bias (B, K))``."""
        _, weights, bias = self.forward(x)
        return weights, bias

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.forward(x).logits
