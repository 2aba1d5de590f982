"""Figures of the IMN trainability study (:mod:`imn.reproduce.trainability`).

* :func:`plot_learning_curves`: train loss (log scale) and validation macro AUROC per epoch,
  one line per model (mean over seeds, faint after the first seed stops early) with the
  min-max range over seeds shaded.
* :func:`plot_initial_logits`: |initial logit| per model and task (log scale), every seed
  and record as a point, the median marked.
Double-column width, each model in its fixed colour, line style and name
(:mod:`imn.plots.style`, as in every other figure), PDF + 300 dpi PNG.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from imn.plots.attribution import DOUBLE_COLUMN_MM, save_figure  # noqa: E402
from imn.plots.style import model_label, model_marker, model_style  # noqa: E402

_MM = 1 / 25.4


def _by_epoch(histories: Sequence[list[dict]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """``(epochs (E,), values (seeds, E))`` with NaN where a seed stopped earlier."""
    length = max((len(h) for h in histories), default=0)
    values = np.full((len(histories), length), np.nan)
    for i, history in enumerate(histories):
        for line in history:
            values[i, line["epoch"]] = line[key]
    return np.arange(1, length + 1), values


def plot_learning_curves(histories: Mapping[str, Sequence[list[dict]]], out: str | Path,
                         *, title: str | None = None) -> list[Path]:
    """``histories``: model -> one ``metrics.jsonl`` line list per seed. Returns the paths."""
    fig, (loss_ax, auroc_ax) = plt.subplots(1, 2, figsize=(DOUBLE_COLUMN_MM * _MM, 70 * _MM))
    for name, per_seed in histories.items():
        per_seed = [h for h in per_seed if h]
        if not per_seed:
            continue
        style = model_style(name)
        for ax, key in ((loss_ax, "train_loss"), (auroc_ax, "val_macro_auroc")):
            epochs, values = _by_epoch(per_seed, key)
            with np.errstate(all="ignore"):
                mean = np.nanmean(values, axis=0)
            seeds = f"{len(per_seed)} seed{'s' if len(per_seed) > 1 else ''}"
            # The mean is over every seed only up to the first early stop; after it, over the
            # seeds still training: drawn faint, so a lone seed's jump is not read as the mean.
            complete = int(np.all(np.isfinite(values), axis=0).sum())
            ax.plot(epochs[:complete], mean[:complete], **style, linewidth=1.2,
                    marker=model_marker(name), markersize=3, label=f"{model_label(name)} ({seeds})")
            if complete < len(epochs):
                tail = slice(max(complete - 1, 0), None)
                ax.plot(epochs[tail], mean[tail], **style, linewidth=1.0, alpha=0.45)
            ax.fill_between(epochs, np.nanmin(values, axis=0), np.nanmax(values, axis=0),
                            color=style["color"], alpha=0.15, linewidth=0)
    loss_ax.set(xlabel="epoch", ylabel="train loss (log)", yscale="log")
    auroc_ax.set(xlabel="epoch", ylabel="validation macro AUROC")
    auroc_ax.legend(fontsize=6, frameon=False, loc="lower right")
    for ax in (loss_ax, auroc_ax):
        ax.tick_params(labelsize=7)
        ax.xaxis.label.set_size(7)
        ax.yaxis.label.set_size(7)
        ax.grid(alpha=0.3, linewidth=0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        several = any(len([h for h in per_seed if h]) > 1 for per_seed in histories.values())
        fig.suptitle(f"{title}: mean over seeds, shaded min-max; faint once a seed has stopped "
                     "early (mean of the seeds still training)" if several else title, fontsize=8)
    fig.tight_layout()
    return save_figure(fig, out)


def plot_initial_logits(rows: Sequence[dict[str, Any]], out: str | Path) -> list[Path]:
    """``rows``: ``{task, variant, seed, abs_logit}`` (one per record and class)."""
    if not rows:
        raise ValueError("plot_initial_logits needs at least one row")
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    fig, axes = plt.subplots(1, len(tasks), figsize=(DOUBLE_COLUMN_MM * _MM, 65 * _MM),
                             sharey=True, squeeze=False)
    rng = np.random.default_rng(0)  # horizontal jitter only
    for ax, task in zip(axes[0], tasks):
        for i, variant in enumerate(variants):
            values = np.array([r["abs_logit"] for r in rows
                               if r["task"] == task and r["variant"] == variant])
            if values.size == 0:
                continue
            values = np.maximum(values, 1e-3)  # log axis
            ax.scatter(i + rng.uniform(-0.25, 0.25, values.size), values, s=2, alpha=0.4,
                       color=model_style(variant)["color"], linewidths=0)
            median = float(np.median(values))
            ax.plot([i - 0.35, i + 0.35], [median, median], color="black", linewidth=1.2)
            ax.text(i, median * 1.6, f"{median:.3g}", ha="center", fontsize=6)
        ax.set_yscale("log")
        ax.set_xticks(range(len(variants)), [model_label(v) for v in variants], rotation=30,
                      ha="right", fontsize=6)
        ax.set_title(task, fontsize=7)
        ax.tick_params(labelsize=7)
        ax.grid(axis="y", alpha=0.3, linewidth=0.5)
    axes[0][0].set_ylabel("|initial logit| (training mode)", fontsize=7)
    fig.tight_layout()
    return save_figure(fig, out)
