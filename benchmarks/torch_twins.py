"""PyTorch twins of the 2-D CNN and ResNet1d-Wang baselines, for the speed benchmark.

Same architectures and parameter counts as :class:`baselines.cnn2d.CNN2D` (116,209 for
K = 1) and :class:`baselines.resnet1d.ResNet1dWang` (the PTB-XL benchmark's, 472,833 for
K = 1); the benchmark checks both counts against the Flax models in every run. Only
``benchmarks/`` and the twin tests import this module.
"""

from __future__ import annotations

import torch
from torch import nn

from torch_imn import imn_encoder


class TorchCNN2D(nn.Module):
    """IMN encoder (3 x 15 conv blocks, max-pools after blocks 2 and 3) -> global average
    -> dropout -> linear. ``forward(x (B, L, 12)) -> logits (B, K)``."""

    def __init__(self, num_classes: int = 1, widths=(16, 32, 64), kernel=(3, 15), dropout=0.2):
        super().__init__()
        self.encoder = imn_encoder(widths, kernel)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.encoder(x.transpose(1, 2).unsqueeze(1))  # (B, C, 12, L/4)
        return self.classifier(self.dropout(z.mean(dim=(2, 3))))


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    layers = [nn.Conv1d(c_in, c_out, kernel, stride, padding=(kernel - 1) // 2, bias=False),
              nn.BatchNorm1d(c_out)]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class _BasicBlock(nn.Module):
    def __init__(self, width: int, stride: int, kernels: tuple[int, int]):
        super().__init__()
        self.conv1 = _conv_bn(width, width, kernels[0], stride)
        self.conv2 = _conv_bn(width, width, kernels[1], relu=False)
        self.downsample = _conv_bn(width, width, 1, stride, relu=False) if stride != 1 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        return torch.relu(self.conv2(self.conv1(x)) + residual)


class TorchResNet1dWang(nn.Module):
    """``resnet1d_wang`` of the PTB-XL benchmark: stem conv k7 -> 128, three basic blocks
    (k5, k3; stride 2 in the 2nd and 3rd), concat-pool head BN -> dropout -> Linear(256, 128)
    -> ReLU -> BN -> dropout -> Linear(128, K). ``forward(x (B, L, 12)) -> logits (B, K)``."""

    def __init__(self, num_classes: int = 1, width: int = 128):
        super().__init__()
        self.stem = _conv_bn(12, width, 7)
        self.blocks = nn.Sequential(*[_BasicBlock(width, s, (5, 3)) for s in (1, 2, 2)])
        self.head = nn.Sequential(
            nn.BatchNorm1d(2 * width), nn.Dropout(0.25), nn.Linear(2 * width, 128), nn.ReLU(),
            nn.BatchNorm1d(128), nn.Dropout(0.5), nn.Linear(128, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.blocks(self.stem(x.transpose(1, 2)))  # (B, C, T')
        pooled = torch.cat([features.amax(dim=2), features.mean(dim=2)], dim=1)
        return self.head(pooled)
