"""Where in time an attribution concentrates: the lead x segment heatmap and the top-k
segments boxed on the clinical grid."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import Colormap  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from imn.data.dataset import LEADS, NUM_LEADS  # noqa: E402
from imn.plots.base import (  # noqa: E402
    as_ecg,
    axes_mm,
    check_mask,
    check_pair,
    check_rate,
    fig_mm,
    footer_caption,
    footer_legend,
    title as draw_title,
    title_mm,
)
from imn.plots.clinical import grid_figure, scale_caption, shown_windows  # noqa: E402
from imn.plots.ecg import MM_PER_INCH  # noqa: E402
from imn.plots.style import (  # noqa: E402
    DOUBLE_COLUMN_MM,
    NEGATIVE_COLOR,
    POSITIVE_COLOR,
    finish,
    magnitude_cmap,
    styled,
)


def window_grid(
    length: int, sampling_rate: float, window_s: float = 0.5, overlap: float = 0.5
) -> tuple[np.ndarray, int]:
    """Start indices of the windows fully inside ``length`` samples, and the window length.

    The window is ``round(window_s * fs)`` samples; consecutive windows start
    ``round(window * (1 - overlap))`` samples apart (at least 1).
    """
    fs = check_rate(sampling_rate)
    if not window_s > 0:
        raise ValueError(f"window_s must be positive; got {window_s!r}")
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1); got {overlap!r}")
    win = max(1, int(round(window_s * fs)))
    if win > length:
        raise ValueError(f"a {window_s:g} s window ({win} samples) is longer than the record "
                         f"({length} samples)")
    hop = max(1, int(round(win * (1 - overlap))))
    return np.arange(0, length - win + 1, hop), win


def _window_sums(x: np.ndarray, starts: np.ndarray, win: int) -> np.ndarray:
    """Sums of ``x (L, 12)`` over ``[s, s + win)`` for each start: ``(n_windows, 12)``."""
    cumulative = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)])
    return cumulative[starts + win] - cumulative[starts]


def segment_heatmap(
    attribution: np.ndarray,
    sampling_rate: float,
    *,
    window_s: float = 0.5,
    overlap: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``|attribution|`` per lead per window.

    Args:
      attribution: ``(L, 12)``.
      window_s, overlap: window length (s) and fractional overlap (0.5 s, 50%: a 0.25 s hop);
        only windows that lie fully inside the record are kept.
    Returns:
      ``values (12, n_windows)`` and ``window_starts_s (n_windows,)``.
    """
    attribution = as_ecg(attribution, "attribution")
    starts, win = window_grid(attribution.shape[0], sampling_rate, window_s, overlap)
    values = _window_sums(np.abs(attribution), starts, win) / win
    return values.T, starts / float(sampling_rate)


def lead_image_axes(
    fig: plt.Figure, image: np.ndarray, x_left: float, x_right: float, seconds: float,
    *, cmap: Colormap | str, vmin: float = 0.0, vmax: float, cbar_label: str, top_mm: float,
    bottom_mm: float = 9.0,
) -> plt.Axes:
    """A leads x time image (row 0 = lead I at the top) with a vertical colourbar whose
    label fits inside the figure."""
    fw, fh = fig_mm(fig)
    left, right = 9.0, 20.0
    ax = axes_mm(fig, left, bottom_mm, fw - left - right, fh - top_mm - bottom_mm)
    mappable = ax.imshow(image, extent=(x_left, x_right, NUM_LEADS - 0.5, -0.5), aspect="auto",
                         interpolation="nearest", cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_xlim(0, seconds)
    ax.set_yticks(range(NUM_LEADS), LEADS)
    ax.set_xlabel("time (s)", labelpad=1)
    ax.tick_params(labelsize=6, pad=1)
    cax = axes_mm(fig, fw - right + 2.5, bottom_mm, 2.0, fh - top_mm - bottom_mm)
    bar = fig.colorbar(mappable, cax=cax)
    bar.outline.set_linewidth(0.4)
    bar.set_label(cbar_label, fontsize=6, labelpad=1)
    cax.tick_params(labelsize=6, length=1.5, width=0.4, pad=1)
    return ax


@styled
def plot_segment_heatmap(
    attribution: np.ndarray,
    sampling_rate: float,
    *,
    window_s: float = 0.5,
    overlap: float = 0.5,
    title: str | None = None,
    width_mm: float = DOUBLE_COLUMN_MM,
    height_mm: float = 60.0,
    out: str | Path | None = None,
) -> plt.Figure:
    """Lead x segment heatmap of mean ``|attribution|``, divided by its largest cell so that
    heatmaps of models whose attributions differ in unit or scale read alike (leads on y,
    time in seconds on x).

    Each cell is one window, drawn one hop wide around the window's centre (windows
    overlap, so a cell stands for the window centred on it).
    """
    values, starts_s = segment_heatmap(attribution, sampling_rate, window_s=window_s,
                                       overlap=overlap)
    fs = float(sampling_rate)
    length = np.asarray(attribution).shape[0]
    starts, win = window_grid(length, fs, window_s, overlap)
    win_s = win / fs
    hop_s = (starts[1] - starts[0]) / fs if len(starts) > 1 else win_s
    fig = plt.figure(figsize=(width_mm / MM_PER_INCH, height_mm / MM_PER_INCH))
    centres = starts_s + win_s / 2
    peak = float(values.max()) or 1.0
    lead_image_axes(fig, values / peak, centres[0] - hop_s / 2, centres[-1] + hop_s / 2,
                    length / fs, cmap=magnitude_cmap(), vmax=1.0,
                    cbar_label="mean |a| / largest cell", top_mm=title_mm(title) + 1.0)
    draw_title(fig, title)
    fw, fh = fig_mm(fig)
    fig.text(1 - 2.0 / fw, 2.0 / fh, f"{win_s:g} s windows, {100 * overlap:g}% overlap; "
             f"largest cell = {peak:.3g} (attribution units)", fontsize=6, ha="right",
             va="bottom")
    return finish(fig, out)


def top_k_segments(
    attribution: np.ndarray,
    sampling_rate: float,
    *,
    k: int = 3,
    window_s: float = 0.5,
    overlap: float = 0.5,
) -> list[list[tuple[float, float, float]]]:
    """Per lead, the ``k`` non-overlapping windows of largest ``|signed sum|`` of attribution.

    Windows come from the same grid as ``segment_heatmap``. Selection is greedy by
    ``|sum|`` (ties: earlier window first), skipping any window that overlaps one already
    chosen; windows whose sum is exactly 0 are never chosen, so a lead may get fewer than k.

    Returns:
      12 lists (``LEADS`` order) of ``(start_s, end_s, signed_sum)``, largest ``|sum|`` first.
    """
    attribution = as_ecg(attribution, "attribution")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer; got {k!r}")
    fs = check_rate(sampling_rate)
    starts, win = window_grid(attribution.shape[0], fs, window_s, overlap)
    sums = _window_sums(attribution, starts, win)
    result = []
    for lead in range(NUM_LEADS):
        chosen: list[int] = []
        for i in np.argsort(-np.abs(sums[:, lead]), kind="stable"):
            if len(chosen) == k or sums[i, lead] == 0:
                break
            # Windows [s, s + win) overlap when their starts are less than a window apart.
            if all(abs(starts[i] - starts[j]) >= win for j in chosen):
                chosen.append(int(i))
        result.append([(starts[i] / fs, (starts[i] + win) / fs, float(sums[i, lead]))
                       for i in chosen])
    return result


def visible_top_k_segments(
    attribution: np.ndarray, sampling_rate: float, layout: str, *, k: int = 3,
    window_s: float = 0.5, overlap: float = 0.5, rhythm_lead: str = "II",
) -> list[list[tuple[float, float, float]]]:
    """``top_k_segments`` of each lead within the time the ``layout`` shows it (the longest
    of its panels), so every box lies whole inside a drawn panel. Same return format."""
    fs = check_rate(sampling_rate)
    shown = shown_windows(layout, attribution.shape[0], fs, rhythm_lead)
    result = []
    for lead in range(NUM_LEADS):
        start, stop = shown[lead]
        part = top_k_segments(attribution[start:stop], fs, k=k, window_s=window_s,
                              overlap=overlap)[lead]
        result.append([(s + start / fs, e + start / fs, v) for s, e, v in part])
    return result


@styled
def plot_top_segments(
    signal: np.ndarray,
    attribution: np.ndarray,
    sampling_rate: float,
    *,
    k: int = 3,
    window_s: float = 0.5,
    overlap: float = 0.5,
    layout: str = "6x2",
    title: str | None = None,
    evidence: np.ndarray | None = None,
    width_mm: float | None = DOUBLE_COLUMN_MM,
    out: str | Path | None = None,
) -> plt.Figure:
    """The ECG on the clinical grid with the top-``k`` windows of each lead boxed, chosen
    within the time the layout shows that lead (``visible_top_k_segments``).

    Red outlines: positive signed sum (the segment supports the class); blue: negative
    (refutes it). Each box's rank in its lead is written in the row's top lane above it.
    """
    signal, attribution, fs = check_pair(signal, attribution, sampling_rate)
    evidence = check_mask(evidence, signal.shape)
    segments = visible_top_k_segments(attribution, fs, layout, k=k, window_s=window_s,
                                      overlap=overlap)
    boxes = [[(s, e, POSITIVE_COLOR if v > 0 else NEGATIVE_COLOR) for s, e, v in lead]
             for lead in segments]
    labels = [[str(r + 1) for r in range(len(lead))] for lead in segments]
    fig, _, scale, _ = grid_figure(signal, fs, layout, "II", title=title, width_mm=width_mm,
                                   boxes=boxes, box_labels=labels, evidence=evidence)
    footer_caption(fig, scale_caption(fs, scale), y_mm=9.0)
    note = f"top {k} {window_s:g} s windows per lead (of the time shown) by |sum of attribution|"
    if evidence is not None:
        note += "; green: ground-truth evidence"
    footer_caption(fig, note, y_mm=2.5)
    handles = [Patch(fill=False, edgecolor=POSITIVE_COLOR, lw=0.7, label="supports (sum > 0)"),
               Patch(fill=False, edgecolor=NEGATIVE_COLOR, lw=0.7, label="refutes (sum < 0)")]
    footer_legend(fig, handles, y_mm=9.0)
    return finish(fig, out)
