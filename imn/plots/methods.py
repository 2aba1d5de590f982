"""The same ECG once per attribution method, panels in a grid, for comparing where methods look.

Each method's map is prepared as in :mod:`imn.plots.clinical` (smoothed, scaled by its own
max, so colours compare *where* methods look, not how much); time-only maps become a strip
under their panel, non-negative maps use the sequential colour map. Panels are titled with
the readable method names of :mod:`imn.plots.style`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from imn.data.dataset import LEADS  # noqa: E402
from imn.plots.base import (  # noqa: E402
    DEFAULT_SMOOTH_S,
    as_ecg,
    check_mask,
    check_rate,
    check_width,
    footer_caption,
    lead_index,
    title as draw_title,
    title_mm,
)
from imn.plots.clinical import (  # noqa: E402
    CALIBRATION_MM,
    STRIP_MM,
    Panel,
    attribution_layers,
    colorbar,
    draw_panels,
    paper_axes,
    scale_caption,
    scale_for,
)
from imn.plots.ecg import MM_PER_INCH, PAPER_SPEED_MM_PER_S, ROW_HEIGHT_MM  # noqa: E402
from imn.plots.style import DOUBLE_COLUMN_MM, finish, method_label, styled  # noqa: E402


def resolve_leads(leads: Sequence[str] | str | None) -> list[int]:
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
    evidence: np.ndarray | None = None,
    smooth_s: float = DEFAULT_SMOOTH_S,
    width_mm: float | None = DOUBLE_COLUMN_MM,
    columns: int = 4,
    out: str | Path | None = None,
) -> plt.Figure:
    """The same ECG once per method (a grid of at most ``columns`` panels per row, in the
    order given), attributions drawn behind the traces.

    Args:
      signal: ``(L, 12)`` in mV.
      attributions: method name -> ``(L, 12)``; each normalised by its own max over the ECG.
        Panel titles are the readable names of ``imn.plots.style.method_label``.
      leads: lead names (rows); default ('II', 'V2', 'V5'); 'all' for the 12 leads.
      time_window: ``(t0, t1)`` in seconds shown in every panel; default the first 4 s.
      evidence: optional bool ``(L, 12)`` ground-truth mask, outlined in every panel.
      width_mm: printed width of the whole figure; None for 1:1 paper scale.
      columns: panels per row.
    """
    signal = as_ecg(signal, "signal")
    fs = check_rate(sampling_rate)
    evidence = check_mask(evidence, signal.shape)
    if not attributions:
        raise ValueError("attributions must hold at least one method")
    if isinstance(columns, bool) or not isinstance(columns, int) or columns < 1:
        raise ValueError(f"columns must be a positive integer, got {columns!r}")
    layers = {}
    for name, a in attributions.items():
        a = as_ecg(a, f"attribution of {name!r}")
        if a.shape != signal.shape:
            raise ValueError(f"attribution of {name!r} has shape {a.shape}; "
                             f"the signal's is {signal.shape}")
        layers[name] = attribution_layers(a, fs, smooth_s)
    rows = resolve_leads(leads)
    length = signal.shape[0]
    seconds = length / fs
    t0, t1 = (0.0, min(seconds, 4.0)) if time_window is None else map(float, time_window)
    start, stop = int(round(t0 * fs)), int(round(t1 * fs))
    if not (0 <= start < stop <= length):
        raise ValueError(
            f"time_window {time_window!r} must lie inside the record (0, {seconds:g}) s"
        )
    check_width(width_mm)

    n = min(len(layers), columns)  # panels per row
    grid_rows = -(-len(layers) // n)
    # side: a margin left and right, so the outer panels' frames are not cut by the page edge.
    gap, row_gap, bottom, side = 3.0, 6.0, 16.0, 2.0
    top = title_mm(title) + 4.0
    panel_w = (stop - start) / fs * PAPER_SPEED_MM_PER_S
    # Every panel gets the strip's room, so panels of one row line up.
    strip = STRIP_MM if any(l.strip is not None for l in layers.values()) else 0.0
    paper_h = len(rows) * ROW_HEIGHT_MM + strip
    # Only the first column carries the calibration pulse (the panels share one scale).
    scale = scale_for(n * panel_w + CALIBRATION_MM, width_mm, (n - 1) * gap + 2 * side)
    fig_w = (n * panel_w + CALIBRATION_MM) * scale + (n - 1) * gap + 2 * side
    fig_h = top + grid_rows * paper_h * scale + (grid_rows - 1) * row_gap + bottom
    fig = plt.figure(figsize=(fig_w / MM_PER_INCH, fig_h / MM_PER_INCH))
    panels = [Panel(lead, start, stop, 0.0, paper_h - (r + 0.5) * ROW_HEIGHT_MM)
              for r, lead in enumerate(rows)]
    for j, (name, layer) in enumerate(layers.items()):
        row, column = divmod(j, n)
        first = column == 0
        x = side + (column * panel_w + (0.0 if first else CALIBRATION_MM)) * scale + column * gap
        y = bottom + (grid_rows - 1 - row) * (paper_h * scale + row_gap)
        ax = paper_axes(fig, x, y, panel_w, paper_h, scale, calibration=first)
        draw_panels(ax, signal, panels, fs, layers=layer, evidence=evidence, calibration=first)
        ax.set_title(method_label(name), fontsize=7, pad=2)
    draw_title(fig, title)
    notes = [f"{t0:g}-{t1:g} s; " + scale_caption(fs, scale)]
    captions = {l.caption for l in layers.values() if l.caption}
    for caption in sorted(captions, key=len)[-1:]:
        notes += caption.split("; bottom strip: ")
        if len(notes) == 3:
            notes[2] = "bottom strip: " + notes[2]
    if evidence is not None:
        notes.append("green: ground-truth evidence")
        notes = notes[:2] + ["; ".join(notes[2:])]
    for line, y_mm in zip(notes, (12.5, 8.5, 4.5)):
        footer_caption(fig, line, y_mm=y_mm)
    kinds = sorted({l.signed for l in layers.values()}, reverse=True)
    label = next(iter(layers.values())).colorbar_label
    for i, signed in enumerate(kinds):
        prefix = ("signed: " if signed else "\u2265 0: ") if len(kinds) > 1 else ""
        colorbar(fig, fig_w - 32.0, 12.0 - 7.0 * i, 28.0, prefix + label, signed=signed)
    return finish(fig, out)
