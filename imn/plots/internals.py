"""Figures of what a model does inside: the cascading randomisation sanity check, IMN's
generated weights W next to W * x, and the beat-aligned average attribution per class."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from imn.data.dataset import LEADS, NUM_LEADS  # noqa: E402
from imn.plots.base import (  # noqa: E402
    DEFAULT_SMOOTH_S,
    as_ecg,
    axes_mm,
    check_rate,
    fig_mm,
    footer_caption,
    title as draw_title,
    title_mm,
)
from imn.plots.clinical import attribution_layers, colorbar  # noqa: E402
from imn.plots.ecg import MM_PER_INCH  # noqa: E402
from imn.plots.methods import plot_methods_side_by_side  # noqa: E402
from imn.plots.style import (  # noqa: E402
    DOUBLE_COLUMN_MM,
    TRACE_COLOR,
    finish,
    magnitude_cmap,
    method_label,
    method_style,
    signed_cmap,
    styled,
)


def _lead_image(ax: plt.Axes, layers, seconds: float, signal: np.ndarray | None = None) -> None:
    """Leads x time image of prepared ``layers`` (row 0 = lead I), optional traces over it."""
    image = layers.band if layers.band is not None else np.repeat(layers.strip[:, None],
                                                                  NUM_LEADS, 1)
    cmap = signed_cmap() if layers.signed else magnitude_cmap()
    ax.imshow(image.T, extent=(0, seconds, NUM_LEADS - 0.5, -0.5), aspect="auto",
              interpolation="nearest", cmap=cmap, vmin=-1.0 if layers.signed else 0.0, vmax=1.0)
    if signal is not None:
        centred = signal - np.median(signal, axis=0)
        spacing = max(1e-6, float(np.max(np.percentile(centred, 99.5, axis=0)
                                         - np.percentile(centred, 0.5, axis=0))))
        t = np.linspace(0, seconds, signal.shape[0])
        for i in range(NUM_LEADS):
            ax.plot(t, i - centred[:, i] / spacing, color=TRACE_COLOR, lw=0.3)
    ax.set_ylim(NUM_LEADS - 0.5, -0.5)
    ax.set_xlim(0, seconds)


def cascade_columns(stages: Sequence[str], at_most: int = 6) -> list[str]:
    """At most ``at_most`` stages to draw, always the first ('original') and the last (every
    layer randomised), the others evenly spaced along the cascade."""
    if len(stages) <= at_most:
        return list(stages)
    picks = np.unique(np.round(np.linspace(0, len(stages) - 1, at_most)).astype(int))
    return [stages[i] for i in picks]


@styled
def plot_sanity_cascade(
    cascades: Mapping[str, Mapping[str, np.ndarray]],
    correlations: Mapping[str, Mapping[str, float]],
    sampling_rate: float,
    *,
    title: str | None = None,
    smooth_s: float = DEFAULT_SMOOTH_S,
    width_mm: float = DOUBLE_COLUMN_MM,
    out: str | Path | None = None,
) -> plt.Figure:
    """Cascading model-parameter randomisation (Adebayo et al. 2018) for one ECG.

    Top: one row per method, one column per cascade stage (trained model, then the model
    with its top layers re-drawn, down to every layer re-drawn): the map as a leads x time
    image. Bottom: ``|Spearman rho|`` between each stage's map and the trained model's, per
    method in its fixed style; a map that explains the model must lose its similarity
    (fall towards 0) as layers are randomised.

    Args:
      cascades: method -> stage -> ``(L, 12)`` map; every method has the same stages, in
        cascade order, the first being the trained model.
      correlations: method -> stage -> ``|rho|`` with the trained map.
    """
    if not cascades:
        raise ValueError("cascades must hold at least one method")
    fs = check_rate(sampling_rate)
    methods = list(cascades)
    stages = list(cascades[methods[0]])
    for method in methods:
        if list(cascades[method]) != stages:
            raise ValueError(f"method {method!r} has cascade stages {list(cascades[method])}; "
                             f"expected {stages}")
    shown = cascade_columns(stages)
    left, right, gap, row_h, row_gap = 26.0, 3.0, 2.0, 14.0, 2.0
    corr_h, corr_gap, bottom = 32.0, 8.0, 30.0
    top = title_mm(title) + 7.0
    cell_w = (width_mm - left - right - gap * (len(shown) - 1)) / len(shown)
    grid_h = len(methods) * (row_h + row_gap)
    height = top + grid_h + corr_gap + corr_h + bottom
    fig = plt.figure(figsize=(width_mm / MM_PER_INCH, height / MM_PER_INCH))
    kinds = set()
    label = ""
    for i, method in enumerate(methods):
        y = height - top - (i + 1) * (row_h + row_gap) + row_gap
        for j, stage in enumerate(shown):
            a = as_ecg(cascades[method][stage], f"map of {method!r} at stage {stage!r}")
            layers = attribution_layers(a, fs, smooth_s)
            kinds.add(layers.signed)
            label = layers.colorbar_label
            ax = axes_mm(fig, left + j * (cell_w + gap), y, cell_w, row_h)
            _lead_image(ax, layers, a.shape[0] / fs)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                name = "trained" if j == 0 else ("every layer\nre-drawn" if stage == stages[-1]
                                                 else f"re-drawn through\n{stage}")
                ax.set_title(name, fontsize=6, pad=2, linespacing=1.0)
            if j == 0:
                ax.text(-0.04, 0.5, method_label(method), transform=ax.transAxes, ha="right",
                        va="center", fontsize=6)
    corr = axes_mm(fig, left, bottom, width_mm - left - right, corr_h)
    positions = np.arange(len(stages))
    for method in methods:
        values = [float(correlations[method].get(stage, np.nan)) for stage in stages]
        corr.plot(positions, values, marker="o", ms=2.5, lw=1.0, **method_style(method),
                  label=method_label(method))
    corr.set_xticks(positions, ["trained"] + [s.split(".")[-1] if len(s) > 14 else s
                                              for s in stages[1:]],
                    rotation=30, ha="right", rotation_mode="anchor")
    corr.set_ylim(-0.02, 1.05)
    corr.set_ylabel("|Spearman \u03c1| with\ntrained map", labelpad=1)
    corr.set_xlabel("cascade stage: this layer and every layer before it in the cascade "
                    "re-drawn", labelpad=1)
    corr.spines[["top", "right"]].set_visible(False)
    corr.tick_params(labelsize=6, pad=1)
    corr.legend(loc="upper right", ncol=min(4, len(methods)), frameon=False, fontsize=6,
                handlelength=2.0)
    draw_title(fig, title)
    fw, _ = fig_mm(fig)
    footer_caption(fig, "each image: leads I (top) ... V6 x the whole record; scaled by its "
                   "own q99", y_mm=2.5)
    for k, signed in enumerate(sorted(kinds, reverse=True)):
        prefix = ("signed: " if signed else "\u2265 0: ") if len(kinds) > 1 else ""
        colorbar(fig, fw - 32.0, 9.0 - 6.5 * k, 28.0, prefix + label, signed=signed)
    return finish(fig, out)


@styled
def plot_imn_weights(
    signal: np.ndarray,
    x: np.ndarray,
    weights: np.ndarray,
    sampling_rate: float,
    *,
    title: str | None = None,
    leads: Sequence[str] | str | None = ("I", "II", "V1", "V2", "V5"),
    time_window: tuple[float, float] | None = (0.0, 5.0),
    width_mm: float = DOUBLE_COLUMN_MM,
    out: str | Path | None = None,
) -> plt.Figure:
    """IMN's generated weights ``W(x)`` of the explained class next to ``W(x) * x`` on the
    same ECG: where W is large but x is near 0 (baseline), the product (the explanation) is
    not; where both agree the sample truly drives the logit.

    Args:
      signal: ``(L, 12)`` in mV (drawn); x: ``(L, 12)`` the normalised input the model saw;
      weights: ``(L, 12)`` W of the explained class.
    """
    x = as_ecg(x, "x")
    weights = as_ecg(weights, "weights")
    maps = {"W (generated weights)": weights, "W \u00b7 x (contribution to the logit)": weights * x}
    return plot_methods_side_by_side(signal, maps, sampling_rate, leads=leads,
                                     time_window=time_window, title=title, columns=2,
                                     width_mm=width_mm, out=out)


def r_peaks(x: np.ndarray, sampling_rate: float) -> np.ndarray:
    """R-peak sample indices of ``x (L, 12)``: maxima of the lead-summed squared slope
    (smoothed over 50 ms), at least 0.3 s apart and above 30% of its 99th percentile. A
    simple energy detector, adequate for aligning beats of clean 10 s records."""
    from scipy.signal import find_peaks

    fs = check_rate(sampling_rate)
    slope = np.diff(np.asarray(x, dtype=np.float64), axis=0, prepend=x[:1])
    energy = (slope ** 2).sum(axis=1)
    width = max(1, int(round(0.05 * fs)))
    energy = np.convolve(energy, np.ones(width) / width, mode="same")
    peaks, _ = find_peaks(energy, distance=max(1, int(0.3 * fs)),
                          height=0.3 * np.quantile(energy, 0.99))
    return peaks


def beat_average(x: np.ndarray, attribution: np.ndarray, sampling_rate: float, *,
                 before_s: float = 0.25, after_s: float = 0.45) -> tuple[np.ndarray, np.ndarray, int]:
    """Mean beat and mean attribution around every R peak of ``x (n, L, 12)``:
    ``(beat (W, 12), attribution (W, 12), number of beats)`` with ``W = round((before_s +
    after_s) * fs)`` samples from ``before_s`` before the peak; beats too close to an end
    are skipped."""
    fs = check_rate(sampling_rate)
    before, after = int(round(before_s * fs)), int(round(after_s * fs))
    beats, maps = [], []
    for signal, a in zip(np.asarray(x), np.asarray(attribution)):
        for peak in r_peaks(signal, fs):
            if peak - before >= 0 and peak + after <= signal.shape[0]:
                beats.append(signal[peak - before:peak + after])
                maps.append(a[peak - before:peak + after])
    if not beats:
        width = before + after
        return np.zeros((width, NUM_LEADS)), np.zeros((width, NUM_LEADS)), 0
    return np.mean(beats, axis=0), np.mean(maps, axis=0), len(beats)


@styled
def plot_beat_average(
    per_class: Mapping[str, tuple[np.ndarray, np.ndarray, int, int]],
    sampling_rate: float,
    *,
    before_s: float = 0.25,
    title: str | None = None,
    width_mm: float = DOUBLE_COLUMN_MM,
    out: str | Path | None = None,
) -> plt.Figure:
    """Beat-aligned average attribution per explained class: one column per class, leads
    as rows, the class's mean beat (black) over its mean attribution (colour, scaled by its
    own q99), time relative to the R peak.

    Args:
      per_class: class -> ``(mean beat (W, 12), mean attribution (W, 12), beats, ECGs)``.
    """
    if not per_class:
        raise ValueError("per_class must hold at least one class")
    fs = check_rate(sampling_rate)
    names = list(per_class)
    left, right, gap, bottom, plot_h = 9.0, 3.0, 3.0, 16.0, 70.0
    top = title_mm(title) + 6.0
    cell_w = (width_mm - left - right - gap * (len(names) - 1)) / len(names)
    fig = plt.figure(figsize=(width_mm / MM_PER_INCH, (top + plot_h + bottom) / MM_PER_INCH))
    label, kinds = "", set()
    for j, name in enumerate(names):
        beat, mean_map, n_beats, n_ecgs = per_class[name]
        layers = attribution_layers(np.asarray(mean_map, dtype=np.float64), fs, 0.0)
        label = layers.colorbar_label.replace("a", "mean a", 1)
        kinds.add(layers.signed)
        ax = axes_mm(fig, left + j * (cell_w + gap), bottom, cell_w, plot_h)
        seconds = beat.shape[0] / fs
        _lead_image(ax, layers, seconds, beat)
        ticks = np.array([-0.2, 0.0, 0.2, 0.4])
        ticks = ticks[(ticks >= -before_s) & (ticks <= seconds - before_s)]
        ax.set_xticks(ticks + before_s, [f"{t:g}" for t in ticks])
        ax.set_xlabel("time from R peak (s)", labelpad=1)
        ax.set_yticks(range(NUM_LEADS), LEADS if j == 0 else [""] * NUM_LEADS)
        ax.tick_params(labelsize=6, pad=1)
        ax.axvline(before_s, color="0.4", lw=0.4, ls=":")
        ax.set_title(f"{name}\n({n_beats} beats, {n_ecgs} ECGs)", fontsize=6, pad=2)
    draw_title(fig, title)
    fw, _ = fig_mm(fig)
    footer_caption(fig, "black: mean beat (rows share no voltage scale); colour: mean attribution",
                   y_mm=2.5)
    colorbar(fig, fw - 32.0, 3.0, 28.0, label, signed=True in kinds)
    return finish(fig, out)
