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
