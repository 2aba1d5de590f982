"""Result summaries across methods and models: per-ECG deletion-AUC distributions, cost against
faithfulness, and training curves. Methods and models keep their fixed styles
(:mod:`imn.plots.style`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from imn.plots.base import axes_mm, fig_mm, title as draw_title, title_mm  # noqa: E402
from imn.plots.ecg import MM_PER_INCH  # noqa: E402
from imn.plots.style import (  # noqa: E402
    DOUBLE_COLUMN_MM,
    SINGLE_COLUMN_MM,
    finish,
    method_label,
    method_style,
    model_label,
    model_marker,
    model_style,
    styled,
)

REFERENCE_METHOD = "random"


def curve_aucs(curves: np.ndarray) -> np.ndarray:
    """Trapezoidal AUC of each row of ``curves (n, steps + 1)`` over ``[0, 1]``: ``(n,)``."""
    curves = np.asarray(curves, dtype=np.float64)
    if curves.ndim != 2 or curves.shape[1] < 2:
        raise ValueError(f"curves must have shape (n, steps + 1) with steps >= 1; got {curves.shape}")
    dx = 1.0 / (curves.shape[1] - 1)
    return dx * (curves[:, 1:] + curves[:, :-1]).sum(axis=1) / 2


def _clean_axes(ax: plt.Axes) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(labelsize=6, pad=1)


@styled
def plot_deletion_auc_distributions(
    aucs: Mapping[str, Mapping[str, np.ndarray]],
    *,
    title: str | None = None,
    width_mm: float = DOUBLE_COLUMN_MM,
    out: str | Path | None = None,
) -> plt.Figure:
    """Per-ECG deletion AUC of every method, one panel per model: each ECG a dot (jittered
    sideways), the box its quartiles, a bar its median; the median of the ``random`` control
    is a dashed reference line across the panel (lower is better; a method must sit below it).

    Args:
      aucs: model -> method -> ``(n,)`` per-ECG deletion AUCs.
    """
    if not aucs:
        raise ValueError("aucs must hold at least one model")
    models = list(aucs)
    left, right, gap, bottom = 12.0, 3.0, 6.0, 24.0
    top = title_mm(title) + 4.0
    panel_h = 45.0
    widths = np.array([max(1, len(aucs[m])) for m in models], dtype=float)
    usable = width_mm - left - right - gap * (len(models) - 1)
    fig = plt.figure(figsize=(width_mm / MM_PER_INCH, (top + panel_h + bottom) / MM_PER_INCH))
    rng = np.random.default_rng(0)
    x_mm = left
    for model, share in zip(models, widths / widths.sum()):
        ax = axes_mm(fig, x_mm, bottom, usable * share, panel_h)
        x_mm += usable * share + gap
        methods = list(aucs[model])
        for i, method in enumerate(methods):
            values = np.asarray(aucs[model][method], dtype=np.float64)
            style = method_style(method)
            q1, median, q3 = np.quantile(values, [0.25, 0.5, 0.75])
            ax.add_patch(plt.Rectangle((i - 0.3, q1), 0.6, q3 - q1, fill=False, lw=0.7,
                                       edgecolor=style["color"]))
            ax.plot([i - 0.3, i + 0.3], [median, median], color=style["color"], lw=1.4)
            ax.scatter(i + rng.uniform(-0.2, 0.2, values.size), values, s=3,
                       color=style["color"], alpha=0.7, lw=0, zorder=3)
        if REFERENCE_METHOD in aucs[model]:
            ax.axhline(np.median(aucs[model][REFERENCE_METHOD]), color="0.35", lw=0.7, ls="--",
                       zorder=1)
        ax.set_xticks(range(len(methods)), [method_label(m) for m in methods], rotation=45,
                      ha="right", rotation_mode="anchor")
        ax.set_xlim(-0.6, len(methods) - 0.4)
        ax.set_ylim(0, 1.02)
        n = {np.asarray(v).size for v in aucs[model].values()}
        ax.set_title(f"{model_label(model)} (n = {'/'.join(map(str, sorted(n)))} ECGs)", pad=2)
        if model == models[0]:
            ax.set_ylabel("deletion AUC per ECG (lower better)", labelpad=1)
        else:
            ax.set_yticklabels([])
        _clean_axes(ax)
    draw_title(fig, title)
    fw, fh = fig_mm(fig)
    fig.text(2.0 / fw, 1.5 / fh, "dot: one ECG; box: quartiles; bar: median; dashed: median of "
             "the random control", fontsize=6, ha="left", va="bottom")
    return finish(fig, out)


@styled
def plot_cost_vs_faithfulness(
    points: Sequence[Mapping],
    *,
    title: str | None = None,
    device: str | None = None,
    width_mm: float = SINGLE_COLUMN_MM,
    out: str | Path | None = None,
) -> plt.Figure:
    """Explanation cost (ms per ECG, log scale) against deletion AUC, one point per method
    and model: the method's colour, the model's marker, the 95% CI of the AUC as a bar.

    Args:
      points: dicts with 'model', 'method', 'ms_per_ecg', 'deletion_auc' and optionally
        'deletion_auc_ci_low' / 'deletion_auc_ci_high'. Points without a finite cost or AUC
        are left out.
    """
    points = [p for p in points if np.isfinite(p.get("ms_per_ecg", np.nan))
              and p["ms_per_ecg"] > 0 and np.isfinite(p.get("deletion_auc", np.nan))]
    if not points:
        raise ValueError("points must hold at least one point with a finite cost and AUC")
    markers = ("o", "s", "^", "D", "v", "P", "X")
    models = list(dict.fromkeys(p["model"] for p in points))
    methods = list(dict.fromkeys(p["method"] for p in points))
    legend_rows = -(-len(methods) // 2) + -(-len(models) // 2)
    left, right, plot_h = 12.0, 3.0, 50.0
    bottom = 10.0 + 3.0 * legend_rows + 4.0
    top = title_mm(title) + 2.0
    fig = plt.figure(figsize=(width_mm / MM_PER_INCH, (top + plot_h + bottom) / MM_PER_INCH))
    ax = axes_mm(fig, left, bottom, width_mm - left - right, plot_h)
    for p in points:
        style = method_style(p["method"])
        marker = markers[models.index(p["model"]) % len(markers)]
        low, high = p.get("deletion_auc_ci_low"), p.get("deletion_auc_ci_high")
        if low is not None and high is not None and np.isfinite(low) and np.isfinite(high):
            ax.plot([p["ms_per_ecg"]] * 2, [low, high], color=style["color"], lw=0.6, alpha=0.6)
        # Methods sharing a colour (one family) differ by fill: the second is hollow.
        hollow = style["linestyle"] != "-"
        ax.plot(p["ms_per_ecg"], p["deletion_auc"], marker=marker, ms=4, ls="none",
                color=style["color"], mfc="white" if hollow else style["color"],
                mec=style["color"], mew=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("explanation time (ms per ECG, log scale)"
                  + (f"; {device}" if device else ""), labelpad=1)
    ax.set_ylabel("deletion AUC (lower better)", labelpad=1)
    _clean_axes(ax)
    handles = [Line2D([], [], color=method_style(m)["color"], marker="o", ls="none", ms=4,
                      mfc="white" if method_style(m)["linestyle"] != "-" else None,
                      label=method_label(m)) for m in methods]
    handles += [Line2D([], [], color="0.3", marker=markers[i % len(markers)], ls="none", ms=4,
                       mfc="none", label=model_label(m)) for i, m in enumerate(models)]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2,
              frameon=False, fontsize=6, handletextpad=0.3, columnspacing=1.0,
              borderaxespad=0.0, title="colour: method; marker: model; bar: 95% CI",
              title_fontsize=6)
    draw_title(fig, title)
    return finish(fig, out)


@styled
def plot_training_curves(
    histories: Mapping[str, Sequence[Mapping]],
    *,
    title: str | None = None,
    width_mm: float = DOUBLE_COLUMN_MM,
    out: str | Path | None = None,
) -> plt.Figure:
    """Training loss (log scale when every loss is positive) and validation macro AUROC per
    epoch, one line per model in its fixed style; the epoch of the best validation AUROC (the
    kept checkpoint) is marked. A model fitted once, without epochs (the feature route: its
    history has no ``train_loss``), is a horizontal line at its validation AUROC. The legend
    below the panels gets as many rows as the models need.

    Args:
      histories: model -> the rows of its ``metrics.jsonl`` ('epoch', 'train_loss',
        'val_macro_auroc').
    """
    histories = {model: [r for r in rows if "epoch" in r] for model, rows in histories.items()}
    histories = {model: rows for model, rows in histories.items() if rows}
    if not histories:
        raise ValueError("histories must hold at least one model with an epoch")
    columns = min(4, len(histories))
    legend_rows = -(-len(histories) // columns)
    left, gap, right, plot_h = 12.0, 14.0, 3.0, 45.0
    bottom = 13.0 + 3.2 * legend_rows
    top = title_mm(title) + 4.0
    panel_w = (width_mm - left - right - gap) / 2
    fig = plt.figure(figsize=(width_mm / MM_PER_INCH, (top + plot_h + bottom) / MM_PER_INCH))
    loss_ax = axes_mm(fig, left, bottom, panel_w, plot_h)
    auc_ax = axes_mm(fig, left + panel_w + gap, bottom, panel_w, plot_h)
    handles = []
    losses = []
    for model, rows in histories.items():
        style = model_style(model)
        auc = np.array([r.get("val_macro_auroc", np.nan) for r in rows], dtype=float)
        if not any("train_loss" in r for r in rows):
            auc_ax.axhline(auc[-1], lw=0.8, **style)
            label = model_label(model)
            label = f"{label[:-1]}, one fit)" if label.endswith(")") else f"{label} (one fit)"
            handles.append(Line2D([], [], lw=0.8, **style, label=label))
            continue
        epochs = np.array([r["epoch"] + 1 for r in rows])
        loss = np.array([r.get("train_loss", np.nan) for r in rows], dtype=float)
        losses.append(loss[np.isfinite(loss)])
        marker = dict(marker=model_marker(model), ms=2.5)
        loss_ax.plot(epochs, loss, lw=1.0, **style, **marker)
        (line,) = auc_ax.plot(epochs, auc, lw=1.0, **style, **marker, label=model_label(model))
        handles.append(line)
        if np.isfinite(auc).any():
            best = int(np.nanargmax(auc))
            auc_ax.plot(epochs[best], auc[best], marker="*", ms=6, color=style["color"],
                        ls="none")
    finite_losses = np.concatenate(losses) if losses else np.array([])
    if finite_losses.size and np.all(finite_losses > 0):
        loss_ax.set_yscale("log")
    loss_ax.set_ylabel("training loss" + (" (log scale)" if loss_ax.get_yscale() == "log" else ""),
                       labelpad=1)
    auc_ax.set_ylabel("validation macro AUROC", labelpad=1)
    for ax in (loss_ax, auc_ax):
        ax.set_xlabel("epoch", labelpad=1)
        ax.xaxis.get_major_locator().set_params(integer=True)
        _clean_axes(ax)
    auc_ax.axhline(0.5, color="0.6", lw=0.5, ls=":")
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.0), ncol=columns,
               frameon=False, fontsize=6, handlelength=2.5, borderaxespad=0.3,
               title="\u2605: best validation epoch (kept checkpoint); dotted: chance",
               title_fontsize=6)
    draw_title(fig, title)
    return finish(fig, out)
