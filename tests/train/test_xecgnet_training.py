"""xECGNet's two training stages and the two comparison systems end to end on real samples.

Unit checks of the ABN loss and the fine-tuning heatmaps against hand computations, then tiny
runs (narrowed models, the ``tiny`` preset) on the CPSC 2018 sample (with a made-up
REFERENCE.csv written here, as tests/data/test_cpsc2018.py does) and the CinC sample: train,
explain, score.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from imn.errors import RunFolderError
from flax import nnx

from baselines.gradcam import gradcam_low_resolution, upsample_time, window_centres
from baselines.xecgnet import XECGNet, pooled_length
from imn.explain import attribute
from imn.explain.run import FaithfulnessSettings, faithfulness_run, open_run
from imn.train import losses
from imn.train.attention import TARGETS_FILE, abn_auxiliary, label_heatmaps, stage_one_state
from imn.train.config import load_config
from imn.train.trainer import train_and_evaluate

NARROW_XECGNET = 'model.overrides={"widths": [[8], [8], [16], [16], [8]], "dense": 16}'
NARROW_RESNET = 'model.overrides={"layers": [1, 1, 1, 1], "widths": [8, 8, 16, 16]}'
SMALL_BUDGET = FaithfulnessSettings(steps=4, correlation_runs=6, infidelity_perturbations=3,
                                    sensitivity_samples=0, randomization=False,
                                    method_options={"gradient_shap": {"n_samples": 3}})


@pytest.fixture(scope="module")
def small_model() -> XECGNet:
    return nnx.jit(lambda: XECGNet(3, rngs=nnx.Rngs(params=0, dropout=1),
                                   widths=((8,), (8,), (16,), (16,), (8,)), dense=16))()


def test_abn_loss_is_both_branches_bce_plus_gamma_l1_to_the_heatmap(small_model):
    model = small_model
    model.eval()  # deterministic, so the hand computation sees the same outputs
    x = jax.random.normal(jax.random.key(0), (4, 300, 12))
    steps = pooled_length(300)
    targets = jax.random.uniform(jax.random.key(1), (6, steps))
    batch = {"y": jnp.array([[1, 0, 0], [0, 1, 1], [0, 0, 0], [1, 1, 0]], jnp.float32),
             "mask": jnp.array([1, 1, 1, 0], jnp.float32), "index": jnp.array([5, 0, 3, -1])}
    weight = jnp.array([1.0, 2.0, 0.5])

    def task_loss(logits, y, mask):
        return losses.weighted_bce(logits, y, weight, mask)

    @nnx.jit
    def run(m, x):
        return abn_auxiliary(0.7, 0.3, targets)(m, x, batch, task_loss), m.branches(x)

    (logits, extra), out = run(model, x)
    np.testing.assert_allclose(logits, out.logits, rtol=1e-6)
    distance = np.abs(np.asarray(targets)[[5, 0, 3]] - np.asarray(out.attention)[:3]).sum(axis=1)
    expected = 0.7 * task_loss(out.attention_logits, batch["y"], batch["mask"]) + 0.3 * distance.mean()
    np.testing.assert_allclose(extra, expected, rtol=1e-5)
    model.train()


def test_heatmaps_average_the_max_normalised_cams_of_the_true_labels(small_model):
    model = small_model
    x = np.asarray(jax.random.normal(jax.random.key(2), (3, 300, 12)))
    labels = np.array([[1, 0, 1], [0, 0, 0], [0, 1, 0]], np.float32)
    maps = label_heatmaps(model, x, labels, chunk_size=2)
    assert maps.shape == (3, pooled_length(300))
    model.eval()

    def cam(k):
        target = jnp.full((3,), k)
        head = lambda a, t: jnp.take_along_axis(model.head(a), t[:, None], 1)[:, 0]  # noqa: E731
        c = np.asarray(gradcam_low_resolution(model.features, head, jnp.asarray(x), target))
        peak = c.max(axis=1, keepdims=True)
        return np.where(peak > 0, c / np.where(peak > 0, peak, 1), 0)

    cams = [cam(k) for k in range(3)]
    np.testing.assert_allclose(maps[0], (cams[0][0] + cams[2][0]) / 2, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(maps[1], 0.0)  # no label, no heatmap
    np.testing.assert_allclose(maps[2], cams[1][2], rtol=1e-4, atol=1e-6)
    model.train()


def test_stage_two_needs_a_stage_one_run(tmp_path):
    config = load_config("configs/xecgnet.py:tiny", ["data.source=synthetic", NARROW_XECGNET,
                                                     "attention.stage=2"])
    with pytest.raises(ValueError, match="attention.init_from"):
        train_and_evaluate(config, tmp_path / "ft")
    missing = load_config("configs/xecgnet.py:tiny", ["attention.stage=2",
                                                      f"attention.init_from={tmp_path / 'none'}"])
    with pytest.raises(RunFolderError, match="train the stage-1 run first"):
        stage_one_state(missing, 5, 1000)
    # A stage-1 run of other folds (it may have trained on this run's test records) is refused
    # before anything is restored.
    other = tmp_path / "stage1_other_folds"
    other.mkdir()
    stage_one = load_config("configs/xecgnet.py:tiny", ["data.source=synthetic", NARROW_XECGNET,
                                                        "data.train_folds=1,2,3,4,5,6,7,10",
                                                        "data.test_folds=8"])
    (other / "config.json").write_text(stage_one.to_json())
    fine_tune = load_config("configs/xecgnet.py:tiny", ["data.source=synthetic", NARROW_XECGNET,
                                                        "attention.stage=2",
                                                        f"attention.init_from={other}"])
    with pytest.raises(ValueError, match="other data settings.*data.train_folds"):
        stage_one_state(fine_tune, 5, 1000)


# ---------------------------------------------------------------------------------------------
# end to end on the real samples


# Made-up labels (the sample ships without REFERENCE.csv) spread so that every split holds
# both a positive and a negative of AF and Normal. Record folds (stable_fold of the name):
# A1980 1, A1986 2, A1981 3, A1988 4, A1982/A1985 5, A1984/A1989 7, A1983/A1987 10.
CPSC_REFERENCE = {
    "A1980": (1,), "A1981": (2, 6), "A1982": (5,), "A1983": (1,), "A1984": (2, 8),
    "A1985": (7,), "A1986": (1, 3), "A1987": (2,), "A1988": (2,), "A1989": (1, 6),
}
CPSC_SPLITS = ["data.train_folds=1,2,3,4,5", "data.validation_folds=7", "data.test_folds=10"]


@pytest.fixture(scope="module")
def cpsc_folder(cpsc_root: Path, tmp_path_factory) -> Path:
    """The shared records (linked, never copied) beside a REFERENCE.csv written here."""
    folder = tmp_path_factory.mktemp("cpsc2018")
    for name in CPSC_REFERENCE:
        (folder / f"{name}.mat").symlink_to(cpsc_root / f"{name}.mat")
    lines = ["Recording,First_label,Second_label,Third_label"]
    for name, numbers in CPSC_REFERENCE.items():
        lines.append(",".join([name, *map(str, numbers), *[""] * (3 - len(numbers))]))
    (folder / "REFERENCE.csv").write_text("\n".join(lines) + "\n")
    return folder


def _check_scored(workdir: Path, methods: list[str]) -> None:
    table = json.loads((workdir / "faithfulness_test.json").read_text())
    assert [row["method"] for row in table["rows"]] == methods
    for row in table["rows"]:
        assert 0.0 <= row["deletion_auc"] <= 1.0 and 0.0 <= row["insertion_auc"] <= 1.0


@pytest.mark.slow
def test_xecgnet_both_stages_explain_and_score_on_the_cpsc_sample(cpsc_folder, tmp_path):
    data = ["data.source=cpsc2018", f"data.root={cpsc_folder}", "data.task=cpsc2018",
            *CPSC_SPLITS, "batch_size=4", NARROW_XECGNET]
    stage_one = tmp_path / "xecgnet"
    summary = train_and_evaluate(load_config("configs/xecgnet.py:tiny", data), stage_one)
    assert {"AF", "Normal"} <= set(summary["classes"])
    test = summary["test"]
    assert test["n_records"] == 2 and 0.0 <= test["subset_accuracy"] <= 1.0
    assert set(test["per_class"]["AF"]) >= {"threshold", "f1"}

    fine_tuned = tmp_path / "xecgnet_ft"
    config = load_config("configs/xecgnet.py:tiny",
                         [*data, "attention.stage=2", f"attention.init_from={stage_one}"])
    train_and_evaluate(config, fine_tuned)
    stored = np.load(fine_tuned / TARGETS_FILE)
    assert stored["heatmaps"].shape == (6, pooled_length(1000))  # six training records
    assert np.all((stored["heatmaps"] >= 0) & (stored["heatmaps"] <= 1 + 1e-6))
    assert str(stored["source"]) == str(stage_one)

    # The attention map explains the fine-tuned model; it is the model's own map, per lead.
    explained = open_run(fine_tuned, "test")
    attention = np.asarray(attribute("attention", explained.model, explained.x, explained.targets))
    model_map = nnx.jit(lambda m, x: m.attention_map(x))(explained.model, jnp.asarray(explained.x))
    assert model_map.shape == (2, pooled_length(1000))
    assert attention.shape == explained.x.shape
    np.testing.assert_allclose(attention, np.repeat(
        np.asarray(upsample_time(model_map, 1000, window_centres(1000, explained.model.time_ops)))[:, :, None],
        12, axis=2), rtol=1e-5, atol=1e-6)
    methods = ["attention", "gradcam", "random"]
    faithfulness_run(fine_tuned, methods, "test", settings=SMALL_BUDGET)
    _check_scored(fine_tuned, methods)


@pytest.mark.slow
def test_resnet34_trains_explains_and_scores_on_the_cinc_sample(cinc_root, tmp_path):
    workdir = tmp_path / "resnet34"
    config = load_config("configs/resnet34_1d.py:tiny",
                         ["data.source=cinc", f"data.root={cinc_root}", "data.task=scored",
                          NARROW_RESNET])
    summary = train_and_evaluate(config, workdir)
    assert summary["model"] == "resnet34_1d" and summary["test"]["n_records"] > 0
    assert math.isfinite(summary["test"]["subset_accuracy"])
    methods = ["gradcam", "gradient_shap", "random"]
    faithfulness_run(workdir, methods, "test", 3, settings=SMALL_BUDGET)
    _check_scored(workdir, methods)
