"""Reliability diagrams: how often a class is present among ECGs given probability p.

One panel: observed positive rate against mean predicted probability in equal-mass bins
(:func:`imn.train.calibration.reliability_bins`, the bins of the ECE the tables report),
the diagonal of perfect calibration, one line per series (e.g. a model raw and after
temperature scaling), its ECE in the legend; below it, how many predictions fall in each
tenth of [0, 1] (log scale), which shows a saturated model's pile-up at 0 and 1.
Single-column width (88 mm), Okabe-Ito colours, PDF + 300 dpi PNG.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from imn.plots.attribution import DOUBLE_COLUMN_MM, SINGLE_COLUMN_MM, save_figure  # noqa: E402
from imn.train.calibration import (  # noqa: E402
    DEFAULT_BINS,
    expected_calibration_error,
    reliability_bins,
)

_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
_MM = 1 / 25.4


def _draw_reliability(ax: plt.Axes, hist: plt.Axes,
                      series: Mapping[str, tuple[np.ndarray, np.ndarray]], n_bins: int,
                      *, legend: bool = True) -> dict[str, float]:
    """One reliability panel (``ax``) and its histogram of predictions (``hist``), each
    series' ECE in its legend entry when ``legend`` (a figure with one shared legend writes
    them itself). Returns the ECE of each series."""
    ax.plot([0, 1], [0, 1], color="#999999", linewidth=0.8, linestyle="--", label="perfect")
    edges = np.linspace(0, 1, 11)
    width = 0.8 / (10 * len(series))
    eces = {}
    for i, (name, (labels, probs)) in enumerate(series.items()):
        colour = _COLOURS[i % len(_COLOURS)]
        bins = reliability_bins(labels, probs, n_bins)
        eces[name] = ece = float(np.mean(expected_calibration_error(labels, probs, n_bins)))
        ax.plot(bins["confidence"], bins["frequency"], marker="o", markersize=3, linewidth=1.0,
                color=colour, label=f"{name} (ECE {ece:.3f})" if legend else name)
        counts, _ = np.histogram(np.asarray(probs).ravel(), bins=edges)
        centres = edges[:-1] + 0.05 + (i - (len(series) - 1) / 2) * width
        hist.bar(centres, counts, width=width, color=colour, align="center")
    ax.set(xlim=(0, 1), ylim=(0, 1))
    ax.tick_params(labelbottom=False)
    ax.set_aspect("auto")
    if legend:
        ax.legend(loc="upper left", fontsize=6, frameon=False)
    hist.set(xlim=(0, 1), xlabel="predicted probability")
    hist.set_yscale("symlog", linthresh=1)
    for axis in (ax, hist):
        axis.tick_params(labelsize=7)
        axis.xaxis.label.set_size(7)
        axis.yaxis.label.set_size(7)
    return eces


def _number_row(ax: plt.Axes, items: list[tuple[str, str]], gid_last: str | None = None) -> None:
    """``(text, colour)`` items in one row just above ``ax`` (under its title), after the
    word "ECE": never over the data, whichever way the curves run."""
    ax.text(0.0, 1.02, "ECE", transform=ax.transAxes, ha="left", va="bottom", fontsize=6)
    for i, (text, colour) in enumerate(items):
        ax.text(0.15 + 0.2 * i, 1.02, text, transform=ax.transAxes, ha="left", va="bottom",
                fontsize=6, color=colour, gid=gid_last if i == len(items) - 1 else None)


def _note(ax: plt.Axes, y: float, text: str, gid: str | None = None) -> None:
    ax.text(0.98, y, text, transform=ax.transAxes, ha="right", va="bottom", fontsize=6,
            color="#555555", gid=gid)


def plot_reliability(
    series: Mapping[str, tuple[np.ndarray, np.ndarray]],
    out: str | Path | None = None,
    *,
    n_bins: int = DEFAULT_BINS,
    title: str | None = None,
) -> plt.Figure:
    """Reliability diagram of several ``name -> (labels (N, K), probs (N, K))`` series
    (classes pooled). Saves ``out.pdf`` and ``out.png`` when ``out`` is given."""
    if not series:
        raise ValueError("plot_reliability needs at least one series")
    fig = plt.figure(figsize=(SINGLE_COLUMN_MM * _MM, 105 * _MM))
    grid = fig.add_gridspec(2, 1, height_ratios=(3, 1), hspace=0.08,
                            left=0.16, right=0.97, top=0.92 if title else 0.97, bottom=0.11)
    ax, hist = fig.add_subplot(grid[0]), fig.add_subplot(grid[1])
    _draw_reliability(ax, hist, series, n_bins)
    ax.set_ylabel("observed positive rate", fontsize=7)
    hist.set_ylabel("ECGs", fontsize=7)
    _note(ax, 0.02, f"{n_bins} equal-mass bins")
    if title:
        fig.suptitle(title, fontsize=8)
    if out is not None:
        save_figure(fig, out)
    return fig


def panel_sizes(panels: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]) -> str:
    """``"600 ECGs × 5 classes"`` (each distinct label shape among ``panels``' series, ``;``
    between them): what one reliability panel pools, for a figure title."""
    shapes = sorted({series["raw"][0].shape for series in panels.values()})
    return "; ".join(f"{n} ECGs" + (f" × {k} classes" if k > 1 else "") for n, k in shapes)


def plot_reliability_grid(
    panels: Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]],
    out: str | Path | None = None,
    *,
    floors: Mapping[str, float] | None = None,
    n_bins: int = DEFAULT_BINS,
    title: str | None = None,
    columns: int = 4,
) -> plt.Figure:
    """One reliability panel per ``panel title -> {series name -> (labels, probs)}``, at most
    ``columns`` side by side at double-column width (e.g. one per model; more panels wrap to
    further rows), each with its histogram below and, from ``floors``, the ECE a perfectly
    calibrated model would show on that panel's records (in brackets after the series' ECEs,
    above the panel). Saves ``out.pdf`` and ``out.png`` when ``out`` is given."""
    if not panels or not all(panels.values()):
        raise ValueError("plot_reliability_grid needs at least one panel, each with a series")
    columns = max(1, min(columns, len(panels)))
    rows = -(-len(panels) // columns)
    # Each row is 70 mm of panel and histogram, under 30 mm of title and shared legend.
    height = 30 + 70 * rows
    fig = plt.figure(figsize=(DOUBLE_COLUMN_MM * _MM, height * _MM))
    top = 1 - (22 if title else 16) / height
    # Rows apart enough for the x label above and the title and ECE row below.
    grid = fig.add_gridspec(rows, columns, hspace=0.42, wspace=0.1, left=0.07, right=0.99,
                            top=top, bottom=12 / height)
    first_hist = None
    for index, (name, series) in enumerate(panels.items()):
        row, column = divmod(index, columns)
        cell = grid[row, column].subgridspec(2, 1, height_ratios=(3, 1), hspace=0.08)
        ax = fig.add_subplot(cell[0])
        hist = fig.add_subplot(cell[1], sharey=first_hist)
        first_hist = first_hist or hist
        eces = _draw_reliability(ax, hist, series, n_bins, legend=False)
        items = [(f"{ece:.3f}", _COLOURS[i % len(_COLOURS)]) for i, ece in enumerate(eces.values())]
        if floors and name in floors:
            items.append((f"(≈{floors[name]:.3f})", "#555555"))
        _number_row(ax, items, gid_last="ece-floor" if floors and name in floors else None)
        ax.set_title(name, fontsize=7, pad=11)
        hist.set_xticks([0, 0.5, 1], ["0", "0.5", "1"])
        if column == 0:
            ax.set_ylabel("observed positive rate", fontsize=7)
            hist.set_ylabel("predictions", fontsize=7)  # ECG x class pairs
        else:
            ax.tick_params(labelleft=False)
            hist.tick_params(labelleft=False)
    # One legend for every panel (the same series in the same colours); the numbers above
    # each panel are the series' ECEs in those colours, then the calibrated floor.
    handles, labels = fig.axes[0].get_legend_handles_labels()
    if floors:
        handles.append(plt.Line2D([], [], linestyle="none"))
        labels.append("(≈ x): ECE of a calibrated model on these ECGs")
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=6, frameon=False,
               bbox_to_anchor=(0.5, top + 8 / height))
    if title:
        fig.suptitle(title, fontsize=8, y=1 - 3 / height, va="top")
    if out is not None:
        save_figure(fig, out)
    return fig


def plot_run_reliability(workdir: str | Path, out: str | Path | None = None, *,
                         split: str = "test", n_bins: int = DEFAULT_BINS) -> plt.Figure:
    """Reliability diagram of a finished run's ``split``: raw probabilities, those
    temperature-scaled with the T fitted on validation, and (for runs that saved the
    training loss's prior offset) those with the class weighting's logit shift undone
    (``predictions_{split}.npz``). A note gives the ECE a perfectly calibrated model would
    show on this many records (:func:`imn.train.calibration.ece_floor`)."""
    from imn.train.calibration import calibrated_probabilities, ece_floor
    from imn.train.run_folder import read_calibrated_predictions

    saved = read_calibrated_predictions(workdir, split)
    labels, temperature = saved["labels"], float(saved["temperature"])
    readings = calibrated_probabilities(saved["logits"], temperature, saved.get("logit_offset"))
    legend = {"raw": "raw", "T-scaled": f"T-scaled (T = {temperature:.3g}, fit on val)",
              "prior-corrected": "prior-corrected (- log class weight)"}
    series = {legend[name]: (labels, probs) for name, probs in readings.items()}
    fig = plot_reliability(series, out=None, n_bins=n_bins,
                           title=f"{Path(workdir).name}: {split}")
    floor = float(np.mean(ece_floor(readings["raw"], n_bins)["mean"]))
    _note(fig.axes[0], 0.08, f"calibrated model on {len(labels)} ECGs: ECE ≈ {floor:.3f}",
          gid="ece-floor")
    if out is not None:
        save_figure(fig, out)
    return fig
