"""Figures of a 12-lead ECG with a signed attribution (saliency) map.

Inputs are numpy arrays: ``signal (L, 12)`` in mV and ``attribution (L, 12)`` (signed; positive
supports the explained class), leads in ``LEADS`` order, ``sampling_rate`` in Hz.

Conventions shared by every figure:

* Figures are built at their final printed size (default 180 mm wide, a double column; pass
  ``width_mm=88`` for a single column) with every font at >= 6 pt at that size, so nothing
  has to be scaled when the PDF goes into a paper. ECG panels keep the clinical grid's
  geometry (1 mm minor / 5 mm major boxes, 25 mm/s, 10 mm/mV) but are drawn at a uniform
  scale to fit the width (``width_mm=None`` gives the exact 1:1 paper scale); the caption
  says which scale was used. Time and voltage stay isotropic, so a box is always
  0.04 s x 0.1 mV.
* The grid is grey instead of the paper's red so that it does not compete with the
  red/blue of a signed attribution.
* Signed attributions use ``RdBu_r`` (ColorBrewer, colour-blind safe) with limits symmetric
  around zero: red supports the class, blue refutes it, and the colour's opacity grows with
  ``|a|`` so weak attribution leaves the grid visible. Magnitudes ``|a|`` use the sequential
  ``YlOrRd`` (ColorBrewer, colour-blind safe) started at white, so zero is blank paper.
  Box colours are the two ends of ``RdBu_r`` or the Okabe-Ito vermilion.
* ``save_figure`` writes ``stem.pdf`` (vector) and ``stem.png`` (300 dpi) without
  ``bbox_inches='tight'``, so the PNG is exactly ``size_in * 300`` pixels.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.cm import ScalarMappable  # noqa: E402
from matplotlib.colors import Colormap, LinearSegmentedColormap, ListedColormap  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402

from imn.data.dataset import LEADS, NUM_LEADS  # noqa: E402
from imn.plots.ecg import (  # noqa: E402
    GAIN_MM_PER_MV,
    MM_PER_INCH,
    PAPER_SPEED_MM_PER_S,
    ROW_HEIGHT_MM,
    _draw_paper,
    _spans,
)

DPI = 300
SINGLE_COLUMN_MM = 88.0
DOUBLE_COLUMN_MM = 180.0
MIN_FONT_PT = 6.0
LAYOUTS: tuple[str, ...] = ("4x3+rhythm", "6x2", "12x1")

SIGNED_CMAP = "RdBu_r"
MAGNITUDE_CMAP = "YlOrRd"
POSITIVE_COLOR = "#b2182b"  # the red end of RdBu_r
NEGATIVE_COLOR = "#2166ac"  # the blue end of RdBu_r
ABNORMAL_COLOR = "#D55E00"  # Okabe-Ito vermilion
_TRACE = "#111111"
_GRID_COLORS = ("#e3e3e3", "#b5b5b5")
# Opacity of the band at |a| = max; a little below 1 so the major grid stays readable.
_BAND_ALPHA = 0.85
# The |a| background behind a trace is lightened so a black trace stays readable on it.
_BACKGROUND_ALPHA = 0.75

# Final-size typography: 7 pt body, 6 pt ticks and legends (the minimum asked of a figure).
_RC: dict[str, Any] = {
    "font.size": 7,
    "axes.titlesize": 7,
    "axes.labelsize": 7,
    "xtick.labelsize": 6,
    "ytick.labelsize": 6,
    "legend.fontsize": 6,
    "legend.title_fontsize": 6,
    "figure.titlesize": 8,
    "axes.linewidth": 0.5,
    "xtick.major.width": 0.5,
    "ytick.major.width": 0.5,
    "xtick.major.size": 2.0,
    "ytick.major.size": 2.0,
    "lines.linewidth": 1.0,
    # TrueType in the PDF keeps the text editable in a vector editor.
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
}

_F = TypeVar("_F", bound=Callable[..., Any])


def styled(func: _F) -> _F:
    """Run ``func`` under the module's final-size typography (rc parameters)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with plt.rc_context(_RC):
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


# ----------------------------------------------------------------------------- saving


def save_figure(fig: plt.Figure, stem: str | Path, *, dpi: int = DPI) -> list[Path]:
    """Write ``stem.pdf`` (vector) and ``stem.png`` (``dpi``), then close the figure.

    A ``.pdf`` or ``.png`` suffix on ``stem`` is dropped; any other dot stays part of the
    name (``fig.v2`` gives ``fig.v2.pdf``). Returns ``[pdf_path, png_path]``.
    """
    stem = Path(stem)
    if stem.suffix.lower() in (".pdf", ".png"):
        stem = stem.with_suffix("")
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.parent / f"{stem.name}.pdf", stem.parent / f"{stem.name}.png"]
    with plt.rc_context(_RC):
        for path in paths:
            # No bbox_inches="tight": the saved size must be the designed (printed) size.
            fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return paths


def _finish(fig: plt.Figure, out: str | Path | None) -> plt.Figure:
    if out is not None:
        save_figure(fig, out)
    return fig


# ----------------------------------------------------------------------------- validation


def lead_index(name: str) -> int:
    """Column of lead ``name`` in ``LEADS`` (``'avr'`` matches ``'aVR'``)."""
    if isinstance(name, str):
        for i, lead in enumerate(LEADS):
            if name == lead or name.lower() == lead.lower():
                return i
    raise ValueError(f"unknown lead {name!r}; expected one of {', '.join(LEADS)}")


def _as_ecg(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != NUM_LEADS or x.shape[0] < 2:
        raise ValueError(f"{what} must have shape (L, {NUM_LEADS}) with L >= 2; got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{what} contains NaN or infinite values")
    return x


def _check_rate(sampling_rate: float) -> float:
    if isinstance(sampling_rate, bool) or not np.isscalar(sampling_rate) or not sampling_rate > 0:
        raise ValueError(f"sampling_rate must be a positive number; got {sampling_rate!r}")
    return float(sampling_rate)


def _check_pair(
    signal: np.ndarray, attribution: np.ndarray, sampling_rate: float
) -> tuple[np.ndarray, np.ndarray, float]:
    signal = _as_ecg(signal, "signal")
    attribution = _as_ecg(attribution, "attribution")
    if attribution.shape != signal.shape:
        raise ValueError(
            f"attribution shape {attribution.shape} differs from the signal's {signal.shape}"
        )
    return signal, attribution, _check_rate(sampling_rate)


def _check_width(width_mm: float | None) -> None:
    if width_mm is not None and not width_mm > 20:
        raise ValueError(f"width_mm must be None (1:1 paper scale) or > 20 mm; got {width_mm!r}")


def normalise_signed(attribution: np.ndarray) -> np.ndarray:
    """``attribution / max|attribution|`` over the whole array (all zeros stays zeros)."""
    peak = float(np.max(np.abs(attribution))) if attribution.size else 0.0
    return attribution / peak if peak > 0 else np.zeros_like(attribution)


# ----------------------------------------------------------------------------- colours


def _signed_rgba(values: np.ndarray) -> np.ndarray:
    """RGBA ``(..., 4)`` of normalised signed values in [-1, 1]: RdBu_r, opacity ~ |v|."""
    v = np.clip(values, -1.0, 1.0)
    rgba = plt.get_cmap(SIGNED_CMAP)(0.5 + 0.5 * v)
    rgba[..., 3] = _BAND_ALPHA * np.abs(v)
    return rgba


def signed_display_cmap() -> ListedColormap:
    """The band's colours as they look over white paper (for the colourbar)."""
    rgba = _signed_rgba(np.linspace(-1.0, 1.0, 256))
    alpha = rgba[:, 3:4]
    return ListedColormap(rgba[:, :3] * alpha + (1.0 - alpha), name="RdBu_r_band")


def magnitude_cmap() -> LinearSegmentedColormap:
    """YlOrRd with its pale-yellow start replaced by white, for ``|a|`` (zero = no colour)."""
    base = plt.get_cmap(MAGNITUDE_CMAP)
    anchors = [(1.0, 1.0, 1.0)] + [base(x)[:3] for x in np.linspace(0.12, 1.0, 8)]
    return LinearSegmentedColormap.from_list("white_YlOrRd", anchors)


def _lightened(cmap: Colormap, alpha: float) -> ListedColormap:
    """``cmap`` blended over white at ``alpha`` (so a black trace stays readable on it)."""
    rgb = cmap(np.linspace(0.0, 1.0, 256))[:, :3]
    return ListedColormap(rgb * alpha + (1.0 - alpha), name=f"{cmap.name}_light")


# ----------------------------------------------------------------------------- geometry


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

    '6x2': limb leads left, chest leads right, the whole record in each panel (5 mm gap).
    '12x1': one row per lead, the whole record. '4x3+rhythm': the standard print: four
    columns (I, II, III | aVR, aVL, aVF | V1-V3 | V4-V6), column ``c`` showing its own
    quarter of the first 10 s (2.5 s each; a quarter of the record if it is shorter), plus
    a rhythm strip of ``rhythm_lead`` over those 10 s at the bottom.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    rhythm = lead_index(rhythm_lead)
    mm_per_sample = PAPER_SPEED_MM_PER_S / sampling_rate
    if layout == "4x3+rhythm":
        column = int(round(2.5 * sampling_rate))
        if 4 * column > length:
            column = length // 4
        if column < 1:
            raise ValueError(f"a record of {length} samples is too short for 4 columns")
        col_mm = column * mm_per_sample
        height = 4 * ROW_HEIGHT_MM
        panels = [
            Panel(lead, c * column, (c + 1) * column, c * col_mm,
                  height - (r + 0.5) * ROW_HEIGHT_MM)
            for c in range(4)
            for r, lead in enumerate(range(3 * c, 3 * c + 3))
        ]
        panels.append(Panel(rhythm, 0, 4 * column, 0.0, 0.5 * ROW_HEIGHT_MM))
        return panels, 4 * col_mm, height
    rows, cols = (6, 2) if layout == "6x2" else (12, 1)
    gap = 5.0
    panel_mm = length * mm_per_sample
    height = rows * ROW_HEIGHT_MM
    panels = []
    for lead in range(NUM_LEADS):
        col, row = divmod(lead, rows)
        panels.append(
            Panel(lead, 0, length, col * (panel_mm + gap), height - (row + 0.5) * ROW_HEIGHT_MM)
        )
    return panels, cols * panel_mm + (cols - 1) * gap, height


def _fig_mm(fig: plt.Figure) -> tuple[float, float]:
    w, h = fig.get_size_inches()
    return w * MM_PER_INCH, h * MM_PER_INCH


def axes_mm(fig: plt.Figure, x_mm: float, y_mm: float, w_mm: float, h_mm: float) -> plt.Axes:
    """Axes placed in millimetres from the figure's bottom-left corner."""
    fw, fh = _fig_mm(fig)
    return fig.add_axes((x_mm / fw, y_mm / fh, w_mm / fw, h_mm / fh))


def _paper_axes(
    fig: plt.Figure, x_mm: float, y_mm: float, paper_w: float, paper_h: float, scale: float
) -> plt.Axes:
    """Axes whose data unit is one paper millimetre, drawn at ``scale``, with the grid.

    The axes box is sized to exactly ``scale`` mm per unit on both axes, so time and voltage
    stay isotropic without ``set_aspect`` (which could shrink the box and break alignment).
    """
    ax = axes_mm(fig, x_mm, y_mm, paper_w * scale, paper_h * scale)
    ax.set_xlim(0, paper_w)
    ax.set_ylim(0, paper_h)
    ax.axis("off")
    _draw_paper(ax, paper_w, paper_h, colors=_GRID_COLORS)
    return ax


def _scale_for(paper_w: float, width_mm: float | None, margins_mm: float = 0.0) -> float:
    return 1.0 if width_mm is None else (width_mm - margins_mm) / paper_w


def _scale_caption(sampling_rate: float, scale: float) -> str:
    shown = "1:1" if abs(scale - 1.0) < 1e-9 else f"shown at {100 * scale:.0f}%"
    return f"25 mm/s, 10 mm/mV ({shown}), {sampling_rate:g} Hz"


# ----------------------------------------------------------------------------- drawing


def _draw_band(
    ax: plt.Axes, values: np.ndarray, x_left: float, x_right: float, y0: float, y1: float
) -> None:
    """A signed band of normalised ``values (n,)`` filling ``[x_left, x_right] x [y0, y1]``."""
    ax.imshow(
        _signed_rgba(values)[None, :, :],
        extent=(x_left, x_right, y0, y1),
        aspect="auto",
        interpolation="nearest",
        origin="lower",
        zorder=1,
    )


def draw_panels(
    ax: plt.Axes,
    signal: np.ndarray,
    panels: Sequence[Panel],
    sampling_rate: float,
    *,
    band: np.ndarray | None = None,
    boxes: Sequence[Sequence[tuple[float, float, str]]] | None = None,
    box_labels: Sequence[Sequence[str]] | None = None,
    label_size: float = 7.0,
) -> list[Rectangle]:
    """Draw traces (and overlays) of ``panels`` on a paper-mm axes.

    Args:
      signal: ``(L, 12)`` in mV.
      band: optional normalised signed ``(L, 12)`` in [-1, 1], drawn behind the traces.
      boxes: optional per-lead lists of ``(start_s, end_s, colour)``; each box is clipped to
        the time window of every panel showing that lead.
      box_labels: optional per-lead texts (same nesting as ``boxes``) written at the boxes'
        top-left corners.
    Returns:
      The box rectangles drawn.
    """
    mm_per_sample = PAPER_SPEED_MM_PER_S / sampling_rate
    # One baseline per lead (its median), so a lead sits at the same height in every panel.
    baselines = np.median(signal, axis=0)
    drawn: list[Rectangle] = []
    ax.set_autoscale_on(False)  # imshow would otherwise reset the paper's limits
    for p in panels:
        n = p.stop - p.start
        x = p.x0 + np.arange(n) * mm_per_sample
        y = p.centre + (signal[p.start:p.stop, p.lead] - baselines[p.lead]) * GAIN_MM_PER_MV
        bottom, top = p.centre - p.row_mm / 2, p.centre + p.row_mm / 2
        if band is not None:
            # Pixel i is centred on sample i's time.
            _draw_band(ax, band[p.start:p.stop, p.lead], p.x0 - 0.5 * mm_per_sample,
                       p.x0 + (n - 0.5) * mm_per_sample, bottom, top)
        ax.plot(x, y, color=_TRACE, lw=0.5, zorder=3, solid_joinstyle="round")
        ax.text(p.x0 + 1.0, top - 2.0, LEADS[p.lead], fontsize=label_size, va="top",
                ha="left", zorder=5)
        if p.start > 0:
            # The short bar a clinical print puts where one column's time window ends.
            ax.plot([p.x0, p.x0], [p.centre - 4, p.centre + 4], color=_TRACE, lw=0.8, zorder=4)
        if boxes is None:
            continue
        t0, t1 = p.start / sampling_rate, p.stop / sampling_rate
        for j, (start_s, end_s, colour) in enumerate(boxes[p.lead]):
            s, e = max(start_s, t0), min(end_s, t1)
            if e <= s:
                continue
            left = p.x0 + (s - t0) * PAPER_SPEED_MM_PER_S
            rect = Rectangle((left, bottom + 1.5), (e - s) * PAPER_SPEED_MM_PER_S,
                             p.row_mm - 3.0, fill=False, edgecolor=colour, lw=1.0, zorder=4)
            ax.add_patch(rect)
            drawn.append(rect)
            if box_labels is not None:
                ax.text(left + 0.6, top - 2.0, box_labels[p.lead][j], fontsize=6, color=colour,
                        va="top", ha="left", zorder=5, fontweight="bold")
    return drawn


def _signed_colorbar(
    fig: plt.Figure, x_mm: float, y_mm: float, w_mm: float, label: str
) -> plt.Axes:
    """A horizontal [-1, 1] colourbar of the band colours with ``label`` to its left."""
    cax = axes_mm(fig, x_mm, y_mm, w_mm, 2.0)
    bar = fig.colorbar(ScalarMappable(Normalize(-1.0, 1.0), signed_display_cmap()), cax=cax,
                       orientation="horizontal", ticks=[-1, -0.5, 0, 0.5, 1])
    bar.outline.set_linewidth(0.4)
    cax.tick_params(labelsize=6, length=1.5, width=0.4, pad=1)
    fw, fh = _fig_mm(fig)
    fig.text((x_mm - 1.5) / fw, (y_mm + 1.0) / fh, label, fontsize=6, ha="right", va="center")
    return cax


def _footer_caption(fig: plt.Figure, text: str, y_mm: float = 4.0) -> None:
    fw, fh = _fig_mm(fig)
    fig.text(2.0 / fw, y_mm / fh, text, fontsize=6, ha="left", va="center")


def _title(fig: plt.Figure, title: str | None) -> None:
    if title:
        fw, fh = _fig_mm(fig)
        fig.text(2.0 / fw, 1 - 1.0 / fh, title, fontsize=8, ha="left", va="top")


def _ecg_grid_figure(
    signal: np.ndarray,
    sampling_rate: float,
    layout: str,
    rhythm_lead: str,
    *,
    title: str | None,
    width_mm: float | None,
    band: np.ndarray | None = None,
    boxes: Sequence[Sequence[tuple[float, float, str]]] | None = None,
    box_labels: Sequence[Sequence[str]] | None = None,
) -> tuple[plt.Figure, plt.Axes, float]:
    """A clinical-layout ECG at final size with a 9 mm footer; returns (fig, ax, scale)."""
    _check_width(width_mm)
    panels, paper_w, paper_h = layout_panels(layout, signal.shape[0], sampling_rate, rhythm_lead)
    scale = _scale_for(paper_w, width_mm)
    top, bottom = (6.0 if title else 1.0), 9.0
    fig_w, fig_h = paper_w * scale, top + paper_h * scale + bottom
    fig = plt.figure(figsize=(fig_w / MM_PER_INCH, fig_h / MM_PER_INCH))
    ax = _paper_axes(fig, 0.0, bottom, paper_w, paper_h, scale)
    draw_panels(ax, signal, panels, sampling_rate, band=band, boxes=boxes, box_labels=box_labels)
    _title(fig, title)
    return fig, ax, scale


# ----------------------------------------------------------------------------- 1. ECG + attribution


@styled
def plot_attribution_ecg(
    signal: np.ndarray,
    attribution: np.ndarray,
    sampling_rate: float,
    *,
    layout: str = "4x3+rhythm",
    title: str | None = None,
    rhythm_lead: str = "II",
    width_mm: float | None = DOUBLE_COLUMN_MM,
    out: str | Path | None = None,
) -> plt.Figure:
    """12-lead ECG on the clinical grid with the signed attribution as a band behind each trace.

    Args:
      signal: ``(L, 12)`` in mV. attribution: ``(L, 12)``, signed.
      layout: '4x3+rhythm' (standard print: 4 columns of 2.5 s, rhythm strip of
        ``rhythm_lead`` at the bottom), '6x2' or '12x1' (whole record per lead).
      width_mm: printed width (180 double column, 88 single); None for 1:1 paper scale.
      out: output stem; writes ``out.pdf`` and ``out.png`` and closes the figure.
    The band is ``attribution / max|attribution|`` over the whole ECG (all leads, all time),
    coloured with RdBu_r in [-1, 1] (red supports the class, blue refutes it).
    """
    signal, attribution, fs = _check_pair(signal, attribution, sampling_rate)
    fig, _, scale = _ecg_grid_figure(signal, fs, layout, rhythm_lead, title=title,
                                     width_mm=width_mm, band=normalise_signed(attribution))
    fw, _ = _fig_mm(fig)
    _footer_caption(fig, _scale_caption(fs, scale))
    _signed_colorbar(fig, fw - 42.0, 4.0, 38.0, "attribution / max |a|")
    return _finish(fig, out)


# ----------------------------------------------------------------------------- 2. methods


def _resolve_leads(leads: Sequence[str] | str | None) -> list[int]:
    if leads is None:
        leads = ("II", "V2", "V5")
    elif isinstance(leads, str):
        leads = LEADS if leads == "all" else (leads,)
    idx = [lead_index(name) for name in leads]
    if not idx:
        raise ValueError("leads must name at least one lead")
    return idx


@styled
def plot_methods_side_by_side(
    signal: np.ndarray,
    attributions: Mapping[str, np.ndarray],
    sampling_rate: float,
    *,
    leads: Sequence[str] | str | None = None,
    time_window: tuple[float, float] | None = None,
    title: str | None = None,
    width_mm: float | None = DOUBLE_COLUMN_MM,
    columns: int = 4,
    out: str | Path | None = None,
) -> plt.Figure:
    """The same ECG once per method (a grid of at most ``columns`` panels per row, in the
    order given), attribution bands overlaid.

    Args:
      signal: ``(L, 12)`` in mV.
      attributions: method name -> signed ``(L, 12)``; each normalised by its own max |a|
        over the whole ECG (so the colours compare where a method looks, not how much).
      leads: lead names (rows); default ('II', 'V2', 'V5'); 'all' for the 12 leads.
      time_window: ``(t0, t1)`` in seconds shown in every panel; default the first 4 s
        (a longer window would shrink the grid too far once split over several columns).
      width_mm: printed width of the whole figure; None for 1:1 paper scale.
      columns: panels per row (8 methods in one row of a 180 mm figure would be drawn at a
        fifth of paper scale, with colliding titles).
    """
    signal = _as_ecg(signal, "signal")
    fs = _check_rate(sampling_rate)
    if not attributions:
        raise ValueError("attributions must hold at least one method")
    if isinstance(columns, bool) or not isinstance(columns, int) or columns < 1:
        raise ValueError(f"columns must be a positive integer, got {columns!r}")
    normed = {}
    for name, a in attributions.items():
        a = _as_ecg(a, f"attribution of {name!r}")
        if a.shape != signal.shape:
            raise ValueError(f"attribution of {name!r} has shape {a.shape}; "
                             f"the signal's is {signal.shape}")
        normed[name] = normalise_signed(a)
    rows = _resolve_leads(leads)
    length = signal.shape[0]
    seconds = length / fs
    t0, t1 = (0.0, min(seconds, 4.0)) if time_window is None else map(float, time_window)
    start, stop = int(round(t0 * fs)), int(round(t1 * fs))
    if not (0 <= start < stop <= length):
        raise ValueError(
            f"time_window {time_window!r} must lie inside the record (0, {seconds:g}) s"
        )
    _check_width(width_mm)

    n = min(len(normed), columns)  # panels per row
    grid_rows = -(-len(normed) // n)
    gap, row_gap, top, bottom = 4.0, 6.0, (10.0 if title else 5.0), 9.0
    panel_w = (stop - start) / fs * PAPER_SPEED_MM_PER_S
    paper_h = len(rows) * ROW_HEIGHT_MM
    scale = _scale_for(n * panel_w, width_mm, (n - 1) * gap)
    fig_w = n * panel_w * scale + (n - 1) * gap
    fig_h = top + grid_rows * paper_h * scale + (grid_rows - 1) * row_gap + bottom
    fig = plt.figure(figsize=(fig_w / MM_PER_INCH, fig_h / MM_PER_INCH))
    panels = [Panel(lead, start, stop, 0.0, paper_h - (r + 0.5) * ROW_HEIGHT_MM)
              for r, lead in enumerate(rows)]
    for j, (name, band) in enumerate(normed.items()):
        row, column = divmod(j, n)
        x = column * (panel_w * scale + gap)
        y = bottom + (grid_rows - 1 - row) * (paper_h * scale + row_gap)
        ax = _paper_axes(fig, x, y, panel_w, paper_h, scale)
        draw_panels(ax, signal, panels, fs, band=band)
        ax.set_title(name, fontsize=7, pad=2)
    _title(fig, title)
    _footer_caption(fig, f"{t0:g}-{t1:g} s; " + _scale_caption(fs, scale))
    _signed_colorbar(fig, fig_w - 42.0, 4.0, 38.0, "attribution / max |a| per method")
    return _finish(fig, out)


# ----------------------------------------------------------------------------- 3. segment heatmap


def window_grid(
    length: int, sampling_rate: float, window_s: float = 0.5, overlap: float = 0.5
) -> tuple[np.ndarray, int]:
    """Start indices of the windows fully inside ``length`` samples, and the window length.

    The window is ``round(window_s * fs)`` samples; consecutive windows start
    ``round(window * (1 - overlap))`` samples apart (at least 1).
    """
    fs = _check_rate(sampling_rate)
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
    attribution = _as_ecg(attribution, "attribution")
    starts, win = window_grid(attribution.shape[0], sampling_rate, window_s, overlap)
    values = _window_sums(np.abs(attribution), starts, win) / win
    return values.T, starts / float(sampling_rate)


def _lead_image_axes(
    fig: plt.Figure, image: np.ndarray, x_left: float, x_right: float, seconds: float,
    *, cmap: Colormap | str, vmax: float, cbar_label: str, top_mm: float,
) -> plt.Axes:
    """A leads x time image (row 0 = lead I at the top) with a vertical colourbar."""
    fw, fh = _fig_mm(fig)
    left, right, bottom = 9.0, 18.0, 9.0
    ax = axes_mm(fig, left, bottom, fw - left - right, fh - top_mm - bottom)
    mappable = ax.imshow(image, extent=(x_left, x_right, NUM_LEADS - 0.5, -0.5), aspect="auto",
                         interpolation="nearest", cmap=cmap, vmin=0.0, vmax=vmax)
    ax.set_xlim(0, seconds)
    ax.set_yticks(range(NUM_LEADS), LEADS)
    ax.set_xlabel("time (s)", labelpad=1)
    ax.tick_params(labelsize=6, pad=1)
    cax = axes_mm(fig, fw - right + 3.0, bottom, 2.0, fh - top_mm - bottom)
    bar = fig.colorbar(mappable, cax=cax)
    bar.outline.set_linewidth(0.4)
    bar.set_label(cbar_label, fontsize=6, labelpad=2)
    cax.tick_params(labelsize=6, length=1.5, width=0.4, pad=1)
    bar.formatter.set_powerlimits((-2, 3))
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
    """Lead x segment heatmap of mean ``|attribution|`` (leads on y, time in seconds on x).

    Each cell is one window, drawn one hop wide around the window's centre (windows
    overlap, so a cell stands for the window centred on it). Colours: ``magnitude_cmap``
    from 0 to the largest value.
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
    _lead_image_axes(fig, values, centres[0] - hop_s / 2, centres[-1] + hop_s / 2, length / fs,
                     cmap=magnitude_cmap(), vmax=float(values.max()) or 1.0,
                     cbar_label="mean |attribution|", top_mm=6.0 if title else 2.0)
    _title(fig, title)
    fw, fh = _fig_mm(fig)
    fig.text(1 - 2.0 / fw, 2.0 / fh, f"{win_s:g} s windows, {100 * overlap:g}% overlap",
             fontsize=6, ha="right", va="bottom")
    return _finish(fig, out)


# ----------------------------------------------------------------------------- 4. top-k segments


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
    attribution = _as_ecg(attribution, "attribution")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer; got {k!r}")
    fs = _check_rate(sampling_rate)
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
    width_mm: float | None = DOUBLE_COLUMN_MM,
    out: str | Path | None = None,
) -> plt.Figure:
    """The ECG on the clinical grid with its ``top_k_segments`` boxed per lead.

    Red boxes: positive signed sum (the segment supports the class); blue: negative
    (refutes it). Each box is numbered by its rank in its lead. Default layout '6x2' shows
    the whole record per lead, so every box is visible ('4x3+rhythm' clips boxes to the
    columns' windows).
    """
    signal, attribution, fs = _check_pair(signal, attribution, sampling_rate)
    segments = top_k_segments(attribution, fs, k=k, window_s=window_s, overlap=overlap)
    boxes = [[(s, e, POSITIVE_COLOR if v > 0 else NEGATIVE_COLOR) for s, e, v in lead]
             for lead in segments]
    labels = [[str(r + 1) for r in range(len(lead))] for lead in segments]
    fig, _, scale = _ecg_grid_figure(signal, fs, layout, "II", title=title, width_mm=width_mm,
                                     boxes=boxes, box_labels=labels)
    _footer_caption(fig, f"top {k} {window_s:g} s windows per lead by |sum of attribution|; "
                    + _scale_caption(fs, scale))
    handles = [Patch(fill=False, edgecolor=POSITIVE_COLOR, lw=1.0, label="supports (sum > 0)"),
               Patch(fill=False, edgecolor=NEGATIVE_COLOR, lw=1.0, label="refutes (sum < 0)")]
    _footer_legend(fig, handles)
    return _finish(fig, out)


def _footer_legend(fig: plt.Figure, handles: list[Patch]) -> None:
    fw, fh = _fig_mm(fig)
    fig.legend(handles=handles, loc="center right", bbox_to_anchor=(1 - 1.0 / fw, 4.0 / fh),
               ncol=len(handles), frameon=False, fontsize=6, handlelength=1.5,
               columnspacing=1.2, borderaxespad=0.0)


# ----------------------------------------------------------------------------- 5. lead focus


def _lead_focus_figure(
    signal: np.ndarray,
    attribution: np.ndarray,
    fs: float,
    lead: str,
    *,
    title: str | None,
    width_mm: float | None,
    spans: Sequence[tuple[float, float]] = (),
) -> plt.Figure:
    """One lead, large, on the grid with its band; the raw attribution below; optional spans."""
    _check_width(width_mm)
    li = lead_index(lead)
    length = signal.shape[0]
    seconds = length / fs
    trace = signal[:, li] - np.median(signal[:, li])
    # Tall enough for the trace's largest excursion (+3 mm), in whole 5 mm boxes, >= 30 mm.
    half = max(np.max(np.abs(trace)) * GAIN_MM_PER_MV + 3.0, ROW_HEIGHT_MM / 2)
    paper_h = 2 * 5.0 * np.ceil(half / 5.0)
    paper_w = seconds * PAPER_SPEED_MM_PER_S
    left, right, top, gap, attr_h, bottom = 13.0, 3.0, 7.0, 3.0, 22.0, 8.0
    scale = _scale_for(paper_w, width_mm, left + right)
    fig_w = paper_w * scale + left + right
    fig_h = top + paper_h * scale + gap + attr_h + bottom
    fig = plt.figure(figsize=(fig_w / MM_PER_INCH, fig_h / MM_PER_INCH))
    ax = _paper_axes(fig, left, bottom + attr_h + gap, paper_w, paper_h, scale)
    panel = Panel(li, 0, length, 0.0, paper_h / 2, row_mm=paper_h)
    boxes = [[] for _ in range(NUM_LEADS)]
    boxes[li] = [(s, e, ABNORMAL_COLOR) for s, e in spans]
    draw_panels(ax, signal, [panel], fs, band=normalise_signed(attribution), boxes=boxes,
                label_size=8.0)

    ax2 = axes_mm(fig, left, bottom, paper_w * scale, attr_h)
    t = np.arange(length) / fs
    a = attribution[:, li]
    ax2.fill_between(t, a, 0, where=a > 0, interpolate=True, color=POSITIVE_COLOR, lw=0,
                     alpha=0.8)
    ax2.fill_between(t, a, 0, where=a < 0, interpolate=True, color=NEGATIVE_COLOR, lw=0,
                     alpha=0.8)
    ax2.plot(t, a, color=_TRACE, lw=0.3)
    ax2.axhline(0, color="0.4", lw=0.4)
    for s, e in spans:
        ax2.axvspan(s, e, color=ABNORMAL_COLOR, alpha=0.15, lw=0)
    peak = float(np.max(np.abs(a))) or 1.0
    ax2.set_ylim(-1.08 * peak, 1.08 * peak)
    ax2.set_xlim(0, seconds)
    ax2.set_xlabel("time (s)", labelpad=1)
    ax2.set_ylabel(f"attribution ({LEADS[li]})", labelpad=1)
    ax2.spines[["top", "right"]].set_visible(False)
    ax2.tick_params(labelsize=6, pad=1)
    ax2.yaxis.get_major_formatter().set_powerlimits((-2, 3))
    ax2.yaxis.get_offset_text().set_fontsize(6)

    _title(fig, title)
    fw, fh = _fig_mm(fig)
    _signed_colorbar(fig, fw - 41.0, fh - 4.5, 38.0, "attribution / max |a| of the ECG")
    fig.text(left / fw, (bottom + attr_h + gap - 0.5) / fh, _scale_caption(fs, scale),
             fontsize=6, ha="left", va="top")
    return fig


@styled
def plot_lead_focus(
    signal: np.ndarray,
    attribution: np.ndarray,
    sampling_rate: float,
    *,
    lead: str = "II",
    title: str | None = None,
    width_mm: float | None = DOUBLE_COLUMN_MM,
    out: str | Path | None = None,
) -> plt.Figure:
    """One lead in detail: the trace on the grid with the signed band (normalised by the
    max |a| of the whole ECG, so it compares with the 12-lead view), and below it, on the
    same time axis, the raw attribution of that lead (red above zero, blue below)."""
    signal, attribution, fs = _check_pair(signal, attribution, sampling_rate)
    fig = _lead_focus_figure(signal, attribution, fs, lead, title=title, width_mm=width_mm)
    return _finish(fig, out)


# ----------------------------------------------------------------------------- 6. ECG-XPLAIM views


def abnormal_spans(
    attribution: np.ndarray,
    sampling_rate: float,
    *,
    quantile: float = 0.9,
    smooth_s: float = 0.04,
) -> list[list[tuple[float, float]]]:
    """Contiguous spans, per lead, where smoothed ``|attribution|`` exceeds a threshold.

    ``|a|`` is smoothed per lead by a centred moving average of ``round(smooth_s * fs)``
    samples (at least 1; zero padding at the ends); the threshold is the ``quantile`` of
    the smoothed values over the whole ECG (all leads), so a lead with little attribution
    gets no span. A sample is abnormal when strictly above the threshold (an all-zero
    attribution has none).

    Returns:
      12 lists (``LEADS`` order) of ``(start_s, end_s)``, ``end_s`` exclusive
      (``stop_index / fs``).
    """
    attribution = _as_ecg(attribution, "attribution")
    fs = _check_rate(sampling_rate)
    if not 0 <= quantile <= 1:
        raise ValueError(f"quantile must be in [0, 1]; got {quantile!r}")
    if not smooth_s >= 0:
        raise ValueError(f"smooth_s must be >= 0; got {smooth_s!r}")
    width = max(1, int(round(smooth_s * fs)))
    kernel = np.ones(width) / width
    smoothed = np.stack([np.convolve(np.abs(attribution[:, i]), kernel, mode="same")
                         for i in range(NUM_LEADS)], axis=1)
    threshold = np.quantile(smoothed, quantile)
    return [[(start / fs, stop / fs) for start, stop in _spans(smoothed[:, i] > threshold)]
            for i in range(NUM_LEADS)]


def _quick_figure(signal: np.ndarray, attribution: np.ndarray, fs: float, width_mm: float,
                  title: str | None) -> plt.Figure:
    """XPLAIM (a): 12 leads stacked on plain axes over a |a| heat background."""
    length = signal.shape[0]
    centred = signal - np.median(signal, axis=0)
    # One spacing for all leads, from a robust amplitude range, so the voltage scale is shared.
    spacing = max(1.0, float(np.max(np.percentile(centred, 99.5, axis=0)
                                    - np.percentile(centred, 0.5, axis=0))))
    magnitude = np.abs(attribution)
    image = (magnitude / (magnitude.max() or 1.0)).T
    fig = plt.figure(figsize=(width_mm / MM_PER_INCH, 120.0 / MM_PER_INCH))
    ax = _lead_image_axes(fig, image, -0.5 / fs, (length - 0.5) / fs, length / fs,
                          cmap=_lightened(magnitude_cmap(), _BACKGROUND_ALPHA), vmax=1.0,
                          cbar_label="|attribution| / max |a|", top_mm=6.0 if title else 3.0)
    t = np.arange(length) / fs
    # Lead i sits at y = i (row i of the image), one spacing tall, positive voltage upward.
    for i in range(NUM_LEADS):
        ax.plot(t, i - centred[:, i] / spacing, color=_TRACE, lw=0.4)
    ax.set_ylim(NUM_LEADS - 0.5, -0.5)
    fw, fh = _fig_mm(fig)
    fig.text(1 - 18.0 / fw, 1.5 / fh, f"row height {spacing:.2g} mV", fontsize=6, ha="right",
             va="bottom")
    _title(fig, title)
    return fig


def _heatmap_figure(attribution: np.ndarray, fs: float, width_mm: float,
                    title: str | None) -> plt.Figure:
    """XPLAIM (c): leads x time image of |a| / max |a| at the sampling resolution."""
    length = attribution.shape[0]
    magnitude = np.abs(attribution)
    fig = plt.figure(figsize=(width_mm / MM_PER_INCH, 60.0 / MM_PER_INCH))
    _lead_image_axes(fig, (magnitude / (magnitude.max() or 1.0)).T, -0.5 / fs,
                     (length - 0.5) / fs, length / fs, cmap=magnitude_cmap(), vmax=1.0,
                     cbar_label="|a| / max |a|", top_mm=6.0 if title else 2.0)
    _title(fig, title)
    return fig


@styled
def xplaim_figures(
    signal: np.ndarray,
    attribution: np.ndarray,
    sampling_rate: float,
    *,
    lead: str = "II",
    threshold_quantile: float = 0.9,
    smooth_s: float = 0.04,
    layout: str = "6x2",
    width_mm: float = DOUBLE_COLUMN_MM,
) -> dict[str, plt.Figure]:
    """ECG-XPLAIM's four views as open figures: 'quick', 'fine', 'heatmap', 'lead'.

    (a) quick: 12 leads stacked on plain axes over a ``|a|`` heat background;
    (b) fine: the clinical grid with ``abnormal_spans`` boxed (vermilion);
    (c) heatmap: leads x time ``|a|``; (d) lead: ``lead`` in detail with its spans.
    """
    signal, attribution, fs = _check_pair(signal, attribution, sampling_rate)
    li = lead_index(lead)
    spans = abnormal_spans(attribution, fs, quantile=threshold_quantile, smooth_s=smooth_s)
    label = f"smoothed |a| > q{threshold_quantile:g} ({1000 * smooth_s:g} ms)"
    fine, _, scale = _ecg_grid_figure(
        signal, fs, layout, "II", title="Fine plot: high-attribution regions", width_mm=width_mm,
        boxes=[[(s, e, ABNORMAL_COLOR) for s, e in lead_spans] for lead_spans in spans])
    _footer_caption(fine, _scale_caption(fs, scale))
    _footer_legend(fine, [Patch(fill=False, edgecolor=ABNORMAL_COLOR, lw=1.0, label=label)])
    return {
        "quick": _quick_figure(signal, attribution, fs, width_mm, "Quick plot: |attribution|"),
        "fine": fine,
        "heatmap": _heatmap_figure(attribution, fs, width_mm, "12-lead |attribution| heatmap"),
        "lead": _lead_focus_figure(signal, attribution, fs, LEADS[li],
                                   title=f"Lead {LEADS[li]} in detail; boxed: {label}",
                                   width_mm=width_mm, spans=spans[li]),
    }


def plot_xplaim_views(
    signal: np.ndarray,
    attribution: np.ndarray,
    sampling_rate: float,
    *,
    lead: str = "II",
    threshold_quantile: float = 0.9,
    smooth_s: float = 0.04,
    layout: str = "6x2",
    width_mm: float = DOUBLE_COLUMN_MM,
    out_stem: str | Path,
) -> list[Path]:
    """Write ECG-XPLAIM's four views as ``{stem}_{quick,fine,heatmap,lead}.{pdf,png}``.

    See ``xplaim_figures`` for the views (use it to get the figures without writing them).
    Returns the 8 paths, PDF before PNG, in the order quick, fine, heatmap, lead.
    """
    if out_stem is None:
        raise ValueError("out_stem is required; use xplaim_figures for in-memory figures")
    stem = Path(out_stem)
    figures = xplaim_figures(signal, attribution, sampling_rate, lead=lead,
                             threshold_quantile=threshold_quantile, smooth_s=smooth_s,
                             layout=layout, width_mm=width_mm)
    paths: list[Path] = []
    for name, fig in figures.items():
        paths += save_figure(fig, stem.parent / f"{stem.name}_{name}")
    return paths
