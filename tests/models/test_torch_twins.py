"""The PyTorch twins the speed benchmark races against have the Flax models' sizes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the PyTorch twins need torch (pip install -e '.[bench]')")

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from torch_imn import TorchIMN, count_params  # noqa: E402
from torch_twins import TorchCNN2D, TorchResNet1dWang  # noqa: E402

from imn.models import count_params as flax_count_params  # noqa: E402
from imn.models import create_model  # noqa: E402


@pytest.mark.parametrize("name, twin", [("imn", TorchIMN), ("cnn2d", TorchCNN2D),
                                        ("resnet1d_wang", TorchResNet1dWang)])
@pytest.mark.parametrize("num_classes", [1, 5])
def test_twin_has_the_flax_models_parameter_count_and_output_shape(name, twin, num_classes):
    flax_model = create_model(name, num_classes=num_classes, sampling_rate=100, input_length=200)
    torch_model = twin(num_classes)
    assert count_params(torch_model) == flax_count_params(flax_model)
    output = torch_model(torch.zeros(2, 200, 12))
    logits = output[0] if isinstance(output, tuple) else output
    assert tuple(logits.shape) == (2, num_classes)
