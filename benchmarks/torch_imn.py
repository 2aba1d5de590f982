"""A straightforward PyTorch (eager) ECG-IMN, the yardstick for the JAX speed benchmark.

Written the way the paper's public code builds the model: the ECG as a one-channel image
``(B, 1, 12, L)`` through ``nn.Conv2d`` 3 x 15 blocks, ``MaxPool2d((1, 2))``, nearest
``nn.Upsample`` over time, a 3 x 3 decoder and a linear bias head. Same architecture and same
parameter count as :class:`imn.models.imn.ECGIMN` (139,490 for K = 1).

:func:`load_flax_weights` copies a Flax ``ECGIMN``'s parameters and batch statistics into
this model, which lets the tests check that both compute the same function.

Only the benchmarks (and an optional test) import this module; torch is not a core
dependency (``pip install ecg-imn[bench]``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def _conv_block(c_in: int, c_out: int, kernel: tuple[int, int]) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, padding="same", bias=False),
        nn.BatchNorm2d(c_out),
        nn.GELU(),  # exact (erf) GELU, PyTorch's default
    )


def imn_encoder(widths: tuple[int, int, int], kernel: tuple[int, int]) -> nn.Sequential:
    """The IMN encoder (also the 2-D CNN's): three conv blocks, max-pools (1, 2) after the
    2nd and 3rd. ``(B, 1, 12, L) -> (B, widths[-1], 12, L / 4)``."""
    w1, w2, w3 = widths
    return nn.Sequential(
        _conv_block(1, w1, kernel),
        _conv_block(w1, w2, kernel),
        nn.MaxPool2d((1, 2)),
        _conv_block(w2, w3, kernel),
        nn.MaxPool2d((1, 2)),
    )


class TorchIMN(nn.Module):
    """ECG-IMN in PyTorch. ``forward(x (B, L, 12))`` returns ``(logits (B, K),
    weights (B, K, L, 12), bias (B, K))``."""

    def __init__(
        self,
        num_classes: int = 1,
        widths: tuple[int, int, int] = (16, 32, 64),
        kernel: tuple[int, int] = (3, 15),
        dropout: float = 0.2,
    ):
        super().__init__()
        w1, w2, w3 = widths
        self.encoder = imn_encoder(widths, kernel)
        self.dropout = nn.Dropout(dropout)
        self.decoder = nn.Sequential(
            _conv_block(w3, w2, (3, 3)),
            nn.Upsample(scale_factor=(1, 2), mode="nearest"),
            _conv_block(w2, w1, (3, 3)),
            nn.Upsample(scale_factor=(1, 2), mode="nearest"),
            nn.Conv2d(w1, num_classes, (3, 3), padding="same", bias=True),
        )
        self.bias_head = nn.Linear(w3, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        image = x.transpose(1, 2).unsqueeze(1)  # (B, 1, 12, L)
        z = self.dropout(self.encoder(image))  # (B, 64, 12, L/4)
        weights = self.decoder(z)  # (B, K, 12, L)
        bias = self.bias_head(z.mean(dim=(2, 3)))
        logits = (weights * image).sum(dim=(2, 3)) + bias
        return logits, weights.transpose(2, 3), bias


def count_params(model: nn.Module) -> int:
    """Trainable parameters (BatchNorm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _conv_kernel_from_flax(kernel_hwio: np.ndarray) -> torch.Tensor:
    """LeadConv kernel ``(3, kt, C_in, C_out)`` -> ``nn.Conv2d`` weight ``(C_out, C_in, 3, kt)``."""
    return torch.from_numpy(np.ascontiguousarray(kernel_hwio.transpose(3, 2, 0, 1)))


def load_flax_weights(torch_model: TorchIMN, flax_model) -> TorchIMN:
    """Copies an ``imn.models.imn.ECGIMN``'s parameters and BN statistics into ``torch_model``.

    The PyTorch and Flax conventions differ only in layout (OIHW vs HWIO kernels,
    ``(out, in)`` vs ``(in, out)`` linear weights); BN momentum/epsilon already match.
    """

    def block(torch_block: nn.Sequential, flax_block) -> None:
        conv, norm = torch_block[0], torch_block[1]
        conv.weight.copy_(_conv_kernel_from_flax(np.asarray(flax_block.conv.kernel[...])))
        norm.weight.copy_(torch.from_numpy(np.array(flax_block.norm.scale[...])))
        norm.bias.copy_(torch.from_numpy(np.array(flax_block.norm.bias[...])))
        norm.running_mean.copy_(torch.from_numpy(np.array(flax_block.norm.mean[...])))
        norm.running_var.copy_(torch.from_numpy(np.array(flax_block.norm.var[...])))

    with torch.no_grad():
        enc = flax_model.encoder.blocks
        block(torch_model.encoder[0], enc[0])
        block(torch_model.encoder[1], enc[1])
        block(torch_model.encoder[3], enc[2])
        block(torch_model.decoder[0], flax_model.decoder.block1)
        block(torch_model.decoder[2], flax_model.decoder.block2)
        out = torch_model.decoder[4]
        out.weight.copy_(_conv_kernel_from_flax(np.asarray(flax_model.decoder.out.kernel[...])))
        out.bias.copy_(torch.from_numpy(np.array(flax_model.decoder.out.bias[...])))
        torch_model.bias_head.weight.copy_(
            torch.from_numpy(np.asarray(flax_model.bias_head.kernel[...]).T.copy())
        )
        torch_model.bias_head.bias.copy_(torch.from_numpy(np.array(flax_model.bias_head.bias[...])))
    return torch_model


if __name__ == "__main__":
    print(f"TorchIMN(K=1) parameters: {count_params(TorchIMN(1)):,}")
