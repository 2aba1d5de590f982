"""The paper's black-box 2-D CNN: the ECG-IMN encoder with an ordinary classification head.

Same backbone as :class:`imn.models.imn.ECGIMN` (the :class:`imn.models.layers.Encoder`
class itself, not a copy), followed by global average pooling over leads and time, dropout
and a linear layer. It is the baseline that Grad-CAM explains, so ``features`` returns the
last convolutional map with its lead axis intact.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from imn.models.layers import Encoder, dense, ecg_to_image


class CNN2D(nnx.Module):
    """IMN encoder -> global average pool -> dropout -> Linear.

    Args:
      num_classes: K.
      dropout: rate applied to the pooled features.
      widths / kernel / impl / dtype / param_dtype: as for the IMN encoder.
      in_leads: number of leads (12).
      init: ``"torch"`` (PyTorch's defaults, as in the paper's code) or ``"flax"``
        (:data:`imn.models.layers.INIT_SCHEMES`).
    Shapes:
      ``x (B, L, 12) -> logits (B, K)``; ``features(x) -> (B, L/4, 12, C)``;
      ``head(features) -> logits``; ``model(x) == head(features(x))``.

    Parameter count: 116,144 (encoder) + 65 K; 116,209 for K = 1.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        rngs: nnx.Rngs,
        dropout: float = 0.2,
        widths: tuple[int, int, int] = (16, 32, 64),
        kernel: tuple[int, int] = (3, 15),
        in_leads: int = 12,
        impl: str = "auto",
        dtype: jnp.dtype | None = None,
        param_dtype: jnp.dtype = jnp.float32,
        init: str = "torch",
    ):
        self.num_classes = num_classes
        self.in_leads = in_leads
        self.head_type = "sigmoid"
        self.encoder = Encoder(
            widths=widths, kernel=kernel, impl=impl, dtype=dtype, param_dtype=param_dtype,
            init=init, rngs=rngs,
        )
        self.dropout = nnx.Dropout(dropout, rngs=rngs)
        self.classifier = dense(widths[-1], num_classes, init=init, param_dtype=param_dtype,
                                rngs=rngs)

    def features(self, x: jax.Array) -> jax.Array:
        """The last conv map, lead-resolved: ``x (B, L, leads) -> (B, L/4, leads, C)``."""
        if x.ndim != 3 or x.shape[-1] != self.in_leads:
            raise ValueError(f"CNN2D expects (batch, time, {self.in_leads}), got {x.shape}")
        z = self.encoder(ecg_to_image(x))  # (B, leads, L/4, C)
        return jnp.swapaxes(z, 1, 2)

    def head(self, features: jax.Array) -> jax.Array:
        """``(B, T', leads, C) -> logits (B, K)``: average over time and leads, dropout, linear."""
        pooled = features.mean(axis=(1, 2)).astype(jnp.float32)
        return self.classifier(self.dropout(pooled))

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.head(self.features(x))
