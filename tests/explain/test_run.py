"""`imn explain` / `imn faithfulness` on a tiny trained synthetic run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from imn.cli import main
from imn.train.config import load_config
from imn.train.trainer import train_and_evaluate

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("run")
    config = load_config(f"{REPO / 'configs/imn.py'}:tiny", ["data.source=synthetic"])
    train_and_evaluate(config, workdir)
    return workdir


def test_explain_writes_attributions_that_decompose_the_logit(tiny_run):
    assert main(["explain", "--workdir", str(tiny_run), "--method", "imn", "--n", "4"]) == 0
    saved = np.load(tiny_run / "attributions_imn_test.npz")
    assert saved["attribution"].shape == saved["x"].shape == (4, 1000, 12)
    predictions = np.load(tiny_run / "predictions_test.npz")
    # The explained class is the model's own top class for each record.
    np.testing.assert_array_equal(saved["targets"], predictions["scores"][:4].argmax(axis=1))


def test_faithfulness_table_has_every_method_metric_and_localisation(tiny_run):
    assert main(["faithfulness", "--workdir", str(tiny_run), "--methods", "imn,random",
                 "--n", "4", "--steps", "5"]) == 0
    table = json.loads((tiny_run / "faithfulness_test.json").read_text())
    assert [row["method"] for row in table["rows"]] == ["imn", "random"]
    for row in table["rows"]:
        for metric in ("deletion_auc", "insertion_auc", "aopc_morf", "faithfulness_correlation",
                       "pointing_game", "relevance_mass_accuracy", "mask_auroc"):
            assert metric in row
        assert 0.0 <= row["deletion_auc"] <= 1.0
    curves = np.load(tiny_run / "faithfulness_curves_test.npz")
    deletion = curves["imn_deletion"]
    assert deletion.shape == (4, 6)
    # Step 0 is the unperturbed record: the model's own probability for the target.
    predictions = np.load(tiny_run / "predictions_test.npz")
    scores = predictions["scores"][:4]
    np.testing.assert_allclose(deletion[:, 0], scores.max(axis=1), atol=1e-5)
    markdown = (tiny_run / "faithfulness_test.md").read_text()
    assert markdown.startswith("| method |") and "| imn |" in markdown


def test_localisation_table_has_reference_rows_and_findings(tiny_run):
    """Explaining planted findings adds the oracle and misplaced-mask rows (scored on the
    same ECGs) and one row per method and explained finding beside the overall row."""
    assert main(["faithfulness", "--workdir", str(tiny_run), "--methods", "random",
                 "--n", "8", "--steps", "3", "--targets", "evidence"]) == 0
    table = json.loads((tiny_run / "faithfulness_test.json").read_text())
    references = {row["method"]: row for row in table["reference_rows"]}
    assert set(references) == {"oracle", "misplaced_mask"}
    n = table["rows"][0]["n_with_evidence"]
    assert references["oracle"]["n"] == n > 0
    assert references["oracle"]["pointing_game"] == 1.0
    assert references["oracle"]["mask_auroc"] == pytest.approx(1.0, abs=1e-6)
    assert references["misplaced_mask"]["mask_auroc"] < 0.5
    by_finding = table["localisation_by_finding"]
    for method in ("random", "oracle", "misplaced_mask"):
        rows = {row["finding"]: row for row in by_finding if row["method"] == method}
        assert set(rows) - {"all"} <= {"QRSW", "STE", "TINV"} and len(rows) >= 2
        assert rows["all"]["n"] == n == sum(row["n"] for f, row in rows.items() if f != "all")
    markdown = (tiny_run / "localisation_test.md").read_text()
    assert "| oracle | all |" in markdown and "| misplaced_mask |" in markdown


def test_unknown_method_is_a_clear_error(tiny_run, capsys):
    assert main(["explain", "--workdir", str(tiny_run), "--method", "lime", "--n", "2"]) == 2
    assert "unknown explanation method 'lime'" in capsys.readouterr().err


def test_compile_seconds_counts_compilation_and_not_cached_calls():
    import jax
    import jax.numpy as jnp

    from imn.explain.run import compile_seconds

    @jax.jit
    def heavy(x):
        for _ in range(30):  # a program big enough that compiling it takes measurable time
            x = jnp.tanh(x @ x.T) @ x
        return x

    x = jnp.ones((64, 64))
    with compile_seconds() as first:
        heavy(x).block_until_ready()
    with compile_seconds() as second:
        heavy(x).block_until_ready()
    assert first[0] > 0.0
    assert second[0] == 0.0


def test_sensitivity_skip_leaves_nan_and_is_recorded(tiny_run):
    from imn.explain.run import FaithfulnessSettings, faithfulness_run

    settings = FaithfulnessSettings(steps=3, correlation_runs=4, infidelity_perturbations=2,
                                    sensitivity_samples=2, sensitivity_skip=("saliency",),
                                    randomization=False)
    rows = faithfulness_run(tiny_run, ["saliency", "input_x_gradient"], "test", 3, settings=settings)
    by_method = {row["method"]: row for row in rows}
    assert np.isnan(by_method["saliency"]["max_sensitivity"])
    assert np.isfinite(by_method["input_x_gradient"]["max_sensitivity"])
    assert by_method["saliency"]["explain_ms_per_ecg"] >= 0.0
    recorded = json.loads((tiny_run / "faithfulness_test.json").read_text())
    assert recorded["sensitivity_skip"] == ["saliency"] and recorded["correlation_runs"] == 4


def test_evidence_targets_explain_planted_local_findings(tiny_run):
    from imn.explain.run import open_run

    explained = open_run(tiny_run, "test", 4, targets="evidence")
    predictions = np.load(tiny_run / "predictions_test.npz")
    rows = np.searchsorted(predictions["ecg_ids"], explained.ecg_ids)
    labels = predictions["labels"][rows]
    assert len(explained.x) == 4
    # Every explained class is planted in its record and has a mask that can be pointed at.
    assert (labels[np.arange(4), explained.targets] > 0).all()
    covered = explained.evidence.mean(axis=(1, 2))
    assert ((covered > 0) & (covered < 1)).all()
    with pytest.raises(ValueError, match="unknown target policy"):
        open_run(tiny_run, "test", 2, targets="labelled")


@pytest.fixture(scope="module")
def binary_run(tmp_path_factory, ptbxl_root):
    workdir = tmp_path_factory.mktemp("binary")
    config = load_config(f"{REPO / 'configs/imn.py'}:tiny",
                         ["data.source=ptbxl", f"data.root={ptbxl_root}", "data.task=norm_vs_mi",
                          "epochs=1"])
    train_and_evaluate(config, workdir)
    return workdir


def test_binary_task_is_explained_for_the_side_the_model_predicts(binary_run):
    from imn.explain.run import FaithfulnessSettings, faithfulness_run, open_run

    explained = open_run(binary_run, "test", 6)
    scores = np.load(binary_run / "predictions_test.npz")["scores"][:6, 0]
    assert explained.classes == ("NORM", "MI")
    np.testing.assert_array_equal(explained.targets, (scores >= 0.5).astype(int))
    settings = FaithfulnessSettings(steps=3, correlation_runs=4, infidelity_perturbations=2,
                                    sensitivity_samples=0, randomization=False)
    faithfulness_run(binary_run, ["imn"], "test", 6, settings=settings)
    curves = np.load(binary_run / "faithfulness_curves_test.npz")
    # Each curve starts at the probability of the predicted side: p or 1 - p, never below 0.5.
    np.testing.assert_allclose(curves["imn_deletion"][:, 0], np.maximum(scores, 1 - scores), atol=1e-5)
    assert "n_defined" not in (binary_run / "faithfulness_test.md").read_text(), "counts are not columns"


def test_localisation_tables_count_only_local_masks_and_split_by_finding():
    """Without a trained model: four ECGs explained for QRSW, STE, STE and AFIB (whose mask
    covers the record, so it is left out of every localisation row)."""
    from imn.explain.run import ExplainedRun, localisation_scores, localisation_tables

    classes = ("AFIB", "NORM", "QRSW", "STE", "TINV")
    mask = np.zeros((4, 100, 12), bool)
    mask[0, 10:20] = True
    mask[1, 30:40, :3] = True
    mask[2, 50:60, 6:10] = True
    mask[3] = True
    attribution = np.random.default_rng(0).normal(size=mask.shape).astype(np.float32)
    explained = ExplainedRun(model=None, x=attribution, targets=np.array([2, 3, 3, 0]),
                             evidence=mask, ecg_ids=np.arange(4), background=attribution[:1],
                             classes=classes, sampling_rate=100)
    references, by_finding = localisation_tables(
        explained, {"random": localisation_scores(attribution, mask)})
    oracle = {row["method"]: row for row in references}["oracle"]
    assert oracle["n"] == 3 and oracle["pointing_game"] == 1.0
    rows = {(row["method"], row["finding"]): row for row in by_finding}
    assert set(rows) == {(m, f) for m in ("random", "oracle", "misplaced_mask")
                         for f in ("all", "QRSW", "STE")}
    assert [rows[("random", f)]["n"] for f in ("all", "QRSW", "STE")] == [3, 1, 2]
    expected = localisation_scores(attribution[1:3], mask[1:3])["mask_auroc"].mean()
    assert rows[("random", "STE")]["mask_auroc"] == pytest.approx(expected)


def test_a_broken_map_shrinks_the_defined_count_not_the_ecgs_with_evidence(tmp_path):
    """A map with a NaN on one ECG: every localisation metric is undefined there; the row
    still counts the ECGs with a local mask, says on how many each metric was averaged, and
    the per-run table gains no column for those counts."""
    from imn.explain.run import localisation_scores, method_row
    from imn.report import write_table
    from imn.reproduce.tables import LOCALISATION_METRICS, localisation_caption

    mask = np.zeros((4, 100, 12), bool)
    mask[:3, 10:20] = True
    mask[3] = True  # AFIB-like: the whole record
    attribution = np.random.default_rng(1).normal(size=mask.shape).astype(np.float32)
    attribution[1, 5, 5] = np.nan
    scores = localisation_scores(attribution, mask)
    row = method_row("saliency", 4, 0.4, scores, local_mask=np.array([True, True, True, False]))
    assert row["n_with_evidence"] == 3
    assert all(row[f"{name}_n_defined"] == 2 for name, _ in LOCALISATION_METRICS)
    table = {"model": "imn", **row, "n": row["n_with_evidence"]}
    caption = localisation_caption("synthetic", "evidence", [table])
    text = write_table([table], tmp_path / "t", [("n", "n"), *LOCALISATION_METRICS], caption=caption)[1].read_text()
    assert "(2 of 3)" in text and "(k of n)" in caption


@pytest.mark.parametrize("rate", [100, 500])
def test_insertion_starts_from_the_ecg_blurred_over_a_tenth_of_a_second(rate):
    """The insertion curve's first point is the model on the blur baseline, 0.1 s wide at
    every sampling rate (10 samples at 100 Hz, 50 at 500 Hz)."""
    import jax.numpy as jnp

    import jax

    from imn.explain.run import FaithfulnessSettings, perturbation_scores
    from imn.faithfulness.perturbation import gaussian_blur

    rng = np.random.default_rng(rate)
    x = rng.normal(size=(2, 2 * rate, 12)).astype(np.float32)
    weights = jnp.asarray(rng.normal(size=(2 * rate, 12)).astype(np.float32))

    def predict(batch):
        return jax.nn.sigmoid(jnp.sum(batch ** 2 * weights, axis=(1, 2)) / 100)[:, None]

    settings = FaithfulnessSettings(steps=4, correlation_runs=3, infidelity_perturbations=2,
                                    sensitivity_samples=0, randomization=False)
    scores = perturbation_scores(predict, x, x, np.zeros(2, np.int32), settings, sampling_rate=rate)
    expected = predict(gaussian_blur(jnp.asarray(x), 0.1 * rate))[:, 0]
    np.testing.assert_allclose(scores["insertion_curve"][:, 0], expected, rtol=1e-5)
    other = predict(gaussian_blur(jnp.asarray(x), 10.0 if rate == 500 else 50.0))[:, 0]
    assert np.max(np.abs(np.asarray(other) - scores["insertion_curve"][:, 0])) > 1e-4
