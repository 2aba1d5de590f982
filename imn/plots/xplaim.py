"""One lead in detail, and ECG-XPLAIM's four views of an attribution (quick, fine, heatmap,
lead)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from imn.data.dataset import LEADS, NUM_LEADS  # noqa: E402
from imn.plots.base import (  # noqa: E402
    DEFAULT_SMOOTH_S,
    as_ecg,
    axes_mm,
    check_pair,
    check_rate,
    check_width,
    fig_mm,
    footer_caption,
    footer_legend,
    lead_index,
    title as draw_title,
    title_mm,
)
from imn.plots.clinical import (  # noqa: E402
    CALIBRATION_MM,
    AttributionLayers,
    Panel,
    attribution_layers,
    colorbar,
    draw_panels,
    grid_figure,
    paper_axes,
    scale_caption,
    scale_for,
    shown_windows,
)
from imn.plots.ecg import GAIN_MM_PER_MV, MM_PER_INCH, PAPER_SPEED_MM_PER_S, ROW_HEIGHT_MM, _spans  # noqa: E402
from imn.plots.segments import lead_image_axes  # noqa: E402
from imn.plots.style import (  # noqa: E402
    ABNORMAL_COLOR,
    DOUBLE_COLUMN_MM,
    NEGATIVE_COLOR,
    POSITIVE_COLOR,
    TRACE_COLOR,
    finish,
    lightened,
    magnitude_cmap,
    save_figure,
    signed_cmap,
    styled,
)

_BACKGROUND_ALPHA = 0.75  # a heat background is lightened so a black trace stays readable


def _lead_focus_figure(
    signal: np.ndarray,
    attribution: np.ndarray,
    fs: float,
    lead: str,
    *,
    title: str | None,
    width_mm: float | None,
    spans: Sequence[tuple[float, float]] = (),
    smooth_s: float = DEFAULT_SMOOTH_S,
) -> plt.Figure:
    """One lead, large, on the grid with its band; the attribution below; optional spans."""
    check_width(width_mm)
    li = lead_index(lead)
    length = signal.shape[0]
    seconds = length / fs
    trace = signal[:, li] - np.median(signal[:, li])
    # Tall enough for the trace's largest excursion (+3 mm), in whole 5 mm boxes, >= 30 mm.
    half = max(np.max(np.abs(trace)) * GAIN_MM_PER_MV + 3.0, ROW_HEIGHT_MM / 2)
    paper_h = 2 * 5.0 * np.ceil(half / 5.0)
    paper_w = seconds * PAPER_SPEED_MM_PER_S
    left, right, gap, attr_h, bottom = 13.0, 3.0, 3.0, 22.0, 8.0
    top = title_mm(title) + 4.0
    scale = scale_for(paper_w + CALIBRATION_MM, width_mm, left + right)
    fig_w = (paper_w + CALIBRATION_MM) * scale + left + right
    fig_h = top + paper_h * scale + gap + attr_h + bottom
    fig = plt.figure(figsize=(fig_w / MM_PER_INCH, fig_h / MM_PER_INCH))
    ax = paper_axes(fig, left, bottom + attr_h + gap, paper_w, paper_h, scale)
    layers = attribution_layers(attribution, fs, smooth_s)
    panel = Panel(li, 0, length, 0.0, paper_h / 2, row_mm=paper_h)
    boxes = [[] for _ in range(NUM_LEADS)]
    boxes[li] = [(s, e, ABNORMAL_COLOR) for s, e in spans]
    if layers.band is None:  # a time-only map: the strip of this one lead is the map itself
        layers = AttributionLayers(np.repeat(layers.strip[:, None], NUM_LEADS, 1), None,
                                   layers.signed, layers.smooth_s)
    draw_panels(ax, signal, [panel], fs, layers=layers, boxes=boxes, label_size=8.0)

    # The lower panel shares the time axis of the paper (which starts CALIBRATION_MM early).
    x_offset = CALIBRATION_MM * scale
    ax2 = axes_mm(fig, left + x_offset, bottom, paper_w * scale, attr_h)
    t = np.arange(length) / fs
    peak = float(np.max(np.abs(attribution))) or 1.0
    a = attribution[:, li] / peak
    ax2.fill_between(t, a, 0, where=a > 0, interpolate=True, color=POSITIVE_COLOR, lw=0,
                     alpha=0.8)
    ax2.fill_between(t, a, 0, where=a < 0, interpolate=True, color=NEGATIVE_COLOR, lw=0,
                     alpha=0.8)
    ax2.plot(t, a, color=TRACE_COLOR, lw=0.3)
    ax2.axhline(0, color="0.4", lw=0.4)
    for s, e in spans:
        ax2.axvspan(s, e, color=ABNORMAL_COLOR, alpha=0.15, lw=0)
    lim = 1.08 * (float(np.max(np.abs(a))) or 1.0)
    ax2.set_ylim(-lim if layers.signed else -0.02 * lim, lim)
    ax2.set_xlim(0, seconds)
    ax2.set_xlabel("time (s)", labelpad=1)
    ax2.set_ylabel(f"{LEADS[li]}: a / max |a| of ECG", labelpad=1)
    ax2.spines[["top", "right"]].set_visible(False)
    ax2.tick_params(labelsize=6, pad=1)

    draw_title(fig, title)
    fw, fh = fig_mm(fig)
    colorbar(fig, fw - 41.0, fh - top + 1.0, 38.0, layers.colorbar_label, signed=layers.signed)
    fig.text(left / fw, (bottom + attr_h + gap - 0.5) / fh,
             scale_caption(fs, scale) + "; " + layers.caption, fontsize=6, ha="left", va="top")
    return fig


@styled
def plot_lead_focus(
    signal: np.ndarray,
    attribution: np.ndarray,
    sampling_rate: float,
    *,
    lead: str = "II",
    title: str | None = None,
    smooth_s: float = DEFAULT_SMOOTH_S,
    width_mm: float | None = DOUBLE_COLUMN_MM,
    out: str | Path | None = None,
) -> plt.Figure:
    """One lead in detail: the trace on the grid with the band (as in
    ``plot_attribution_ecg``), and below it, on the same time axis, the unsmoothed
    attribution of that lead divided by the max |a| of the whole ECG (red above zero, blue
    below), so it compares with the 12-lead view."""
    signal, attribution, fs = check_pair(signal, attribution, sampling_rate)
    fig = _lead_focus_figure(signal, attribution, fs, lead, title=title, width_mm=width_mm,
                             smooth_s=smooth_s)
    return finish(fig, out)


# ----------------------------------------------------------------------------- ECG-XPLAIM


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
    attribution = as_ecg(attribution, "attribution")
    fs = check_rate(sampling_rate)
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


def strongest_spans(spans: Sequence[Sequence[tuple[float, float]]], attribution: np.ndarray,
                    sampling_rate: float, k: int) -> list[list[tuple[float, float]]]:
    """The ``k`` spans (over all leads) holding the largest ``sum |a|``; same nesting as
    ``spans``, each lead's spans in time order."""
    fs = check_rate(sampling_rate)
    scored = []
    for lead, lead_spans in enumerate(spans):
        for s, e in lead_spans:
            mass = float(np.abs(attribution[int(round(s * fs)):int(round(e * fs)), lead]).sum())
            scored.append((mass, lead, s, e))
    scored.sort(key=lambda item: -item[0])
    kept: list[list[tuple[float, float]]] = [[] for _ in spans]
    for _, lead, s, e in scored[:k]:
        kept[lead].append((s, e))
    return [sorted(lead_spans) for lead_spans in kept]


def _stacked_figure(signal: np.ndarray, image: np.ndarray, fs: float, width_mm: float,
                    title: str | None, *, signed: bool, cbar_label: str,
                    height_mm: float = 120.0) -> plt.Figure:
    """12 leads stacked on plain axes over a leads x time image (``image (12, L)``)."""
    length = signal.shape[0]
    centred = signal - np.median(signal, axis=0)
    # One spacing for all leads, from a robust amplitude range, so the voltage scale is shared.
    spacing = max(1.0, float(np.max(np.percentile(centred, 99.5, axis=0)
                                    - np.percentile(centred, 0.5, axis=0))))
    fig = plt.figure(figsize=(width_mm / MM_PER_INCH, height_mm / MM_PER_INCH))
    cmap = lightened(signed_cmap() if signed else magnitude_cmap(), _BACKGROUND_ALPHA)
    ax = lead_image_axes(fig, image, -0.5 / fs, (length - 0.5) / fs, length / fs, cmap=cmap,
                         vmin=-1.0 if signed else 0.0, vmax=1.0, cbar_label=cbar_label,
                         top_mm=title_mm(title) + 1.0)
    t = np.arange(length) / fs
    # Lead i sits at y = i (row i of the image), one spacing tall, positive voltage upward.
    for i in range(NUM_LEADS):
        ax.plot(t, i - centred[:, i] / spacing, color=TRACE_COLOR, lw=0.4)
    ax.set_ylim(NUM_LEADS - 0.5, -0.5)
    fw, fh = fig_mm(fig)
    fig.text(1 - 2.0 / fw, 1.5 / fh, f"row height {spacing:.2g} mV", fontsize=6, ha="right",
             va="bottom")
    draw_title(fig, title)
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
    k: int = 5,
    layout: str = "6x2",
    width_mm: float = DOUBLE_COLUMN_MM,
) -> dict[str, plt.Figure]:
    """ECG-XPLAIM's four views as open figures: 'quick', 'fine', 'heatmap', 'lead'.

    (a) quick: 12 leads stacked on plain axes over the *signed* smoothed map (red supports,
    blue refutes); (b) fine: the clinical grid with the ``k`` strongest ``abnormal_spans``
    as thin vermilion outlines; (c) heatmap: leads x time ``|a|`` with the waveforms drawn
    over it; (d) lead: ``lead`` in detail with its spans among those ``k``.
    """
    signal, attribution, fs = check_pair(signal, attribution, sampling_rate)
    li = lead_index(lead)
    shown = shown_windows(layout, signal.shape[0], fs)
    # Only the parts of spans the layout shows compete for the k boxes.
    visible = [[(max(s, shown[lead][0] / fs), min(e, shown[lead][1] / fs)) for s, e in lead_spans
                if min(e, shown[lead][1] / fs) > max(s, shown[lead][0] / fs)]
               for lead, lead_spans in enumerate(abnormal_spans(
                   attribution, fs, quantile=threshold_quantile, smooth_s=smooth_s))]
    spans = strongest_spans(visible, attribution, fs, k)
    label = (f"the {k} strongest spans of smoothed |a| > q{threshold_quantile:g} "
             f"({1000 * smooth_s:g} ms)")
    fine, _, scale, _ = grid_figure(
        signal, fs, layout, "II", title="Fine plot: high-attribution regions", width_mm=width_mm,
        boxes=[[(s, e, ABNORMAL_COLOR) for s, e in lead_spans] for lead_spans in spans])
    footer_caption(fine, scale_caption(fs, scale), y_mm=9.0)
    footer_legend(fine, [Patch(fill=False, edgecolor=ABNORMAL_COLOR, lw=0.7, label=label)],
                  y_mm=3.0)
    layers = attribution_layers(attribution, fs, DEFAULT_SMOOTH_S)
    image = layers.band if layers.band is not None else np.repeat(layers.strip[:, None],
                                                                  NUM_LEADS, 1)
    magnitude = np.abs(attribution)
    return {
        "quick": _stacked_figure(signal, image.T, fs, width_mm, "Quick plot: attribution "
                                 f"({1000 * DEFAULT_SMOOTH_S:g} ms moving average)",
                                 signed=layers.signed, cbar_label=layers.colorbar_label),
        "fine": fine,
        "heatmap": _stacked_figure(signal, (magnitude / (magnitude.max() or 1.0)).T, fs,
                                   width_mm, "12-lead |attribution| heatmap", signed=False,
                                   cbar_label="|a| / max |a|"),
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
    k: int = 5,
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
                             threshold_quantile=threshold_quantile, smooth_s=smooth_s, k=k,
                             layout=layout, width_mm=width_mm)
    paths: list[Path] = []
    for name, fig in figures.items():
        paths += save_figure(fig, stem.parent / f"{stem.name}_{name}")
    return paths
