"""The model registry and the CNN2D baseline that shares the IMN encoder."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from flax import nnx

from imn.models import MODEL_NAMES, count_params, create_model
from imn.models import registry

# Pinned trainable-parameter counts (nnx.Param leaves), by an independent tally:
# IMN encoder 116,144 = 3x15 convs 1*16 + 16*32 + 32*64 (x45) + BN 2*(16+32+64);
# IMN decoder 23,136 + 210 K; bias head 65 K; CNN2D head 65 K;
# IMN-direct head 65 * K * (12 L + 1).
ENCODER = 45 * (16 + 16 * 32 + 32 * 64) + 2 * (16 + 32 + 64)
PINNED = {
    ("imn", 1): 139_490,
    ("imn", 5): 140_330,
    ("imn_softmax", 2): 139_700,
    ("imn_stable", 1): 139_490,  # same architecture as imn, another initialisation
    ("cnn2d", 1): 116_209,
    ("imn_direct", 1): 896_209,  # L = 1000 (100 Hz, 10 s)
}


def test_encoder_tally():
    assert ENCODER == 116_144


@pytest.mark.parametrize("name,num_classes", sorted(PINNED))
def test_pinned_param_counts(name, num_classes):
    model = create_model(name, num_classes=num_classes, sampling_rate=100)
    assert count_params(model) == PINNED[(name, num_classes)]


def test_pinned_counts_agree_with_formulas():
    assert PINNED[("imn", 5)] == ENCODER + 23_136 + 210 * 5
    assert PINNED[("cnn2d", 1)] == ENCODER + 65
    assert PINNED[("imn_direct", 1)] == ENCODER + 65 * (12 * 1000 + 1)


def test_count_params_counts_only_params():
    layer = nnx.Linear(3, 4, rngs=nnx.Rngs(0))
    assert count_params(layer) == 3 * 4 + 4
    norm = nnx.BatchNorm(5, rngs=nnx.Rngs(0))  # running mean/var are BatchStat
    assert count_params(norm) == 10


def test_known_names():
    assert set(MODEL_NAMES) == {
        "imn", "imn_softmax", "imn_direct", "imn_stable", "cnn2d", "inception1d", "resnet1d_wang",
        "xresnet1d101", "resnet34_1d", "xecgnet",
    }


def test_unknown_name_lists_known_ones():
    with pytest.raises(ValueError, match="unknown model 'vgg'.*imn_direct.*xresnet1d101"):
        create_model("vgg", num_classes=1, sampling_rate=100)


def test_imn_softmax_needs_two_classes_and_sets_head():
    model = create_model("imn_softmax", num_classes=2, sampling_rate=100)
    assert model.head_type == "softmax"
    with pytest.raises(ValueError, match="num_classes=2"):
        create_model("imn_softmax", num_classes=1, sampling_rate=100)
    assert create_model("imn", num_classes=1, sampling_rate=100).head_type == "sigmoid"


def test_input_length_defaults_to_ten_seconds_and_crops_pass_it():
    assert create_model("imn_direct", num_classes=1, sampling_rate=100).input_length == 1000
    assert create_model("imn_direct", num_classes=1, sampling_rate=50).input_length == 500
    cropped = create_model("imn_direct", num_classes=1, sampling_rate=100, input_length=248)
    assert cropped.input_length == 248
    with pytest.raises(ValueError, match="divisible by 4"):
        create_model("imn", num_classes=1, sampling_rate=100, input_length=250)


def test_overrides_reach_the_constructor():
    model = create_model("imn", num_classes=1, sampling_rate=100, dropout=0.35)
    assert model.dropout.rate == 0.35
    with pytest.raises(TypeError):
        create_model("imn", num_classes=1, sampling_rate=100, no_such_option=1)


def test_same_seed_same_params_different_seed_different():
    def params(seed):
        model = create_model("cnn2d", num_classes=1, sampling_rate=100, seed=seed)
        return jax.tree.leaves(nnx.state(model, nnx.Param))

    for a, b in zip(params(3), params(3)):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(params(3), params(4)))


def test_models_start_in_training_mode():
    model = create_model("imn", num_classes=1, sampling_rate=100)
    assert model.dropout.deterministic is False
    assert model.encoder.blocks[0].norm.use_running_average is False


def test_missing_baseline_module_does_not_break_imn(monkeypatch):
    broken = dict(registry._BUILDERS)
    broken["inception1d"] = registry._lazy("baselines.no_such_module", "Inception1D")
    monkeypatch.setattr(registry, "_BUILDERS", broken)
    with pytest.raises(ImportError, match="baselines.no_such_module.Inception1D"):
        create_model("inception1d", num_classes=1, sampling_rate=100)
    assert count_params(create_model("imn", num_classes=1, sampling_rate=100)) == 139_490


@pytest.mark.parametrize("name", ["inception1d", "resnet1d_wang", "xresnet1d101"])
def test_baselines_are_registered(name):
    # Abstract construction: builds the module tree without computing parameters. A broken
    # import is a failure here, never a skip.
    model = nnx.eval_shape(lambda: create_model(name, num_classes=3, sampling_rate=100))
    assert count_params(model) > 0
    assert type(model).__name__ in {"Inception1D", "ResNet1dWang", "XResNet1d101"}


# ----------------------------------------------------------------------------- CNN2D


def test_cnn2d_features_head_and_call_agree():
    model = create_model("cnn2d", num_classes=3, sampling_rate=100)
    x = jax.random.normal(jax.random.key(0), (2, 248, 12))
    model.train()
    model(x)
    model.eval()
    features = model.features(x)
    assert features.shape == (2, 62, 12, 64)  # (B, L/4, leads, C): lead-resolved
    logits = model(x)
    assert logits.shape == (2, 3)
    np.testing.assert_allclose(model.head(features), logits, rtol=1e-6, atol=1e-6)
    # the head is global average pooling + linear (dropout is off in eval mode)
    pooled = features.mean(axis=(1, 2))
    manual = pooled @ model.classifier.kernel[...] + model.classifier.bias[...]
    np.testing.assert_allclose(manual, logits, rtol=1e-5, atol=1e-5)
    assert not hasattr(model, "generate")


def test_cnn2d_reuses_the_imn_encoder_class():
    from imn.models.layers import Encoder

    cnn = create_model("cnn2d", num_classes=1, sampling_rate=100)
    imn = create_model("imn", num_classes=1, sampling_rate=100)
    assert type(cnn.encoder) is type(imn.encoder) is Encoder
    assert count_params(cnn.encoder) == count_params(imn.encoder) == ENCODER


def test_cnn2d_features_resolve_leads():
    """Lead-resolved features: perturbing lead 11 leaves the map of lead 0 untouched
    (three 3-lead convolutions reach at most 3 leads away)."""
    model = create_model("cnn2d", num_classes=1, sampling_rate=100)
    model.eval()
    x = jax.random.normal(jax.random.key(1), (1, 248, 12))
    bumped = x.at[:, :, 11].add(5.0)
    f0, f1 = model.features(x), model.features(bumped)
    np.testing.assert_allclose(f0[:, :, :8], f1[:, :, :8], rtol=0, atol=1e-6)
    assert not np.allclose(f0[:, :, 11], f1[:, :, 11])
