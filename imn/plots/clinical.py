"""The clinical grid: 12-lead layouts at printed size and the ECG-with-attribution figure.

Geometry: one data unit of a paper axes is one millimetre of ECG paper (25 mm/s, 10 mm/mV,
1 mm minor / 5 mm major boxes in grey, so the grid does not compete with a red/blue
attribution), drawn at a uniform scale to fit the printed width; the caption states it.
Every row starts with a 1 mV x 0.2 s calibration pulse in a 10 mm margin.

How an attribution is drawn (see :func:`attribution_layers`):

* lead-specific maps: a band behind each trace, the centred moving average of the signed
  map over ``smooth_s`` (80 ms by default, stated in the caption) divided by the 99th
  percentile of its ``|value|`` on the ECG and clipped to [-1, 1], at full opacity. Signed maps use ``RdBu_r`` centred at 0 (red
  supports the class); maps that are never negative use the white-started ``YlOrRd``.
* time-only maps (identical on every lead, e.g. a 1-D Grad-CAM upsampled over time): one
  strip under the bottom row of each column, never twelve copies that look lead-specific.
* ground-truth evidence masks (synthetic ECGs): green outlines around the masked spans of
  each lead, with a solid green bar along the row's bottom edge.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.cm import ScalarMappable  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from imn.data.dataset import LEADS, NUM_LEADS  # noqa: E402
from imn.plots.base import (  # noqa: E402
    DEFAULT_SMOOTH_S,
    axes_mm,
    check_mask,
    check_pair,
    check_width,
    fig_mm,
    footer_caption,
    is_non_negative,
    is_time_only,
    lead_index,
    smooth_time,
    title as draw_title,
    title_mm,
)
from imn.plots.ecg import GAIN_MM_PER_MV, PAPER_SPEED_MM_PER_S, ROW_HEIGHT_MM, _spans  # noqa: E402
from imn.plots.ecg import MM_PER_INCH  # noqa: E402
from imn.plots.style import (  # noqa: E402
    DOUBLE_COLUMN_MM,
    EVIDENCE_COLOR,
    GRID_COLORS,
    TRACE_COLOR,
    finish,
    magnitude_cmap,
    signed_cmap,
    styled,
)

LAYOUTS: tuple[str, ...] = ("4x3+rhythm", "6x2", "12x1")
CALIBRATION_MM = 10.0  # left margin of every paper axes holding the 1 mV pulse (2 big boxes)
STRIP_MM = 6.0  # height of the time-only strip under a column
# Colours saturate at this quantile of |smoothed a| over the ECG (values beyond are clipped).
DISPLAY_QUANTILE = 0.99
# Footer under a grid figure: scale caption and colourbar (upper line), notes (lower line).
FOOTER_MM = 12.0


@dataclasses.dataclass(frozen=True)
class Panel:
    """One lead's trace on the paper: samples ``[start, stop)`` drawn from ``x0`` (mm).

    ``centre`` is the paper height (mm) of the lead's baseline; the row spans
    ``centre +- row_mm / 2``.
    """

    lead: int
    start: int
    stop: int
    x0: float
    centre: float
    row_mm: float = ROW_HEIGHT_MM


def layout_panels(
    layout: str, length: int, sampling_rate: float, rhythm_lead: str = "II"
) -> tuple[list[Panel], float, float]:
    """Panels of a clinical layout and the paper size ``(width_mm, height_mm)``.

    '4x3+rhythm': the standard print: four columns (I, II, III | aVR, aVL, aVF | V1-V3 |
    V4-V6), column ``c`` showing its own quarter of the first 10 s (2.5 s each; a quarter of
    the record if it is shorter), plus a rhythm strip of ``rhythm_lead`` over those 10 s.
    '6x2': the standard two-column print: limb leads over the first 5 s, chest leads over the
    next 5 s (halves of the record if it is shorter), so 10 s take 250 mm, not 500.
    '12x1': one row per lead, the whole record.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    rhythm = lead_index(rhythm_lead)
    mm_per_sample = PAPER_SPEED_MM_PER_S / sampling_rate
    if layout == "12x1":
        height = NUM_LEADS * ROW_HEIGHT_MM
        panels = [Panel(lead, 0, length, 0.0, height - (lead + 0.5) * ROW_HEIGHT_MM)
                  for lead in range(NUM_LEADS)]
        return panels, length * mm_per_sample, height
    columns, rows = (4, 3) if layout == "4x3+rhythm" else (2, 6)
    column = int(round(10.0 / columns * sampling_rate))
    if columns * column > length:
        column = length // columns
    if column < 1:
        raise ValueError(f"a record of {length} samples is too short for {columns} columns")
    col_mm = column * mm_per_sample
    height = (rows + (layout == "4x3+rhythm")) * ROW_HEIGHT_MM
    panels = [
        Panel(lead, c * column, (c + 1) * column, c * col_mm, height - (r + 0.5) * ROW_HEIGHT_MM)
        for c in range(columns)
        for r, lead in enumerate(range(rows * c, rows * c + rows))
    ]
    if layout == "4x3+rhythm":
        panels.append(Panel(rhythm, 0, 4 * column, 0.0, 0.5 * ROW_HEIGHT_MM))
    return panels, columns * col_mm, height


def shown_windows(layout: str, length: int, sampling_rate: float,
                  rhythm_lead: str = "II") -> dict[int, tuple[int, int]]:
    """Lead -> ``(start, stop)`` samples the layout shows it over (its longest panel)."""
    panels, _, _ = layout_panels(layout, length, sampling_rate, rhythm_lead)
    shown: dict[int, tuple[int, int]] = {}
    for p in panels:
        if p.lead not in shown or p.stop - p.start > shown[p.lead][1] - shown[p.lead][0]:
            shown[p.lead] = (p.start, p.stop)
    return shown


# ----------------------------------------------------------------------------- paper


def draw_grid(ax: plt.Axes, x0: float, x1: float, height_mm: float) -> None:
    """1 mm minor and 5 mm major grey lines over ``[x0, x1] x [0, height_mm]`` (x0, x1 on
    the 5 mm lattice)."""
    minor, major = GRID_COLORS
    for step, color, lw in ((1.0, minor, 0.25), (5.0, major, 0.5)):
        ax.vlines(np.arange(x0, x1 + 1e-6, step), 0, height_mm, colors=color, lw=lw, zorder=0)
        ax.hlines(np.arange(0, height_mm + 1e-6, step), x0, x1, colors=color, lw=lw, zorder=0)


def paper_axes(
    fig: plt.Figure, x_mm: float, y_mm: float, paper_w: float, paper_h: float, scale: float,
    *, calibration: bool = True,
) -> plt.Axes:
    """Axes whose data unit is one paper millimetre, drawn at ``scale``, with the grid.

    With ``calibration`` the axes start ``CALIBRATION_MM`` left of time 0 (x < 0 holds the
    pulses). The box is sized to exactly ``scale`` mm per unit on both axes, so time and
    voltage stay isotropic without ``set_aspect``.
    """
    margin = CALIBRATION_MM if calibration else 0.0
    ax = axes_mm(fig, x_mm, y_mm, (paper_w + margin) * scale, paper_h * scale)
    ax.set_xlim(-margin, paper_w)
    ax.set_ylim(0, paper_h)
    ax.axis("off")
    draw_grid(ax, -margin, paper_w, paper_h)
    return ax


def draw_calibration(ax: plt.Axes, centre: float) -> None:
    """A 1 mV (10 mm) x 0.2 s (5 mm) pulse on baseline ``centre``, left of time 0."""
    x = np.array([-9.0, -7.5, -7.5, -2.5, -2.5, -1.0])
    y = centre + np.array([0.0, 0.0, 1.0, 1.0, 0.0, 0.0]) * GAIN_MM_PER_MV
    ax.plot(x, y, color=TRACE_COLOR, lw=0.6, zorder=3, solid_joinstyle="miter", gid="calibration")


def scale_for(paper_w: float, width_mm: float | None, margins_mm: float = 0.0) -> float:
    return 1.0 if width_mm is None else (width_mm - margins_mm) / paper_w


def scale_caption(sampling_rate: float, scale: float) -> str:
    shown = "1:1" if abs(scale - 1.0) < 1e-9 else f"shown at {100 * scale:.0f}%"
    return f"25 mm/s, 10 mm/mV ({shown}), {sampling_rate:g} Hz; pulse: 1 mV"


# ----------------------------------------------------------------------------- attribution layers


@dataclasses.dataclass(frozen=True)
class AttributionLayers:
    """What ``draw_panels`` paints for one attribution map.

    ``band``: ``(L, 12)`` in [-1, 1] (signed) or [0, 1] (non-negative), or None for a
    time-only map; ``strip``: ``(L,)`` for a time-only map, else None; ``signed``: which
    colour map; ``smooth_s``: the moving-average window used.
    """

    band: np.ndarray | None
    strip: np.ndarray | None
    signed: bool
    smooth_s: float

    @property
    def colorbar_label(self) -> str:
        what = "a" if self.smooth_s == 0 else "smoothed a"
        return f"{what} / q{100 * DISPLAY_QUANTILE:g} |{what}|"

    @property
    def caption(self) -> str:
        parts = []
        if self.smooth_s > 0:
            parts.append(f"smoothed: {1000 * self.smooth_s:g} ms moving average; "
                         f"q{100 * DISPLAY_QUANTILE:g}: {100 * DISPLAY_QUANTILE:g}th percentile "
                         "over the ECG; clipped at ±1")
        if self.strip is not None:
            parts.append("bottom strip: time-only map (same for every lead)")
        return "; ".join(parts)


def attribution_layers(attribution: np.ndarray, sampling_rate: float,
                       smooth_s: float = DEFAULT_SMOOTH_S) -> AttributionLayers:
    """Smooth and normalise ``attribution (L, 12)`` for display and decide how to draw it."""
    signed = not is_non_negative(attribution)
    smoothed = smooth_time(attribution, sampling_rate, smooth_s)
    # A few extreme samples would otherwise leave the rest of the map near white.
    peak = float(np.quantile(np.abs(smoothed), DISPLAY_QUANTILE)) or float(
        np.max(np.abs(smoothed))) or 1.0
    smoothed = np.clip(smoothed / peak, -1.0, 1.0)
    if is_time_only(attribution):
        return AttributionLayers(None, smoothed[:, 0], signed, smooth_s)
    return AttributionLayers(smoothed, None, signed, smooth_s)


def band_rgba(values: np.ndarray, signed: bool) -> np.ndarray:
    """Opaque RGBA ``(..., 4)`` of normalised values: ``RdBu_r`` over [-1, 1] when
    ``signed``, else the white-started ``YlOrRd`` over [0, 1]."""
    if signed:
        return signed_cmap()(0.5 + 0.5 * np.clip(values, -1.0, 1.0))
    return magnitude_cmap()(np.clip(values, 0.0, 1.0))


def _draw_band(ax: plt.Axes, values: np.ndarray, signed: bool, x_left: float, x_right: float,
               y0: float, y1: float, gid: str) -> None:
    """Normalised ``values (n,)`` filling ``[x_left, x_right] x [y0, y1]``, under the grid."""
    ax.imshow(band_rgba(values, signed)[None, :, :], extent=(x_left, x_right, y0, y1),
              aspect="auto", interpolation="nearest", origin="lower", zorder=-1, gid=gid)


def colorbar(fig: plt.Figure, x_mm: float, y_mm: float, w_mm: float, label: str,
             signed: bool = True) -> plt.Axes:
    """A horizontal colourbar of the band colours ([-1, 1] or [0, 1]) with ``label`` left."""
    cax = axes_mm(fig, x_mm, y_mm, w_mm, 2.0)
    if signed:
        mappable, ticks = ScalarMappable(Normalize(-1.0, 1.0), signed_cmap()), [-1, 0, 1]
    else:
        mappable, ticks = ScalarMappable(Normalize(0.0, 1.0), magnitude_cmap()), [0, 0.5, 1]
    bar = fig.colorbar(mappable, cax=cax, orientation="horizontal", ticks=ticks)
    bar.outline.set_linewidth(0.4)
    cax.tick_params(labelsize=6, length=1.5, width=0.4, pad=1)
    fw, fh = fig_mm(fig)
    fig.text((x_mm - 1.5) / fw, (y_mm + 1.0) / fh, label, fontsize=6, ha="right", va="center")
    return cax


# ----------------------------------------------------------------------------- drawing


def draw_panels(
    ax: plt.Axes,
    signal: np.ndarray,
    panels: Sequence[Panel],
    sampling_rate: float,
    *,
    layers: AttributionLayers | None = None,
    evidence: np.ndarray | None = None,
    boxes: Sequence[Sequence[tuple[float, float, str]]] | None = None,
    box_labels: Sequence[Sequence[str]] | None = None,
    label_size: float = 7.0,
    calibration: bool = True,
) -> list[Rectangle]:
    """Draw traces (and overlays) of ``panels`` on a paper-mm axes.

    Args:
      signal: ``(L, 12)`` in mV.
      layers: an attribution prepared by ``attribution_layers``; a time-only map is drawn
        as a strip in ``[0.5, STRIP_MM - 0.5]`` mm under every column (the caller leaves
        that room below the panels).
      evidence: optional bool ``(L, 12)``: ground-truth evidence, outlined per lead.
      boxes: optional per-lead lists of ``(start_s, end_s, colour)``; each box is clipped to
        the time window of every panel showing that lead, and drawn as a thin outline.
      box_labels: optional per-lead texts (same nesting as ``boxes``) written in the row's
        top lane, above the box (so they never sit on the trace or on another box).
    Returns:
      The box rectangles drawn (not the evidence outlines, which carry gid 'evidence').
    """
    mm_per_sample = PAPER_SPEED_MM_PER_S / sampling_rate
    # One baseline per lead (its median), so a lead sits at the same height in every panel.
    baselines = np.median(signal, axis=0)
    drawn: list[Rectangle] = []
    ax.set_autoscale_on(False)  # imshow would otherwise reset the paper's limits
    if layers is not None and layers.strip is not None:
        for x0, start, stop in sorted({(p.x0, p.start, p.stop) for p in panels
                                       if p.centre == min(q.centre for q in panels)}):
            _draw_band(ax, layers.strip[start:stop], layers.signed, x0 - 0.5 * mm_per_sample,
                       x0 + (stop - start - 0.5) * mm_per_sample, 0.5, STRIP_MM - 0.5, "strip")
    for p in panels:
        n = p.stop - p.start
        x = p.x0 + np.arange(n) * mm_per_sample
        y = p.centre + (signal[p.start:p.stop, p.lead] - baselines[p.lead]) * GAIN_MM_PER_MV
        bottom, top = p.centre - p.row_mm / 2, p.centre + p.row_mm / 2
        if layers is not None and layers.band is not None:
            # Pixel i is centred on sample i's time.
            _draw_band(ax, layers.band[p.start:p.stop, p.lead], layers.signed,
                       p.x0 - 0.5 * mm_per_sample, p.x0 + (n - 0.5) * mm_per_sample, bottom,
                       top, "band")
        ax.plot(x, y, color=TRACE_COLOR, lw=0.5, zorder=3, solid_joinstyle="round")
        ax.text(p.x0 + 1.0, top - 1.0, LEADS[p.lead], fontsize=label_size, va="top",
                ha="left", zorder=5)
        if calibration and p.x0 == 0:
            draw_calibration(ax, p.centre)
        if p.start > 0:
            # The short bar a clinical print puts where one column's time window ends.
            ax.plot([p.x0, p.x0], [p.centre - 4, p.centre + 4], color=TRACE_COLOR, lw=0.8,
                    zorder=4)
        if evidence is not None:
            for s, e in _spans(evidence[p.start:p.stop, p.lead]):
                left, width = p.x0 + (s - 0.5) * mm_per_sample, (e - s) * mm_per_sample
                ax.add_patch(Rectangle((left, bottom + 0.4), width, p.row_mm - 0.8, fill=False,
                                       edgecolor=EVIDENCE_COLOR, lw=0.6, zorder=4,
                                       gid="evidence"))
                ax.add_patch(Rectangle((left, bottom + 0.4), width, 1.2, color=EVIDENCE_COLOR,
                                       lw=0, zorder=4, gid="evidence_bar"))
        if boxes is None:
            continue
        t0, t1 = p.start / sampling_rate, p.stop / sampling_rate
        for j, (start_s, end_s, colour) in enumerate(boxes[p.lead]):
            s, e = max(start_s, t0), min(end_s, t1)
            if e <= s:
                continue
            left = p.x0 + (s - t0) * PAPER_SPEED_MM_PER_S
            right = p.x0 + (e - t0) * PAPER_SPEED_MM_PER_S
            # Inset by 0.3 mm so a box ending at the panel's edge is not cut by it; the top
            # 5 mm lane of the row stays free for the lead name and the box labels.
            rect = Rectangle((left + 0.3, bottom + 1.0), right - left - 0.6, p.row_mm - 6.0,
                             fill=False, edgecolor=colour, lw=0.7, zorder=4, clip_on=False)
            ax.add_patch(rect)
            drawn.append(rect)
            if box_labels is not None:
                centre_x = (left + right) / 2
                # Keep clear of the lead name at the lane's start (7 pt "aVF" plus a gap is ~16 mm
                # wide at the usual 70% scale).
                centre_x = max(centre_x, p.x0 + 16.0)
                ax.text(centre_x, top - 1.0, box_labels[p.lead][j], fontsize=6, color=colour,
                        va="top", ha="center", zorder=5, fontweight="bold")
    return drawn


def grid_figure(
    signal: np.ndarray,
    sampling_rate: float,
    layout: str,
    rhythm_lead: str,
    *,
    title: str | None,
    width_mm: float | None,
    layers: AttributionLayers | None = None,
    evidence: np.ndarray | None = None,
    boxes: Sequence[Sequence[tuple[float, float, str]]] | None = None,
    box_labels: Sequence[Sequence[str]] | None = None,
) -> tuple[plt.Figure, plt.Axes, float, list[Panel]]:
    """A clinical-layout ECG at final size with a ``FOOTER_MM`` footer; returns (fig, ax, scale,
    panels) with the panels as drawn (lifted above the time-only strip when there is one)."""
    check_width(width_mm)
    panels, paper_w, paper_h = layout_panels(layout, signal.shape[0], sampling_rate, rhythm_lead)
    if layers is not None and layers.strip is not None:
        panels = [dataclasses.replace(p, centre=p.centre + STRIP_MM) for p in panels]
        paper_h += STRIP_MM
    scale = scale_for(paper_w + CALIBRATION_MM, width_mm)
    top, bottom = title_mm(title), FOOTER_MM
    fig_w, fig_h = (paper_w + CALIBRATION_MM) * scale, top + paper_h * scale + bottom
    fig = plt.figure(figsize=(fig_w / MM_PER_INCH, fig_h / MM_PER_INCH))
    ax = paper_axes(fig, 0.0, bottom, paper_w, paper_h, scale)
    draw_panels(ax, signal, panels, sampling_rate, layers=layers, evidence=evidence, boxes=boxes,
                box_labels=box_labels)
    draw_title(fig, title)
    return fig, ax, scale, panels


@styled
def plot_attribution_ecg(
    signal: np.ndarray,
    attribution: np.ndarray,
    sampling_rate: float,
    *,
    layout: str = "4x3+rhythm",
    title: str | None = None,
    rhythm_lead: str = "II",
    evidence: np.ndarray | None = None,
    smooth_s: float = DEFAULT_SMOOTH_S,
    width_mm: float | None = DOUBLE_COLUMN_MM,
    out: str | Path | None = None,
) -> plt.Figure:
    """12-lead ECG on the clinical grid with the attribution behind each trace.

    Args:
      signal: ``(L, 12)`` in mV. attribution: ``(L, 12)``, signed or non-negative.
      layout: '4x3+rhythm' (standard print: 4 columns of 2.5 s, rhythm strip of
        ``rhythm_lead`` at the bottom), '6x2' (2 columns of 5 s) or '12x1' (whole record).
      evidence: optional bool ``(L, 12)`` ground-truth mask, outlined in green.
      smooth_s: moving-average window of the displayed map (0 draws it sample by sample).
      width_mm: printed width (180 double column, 88 single); None for 1:1 paper scale.
      out: output stem; writes ``out.pdf`` and ``out.png`` and closes the figure.
    See the module docstring for the colours; a time-only map is drawn as one strip.
    """
    signal, attribution, fs = check_pair(signal, attribution, sampling_rate)
    evidence = check_mask(evidence, signal.shape)
    layers = attribution_layers(attribution, fs, smooth_s)
    fig, _, scale, _ = grid_figure(signal, fs, layout, rhythm_lead, title=title,
                                   width_mm=width_mm, layers=layers, evidence=evidence)
    fw, _ = fig_mm(fig)
    footer_caption(fig, scale_caption(fs, scale), y_mm=9.0)
    caption = layers.caption
    if evidence is not None:
        caption += "; green: ground-truth evidence"
    footer_caption(fig, caption, y_mm=2.5)
    colorbar(fig, fw - 42.0, 8.0, 38.0, layers.colorbar_label, signed=layers.signed)
    return finish(fig, out)
