"""12-lead ECG plots on clinical paper (1 mm grid, 25 mm/s, 10 mm/mV).

The physical scale is kept exact: one millimetre of paper is one millimetre of figure, so a
printed figure can be read with an ECG ruler. Optional overlays shade time spans per lead
(ground-truth evidence, or a thresholded attribution).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from imn.data.dataset import LEADS, NUM_LEADS  # noqa: E402

PAPER_SPEED_MM_PER_S = 25.0
GAIN_MM_PER_MV = 10.0
MM_PER_INCH = 25.4
# Vertical room per lead row; 30 mm holds +-1.5 mV, the usual clinical row height.
ROW_HEIGHT_MM = 30.0

_GRID_MINOR = "#f4c7c3"
_GRID_MAJOR = "#e8837a"
_TRACE = "#111111"
_OVERLAY = "#1f77b4"


def _draw_paper(
    ax: plt.Axes,
    width_mm: float,
    height_mm: float,
    *,
    colors: tuple[str, str] = (_GRID_MINOR, _GRID_MAJOR),
) -> None:
    """1 mm minor and 5 mm major grid lines over the whole axes.

    ``colors`` is (minor, major); attribution figures pass a neutral grey so that the paper's
    red does not compete with a red/blue attribution overlay.
    """
    minor, major = colors
    for step, color, lw in ((1.0, minor, 0.25), (5.0, major, 0.5)):
        ax.vlines(np.arange(0, width_mm + 1e-6, step), 0, height_mm, colors=color, lw=lw, zorder=0)
        ax.hlines(np.arange(0, height_mm + 1e-6, step), 0, width_mm, colors=color, lw=lw, zorder=0)


def _spans(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) index pairs of the True runs of a 1-D boolean array."""
    padded = np.concatenate([[False], mask.astype(bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return list(zip(edges[0::2], edges[1::2]))


def plot_ecg(
    signal: np.ndarray,
    sampling_rate: int,
    *,
    layout: str = "6x2",
    overlay: np.ndarray | None = None,
    overlay_label: str = "evidence",
    title: str | None = None,
    out: str | Path | None = None,
    dpi: int = 300,
) -> plt.Figure:
    """Draw one ECG on clinical paper.

    Args:
      signal: ``(L, 12)`` in mV, leads in ``LEADS`` order.
      sampling_rate: samples per second.
      layout: '6x2' (limb leads left, chest leads right, full record in each panel) or
        '12x1' (one row per lead).
      overlay: optional bool ``(L, 12)``; shaded spans per lead.
      title: figure title.
      out: if given, the figure is saved there (format from the suffix: .png, .pdf, .svg).
    Returns:
      The matplotlib figure (closed after saving when ``out`` is given).
    """
    signal = np.asarray(signal, dtype=np.float32)
    if signal.ndim != 2 or signal.shape[1] != NUM_LEADS:
        raise ValueError(f"expected one ECG of shape (L, {NUM_LEADS}); got {signal.shape}")
    if overlay is not None and overlay.shape != signal.shape:
        raise ValueError(f"overlay shape {overlay.shape} differs from the signal's {signal.shape}")
    if layout not in ("6x2", "12x1"):
        raise ValueError(f"unknown layout {layout!r}; expected '6x2' or '12x1'")
    rows, cols = (6, 2) if layout == "6x2" else (12, 1)

    length = signal.shape[0]
    seconds = length / sampling_rate
    panel_width_mm = seconds * PAPER_SPEED_MM_PER_S
    gap_mm = 5.0
    width_mm = cols * panel_width_mm + (cols - 1) * gap_mm
    height_mm = rows * ROW_HEIGHT_MM
    margin_mm = 8.0 if title else 3.0

    fig = plt.figure(figsize=(width_mm / MM_PER_INCH, (height_mm + margin_mm) / MM_PER_INCH))
    ax = fig.add_axes((0, 0, 1, height_mm / (height_mm + margin_mm)))
    ax.set_xlim(0, width_mm)
    ax.set_ylim(0, height_mm)
    ax.set_aspect("equal")
    ax.axis("off")
    _draw_paper(ax, width_mm, height_mm)

    time_mm = np.arange(length) / sampling_rate * PAPER_SPEED_MM_PER_S
    for lead in range(NUM_LEADS):
        col, row = divmod(lead, rows)
        x0 = col * (panel_width_mm + gap_mm)
        centre = height_mm - (row + 0.5) * ROW_HEIGHT_MM
        trace = signal[:, lead]
        # Remove the median so baseline offsets do not push a trace out of its row.
        y = centre + (trace - np.median(trace)) * GAIN_MM_PER_MV
        if overlay is not None:
            for start, stop in _spans(overlay[:, lead]):
                ax.axvspan(
                    x0 + time_mm[start],
                    x0 + time_mm[min(stop, length - 1)],
                    ymin=(centre - ROW_HEIGHT_MM / 2) / height_mm,
                    ymax=(centre + ROW_HEIGHT_MM / 2) / height_mm,
                    color=_OVERLAY,
                    alpha=0.25,
                    lw=0,
                    zorder=1,
                )
        ax.plot(x0 + time_mm, y, color=_TRACE, lw=0.6, zorder=2)
        ax.text(x0 + 1.5, centre + ROW_HEIGHT_MM * 0.3, LEADS[lead], fontsize=7, zorder=3)

    caption = f"25 mm/s, 10 mm/mV, {sampling_rate} Hz"
    if overlay is not None:
        caption += f"; shaded: {overlay_label}"
    ax.text(width_mm - 1, 1, caption, fontsize=6, ha="right", va="bottom", zorder=3)
    if title:
        fig.suptitle(title, fontsize=8, y=1 - 2.0 / (height_mm + margin_mm))
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=dpi)
        plt.close(fig)
    return fig
