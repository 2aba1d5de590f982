"""The reliability diagram (imn.plots.calibration): files written at the designed size,
and the plotted points are the equal-mass bins of the ECE."""

from __future__ import annotations

import numpy as np
import pytest

from imn.plots.calibration import plot_reliability, plot_run_reliability
from imn.train.calibration import reliability_bins, sigmoid


def test_reliability_diagram_plots_the_ece_bins_and_saves_pdf_and_png(tmp_path):
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (300, 2))
    labels = (rng.random((300, 2)) < sigmoid(logits)).astype(float)
    series = {"raw": (labels, sigmoid(5 * logits)), "scaled": (labels, sigmoid(logits))}
    fig = plot_reliability(series, tmp_path / "rel", n_bins=8, title="demo")
    lines = [line for line in fig.axes[0].get_lines() if line.get_label().startswith("scaled")]
    bins = reliability_bins(labels, sigmoid(logits), 8)
    np.testing.assert_allclose(lines[0].get_xdata(), bins["confidence"])
    np.testing.assert_allclose(lines[0].get_ydata(), bins["frequency"])
    assert bins["count"].sum() == labels.size
    assert (tmp_path / "rel.pdf").stat().st_size > 0 and (tmp_path / "rel.png").stat().st_size > 0
    with pytest.raises(ValueError, match="at least one"):
        plot_reliability({})


def test_run_reliability_needs_saved_logits(tmp_path):
    np.savez(tmp_path / "predictions_test.npz", scores=np.zeros((2, 1)), labels=np.zeros((2, 1)))
    with pytest.raises(ValueError, match="logits"):
        plot_run_reliability(tmp_path)
    with pytest.raises(FileNotFoundError, match="predictions_validation"):
        plot_run_reliability(tmp_path, split="validation")


def test_run_reliability_adds_the_prior_correction_and_the_calibrated_floor(tmp_path):
    from imn.train.calibration import ece_floor

    rng = np.random.default_rng(1)
    true_logits = rng.normal(-1, 1, (120, 1))
    labels = (rng.random((120, 1)) < sigmoid(true_logits)).astype(float)
    offset = np.log([4.0])
    np.savez(tmp_path / "predictions_test.npz", labels=labels, logits=true_logits + offset,
             temperature=np.float64(1.3), logit_offset=offset)
    fig = plot_run_reliability(tmp_path, tmp_path / "rel")
    corrected = [line for line in fig.axes[0].get_lines()
                 if line.get_label().startswith("prior-corrected")]
    bins = reliability_bins(labels, sigmoid(true_logits))
    np.testing.assert_allclose(corrected[0].get_xdata(), bins["confidence"])
    note = [text for text in fig.axes[0].texts if text.get_gid() == "ece-floor"]
    floor = ece_floor(sigmoid(true_logits + offset))["mean"][0]
    assert note and f"{floor:.3f}" in note[0].get_text() and "120 ECGs" in note[0].get_text()
    assert (tmp_path / "rel.png").stat().st_size > 0


def test_panel_sizes_name_the_classes_a_panel_pools():
    from imn.plots.calibration import panel_sizes

    def series(n, k):
        return {"raw": (np.zeros((n, k)), np.zeros((n, k)))}

    assert panel_sizes({"a": series(600, 5), "b": series(600, 5)}) == "600 ECGs × 5 classes"
    assert panel_sizes({"a": series(52, 1)}) == "52 ECGs"
    assert panel_sizes({"a": series(52, 1), "b": series(72, 5)}) == "52 ECGs; 72 ECGs × 5 classes"
