"""Initialisation of the IMN-encoder family (IMN, IMN-direct, cnn2d): PyTorch's defaults.

The paper's code leaves every Conv2d and Linear at PyTorch's default initialisation:
kernel and bias uniform within +-1/sqrt(fan_in), fan_in = C_in x kernel_h x kernel_w, so a
kernel has standard deviation 1/sqrt(3 fan_in). These tests pin that for every layer of
the three models, and keep the earlier Flax scheme reachable (``init="flax"``).
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
from flax import nnx

from baselines.cnn2d import CNN2D
from imn.models import create_model
from imn.models.imn import ECGIMN
from imn.models.layers import LeadConv


def _kernels_and_biases(model: nnx.Module) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    """``(path, kernel, bias or None)`` of every LeadConv and Linear of ``model``."""
    found = []
    for path, module in nnx.iter_graph(model):
        if isinstance(module, (LeadConv, nnx.Linear)):
            bias = None if module.bias is None else np.asarray(module.bias[...])
            found.append(("/".join(map(str, path)), np.asarray(module.kernel[...]), bias))
    return found


def _fan_in(kernel: np.ndarray) -> int:
    # LeadConv (3, kt, C_in, C_out) and Linear (C_in, C_out) alike: all axes but the last.
    return int(np.prod(kernel.shape[:-1]))


@pytest.fixture(scope="module")
def models() -> dict[str, nnx.Module]:
    # Sizes that give every layer at least ~2,000 kernel entries, so the sample std is
    # within ~2.5% of the population's (K = 32 for the 16 -> K conv; IMN-direct's dense
    # layer is large anyway).
    # Built jitted (create_model): eagerly every initialiser compiles on its own.
    return {
        name: create_model(name, num_classes=k, sampling_rate=100, input_length=64, seed=seed)
        for seed, (name, k) in enumerate((("imn", 32), ("imn_direct", 1), ("cnn2d", 32)))
    }


@pytest.mark.parametrize("name", ["imn", "imn_direct", "cnn2d"])
def test_every_kernel_and_bias_follows_pytorch_defaults(models, name):
    layers = _kernels_and_biases(models[name])
    assert len(layers) >= 4  # the encoder's three convs and at least one head
    for path, kernel, bias in layers:
        fan_in = _fan_in(kernel)
        bound = 1.0 / np.sqrt(fan_in)
        expected_std = 1.0 / np.sqrt(3 * fan_in)
        assert abs(kernel.std() / expected_std - 1) < 0.03, (path, kernel.shape, kernel.std())
        assert np.abs(kernel).max() <= bound, path
        assert np.abs(kernel).max() > 0.95 * bound, path  # uniform, filling its interval
        if bias is not None:
            assert np.abs(bias).max() <= bound, path
            assert np.any(bias != 0), f"{path}: PyTorch biases are not zero-initialised"


def test_fan_in_counts_lead_and_time_taps_like_pytorch(models):
    first = models["imn"].encoder.blocks[0].conv.kernel[...]
    assert first.shape == (3, 15, 1, 16)
    assert _fan_in(np.asarray(first)) == 1 * 3 * 15  # nn.Conv2d(1, 16, (3, 15))


def test_flax_init_stays_reachable_and_differs():
    torch_model = create_model("imn", num_classes=1, sampling_rate=100, input_length=64, seed=0)
    flax_model = create_model("imn", num_classes=1, sampling_rate=100, input_length=64, seed=0,
                              init="flax")
    kernel = np.asarray(flax_model.encoder.blocks[2].conv.kernel[...])
    # LeCun normal: std 1/sqrt(fan_in), sqrt(3) times PyTorch's, and zero biases.
    assert abs(kernel.std() * np.sqrt(_fan_in(kernel)) - 1) < 0.03
    assert np.all(np.asarray(flax_model.decoder.out.bias[...]) == 0)
    assert np.any(np.asarray(torch_model.decoder.out.bias[...]) != 0)
    with pytest.raises(ValueError, match="init must be one of"):
        ECGIMN(1, rngs=nnx.Rngs(0), init="kaiming")


def test_model_classes_default_to_pytorch_init(models):
    # The classes themselves (not only the registry) default to init="torch".
    built = nnx.jit(lambda: CNN2D(32, rngs=nnx.Rngs(2)))()
    for a, b in zip(jax.tree.leaves(nnx.state(built, nnx.Param)),
                    jax.tree.leaves(nnx.state(models["cnn2d"], nnx.Param))):
        np.testing.assert_array_equal(a, b)
