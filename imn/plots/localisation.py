"""Localisation examples: one ECG per finding, a strip per method, the planted mask shaded.

For each example the lead with the most ground-truth evidence is drawn (in mV, evidence
shaded green), and under it one strip per method: that method's map on that lead (a
time-only map's single strip), prepared exactly as on the clinical grid (80 ms moving
average, divided by the 99th percentile of ``|value|`` over the whole ECG), with the mask's
spans outlined. A reader sees at once which methods put their colour where the evidence is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from imn.data.dataset import LEADS  # noqa: E402
from imn.plots.base import (  # noqa: E402
    DEFAULT_SMOOTH_S,
    as_ecg,
    axes_mm,
    check_mask,
    check_rate,
    fig_mm,
    footer_caption,
    text_width_mm,
    title as draw_title,
    title_mm,
)
from imn.plots.clinical import attribution_layers, band_rgba, colorbar  # noqa: E402
from imn.plots.ecg import MM_PER_INCH, _spans  # noqa: E402
from imn.plots.style import (  # noqa: E402
    DOUBLE_COLUMN_MM,
    EVIDENCE_COLOR,
    TRACE_COLOR,
    finish,
    method_label,
    styled,
)

STRIP_LABEL_PT = 6.0


@dataclasses.dataclass
class LocalisationExample:
    """One ECG: ``signal (L, 12)`` in mV, ``evidence`` bool ``(L, 12)`` of the explained
    finding, ``attributions``: method -> ``(L, 12)``, and a ``label`` (e.g. 'STE, ECG 38')."""

    signal: np.ndarray
    evidence: np.ndarray
    attributions: Mapping[str, np.ndarray]
    label: str


def evidence_lead(evidence: np.ndarray) -> int:
    """The lead with the most evidence samples (lead II among equals, else the first)."""
    counts = np.asarray(evidence).sum(axis=0)
    best = np.flatnonzero(counts == counts.max())
    return int(LEADS.index("II")) if LEADS.index("II") in best else int(best[0])


@styled
def plot_localisation_examples(
    examples: Sequence[LocalisationExample],
    sampling_rate: float,
    *,
    title: str | None = None,
    smooth_s: float = DEFAULT_SMOOTH_S,
    width_mm: float = DOUBLE_COLUMN_MM,
    out: str | Path | None = None,
) -> plt.Figure:
    """One block per example: the evidence lead's trace with the mask shaded, then one strip
    per method (the same methods, in the same order, in every block)."""
    if not examples:
        raise ValueError("examples must hold at least one ECG")
    fs = check_rate(sampling_rate)
    methods = list(examples[0].attributions)
    if not methods:
        raise ValueError("each example needs at least one attribution")
    for example in examples:
        if list(example.attributions) != methods:
            raise ValueError(f"example {example.label!r} has methods {list(example.attributions)}"
                             f"; expected {methods} (the same in every block)")
    # Every strip's layers first: the label margin depends on which maps are time-only.
    strips = {(i, method): attribution_layers(
        as_ecg(example.attributions[method], f"attribution {method!r} of {example.label!r}"),
        fs, smooth_s) for i, example in enumerate(examples) for method in methods}
    names = {key: method_label(key[1]) + (" (time only)" if layers.band is None else "")
             for key, layers in strips.items()}
    trace_h, strip_h, strip_gap, block_gap = 12.0, 3.2, 0.6, 7.0
    # The strips' labels sit left of them: the margin grows with the longest one
    # ("Attention map (xECGNet) (time only)" was cut off at 30 mm).
    label_w = max(text_width_mm(name, STRIP_LABEL_PT) for name in names.values())
    left, right, bottom = max(30.0, label_w + 4.0), 3.0, 17.0
    top = title_mm(title) + 1.0
    block_h = trace_h + len(methods) * (strip_h + strip_gap)
    height = top + len(examples) * (block_h + block_gap) + bottom
    fig = plt.figure(figsize=(width_mm / MM_PER_INCH, height / MM_PER_INCH))
    plot_w = width_mm - left - right
    kinds: set[bool] = set()
    label = "smoothed a / q99 |smoothed a|"
    for index, example in enumerate(examples):
        signal = as_ecg(example.signal, f"signal of {example.label!r}")
        evidence = check_mask(example.evidence, signal.shape)
        length = signal.shape[0]
        seconds = length / fs
        lead = evidence_lead(evidence)
        spans = [(s / fs, e / fs) for s, e in _spans(evidence[:, lead])]
        y_top = height - top - index * (block_h + block_gap)
        ax = axes_mm(fig, left, y_top - trace_h - 3.0, plot_w, trace_h)
        t = np.arange(length) / fs
        trace = signal[:, lead] - np.median(signal[:, lead])
        ax.plot(t, trace, color=TRACE_COLOR, lw=0.5)
        for s, e in spans:
            ax.axvspan(s, e, color=EVIDENCE_COLOR, alpha=0.25, lw=0, gid="evidence")
        ax.set_xlim(0, seconds)
        ax.set_xticks([])
        ax.set_ylabel(f"{LEADS[lead]} (mV)", labelpad=1)
        ax.tick_params(labelsize=6, pad=1)
        ax.spines[["top", "right", "bottom"]].set_visible(False)
        ax.set_title(example.label, loc="left", fontsize=7, pad=2)
        for j, method in enumerate(methods):
            layers = strips[index, method]
            label = layers.colorbar_label
            kinds.add(layers.signed)
            row = layers.strip if layers.band is None else layers.band[:, lead]
            y = y_top - trace_h - 3.0 - (j + 1) * (strip_h + strip_gap)
            sax = axes_mm(fig, left, y, plot_w, strip_h)
            sax.imshow(band_rgba(row, layers.signed)[None], extent=(-0.5 / fs, seconds - 0.5 / fs,
                                                                    0, 1),
                       aspect="auto", interpolation="nearest", gid="strip")
            for s, e in spans:
                sax.add_patch(Rectangle((s - 0.5 / fs, 0.0), e - s, 1.0, fill=False,
                                        edgecolor=EVIDENCE_COLOR, lw=0.6, gid="evidence"))
            sax.set_xlim(0, seconds)
            sax.set_ylim(0, 1)
            sax.set_yticks([])
            sax.tick_params(labelsize=6, pad=1, length=1.5)
            for side in sax.spines.values():
                side.set_linewidth(0.3)
            sax.text(-0.01, 0.5, names[index, method], transform=sax.transAxes, ha="right",
                     va="center", fontsize=STRIP_LABEL_PT)
            if j < len(methods) - 1:
                sax.set_xticks([])
            else:
                sax.set_xlabel("time (s)", labelpad=1)
    draw_title(fig, title)
    fw, fh = fig_mm(fig)
    footer_caption(fig, f"strip: the method's map on the lead shown ({1000 * smooth_s:g} ms mean,",
                   y_mm=12.0)
    footer_caption(fig, "/ 99th percentile of |a| over the ECG, clipped at \u00b11)", y_mm=8.5)
    footer_caption(fig, "green: ground-truth evidence of the explained finding", y_mm=4.0)
    for i, signed in enumerate(sorted(kinds, reverse=True)):
        prefix = ("signed: " if signed else "\u2265 0: ") if len(kinds) > 1 else ""
        colorbar(fig, fw - 32.0, 11.0 - 7.0 * i, 28.0, prefix + label, signed=signed)
    return finish(fig, out)
