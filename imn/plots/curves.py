"""Curve figures: deletion / insertion (perturbation) curves, ROC and precision-recall.

Same conventions as :mod:`imn.plots.attribution`: built at the final printed size (88 mm,
one column, per panel), fonts >= 6 pt, saved by ``save_figure`` as PDF + 300 dpi PNG.
Methods and models keep the fixed colour and line style of :mod:`imn.plots.style` in every
figure. ROC and PR points are computed here with numpy (scikit-learn is a test-only
dependency).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from imn.plots.base import axes_mm, fig_mm, title as _title, title_mm  # noqa: E402
from imn.plots.ecg import MM_PER_INCH  # noqa: E402
from imn.plots.style import (  # noqa: E402, F401
    DOUBLE_COLUMN_MM,
    OKABE_ITO,
    SINGLE_COLUMN_MM,
    finish as _finish,
    method_label,
    method_style,
    method_styles,
    model_label,
    model_style,
    styled,
)

from imn.report import curves_are_flat  # noqa: E402

PERTURBATION_KINDS = ("deletion", "insertion")


def trapezoid_auc(x: np.ndarray, y: np.ndarray) -> float:
    """Area under ``y(x)`` by the trapezoidal rule (``x`` increasing)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))


# ----------------------------------------------------------------------------- perturbation curves


def _check_curves(curves: Mapping[str, np.ndarray], what: str) -> dict[str, np.ndarray]:
    if not curves:
        raise ValueError(f"{what} must hold at least one method")
    checked = {}
    for name, c in curves.items():
        c = np.asarray(c, dtype=np.float64)
        if c.ndim == 1:
            c = c[None, :]
        if c.ndim != 2 or c.shape[0] < 1 or c.shape[1] < 2:
            raise ValueError(f"{what}[{name!r}] must have shape (n, steps + 1) with steps >= 1; "
                             f"got {np.shape(curves[name])}")
        if not np.all(np.isfinite(c)):
            raise ValueError(f"{what}[{name!r}] contains NaN or infinite values")
        checked[name] = c
    return checked


def bootstrap_band(
    curves: np.ndarray, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean curve and a percentile bootstrap band over ECGs (rows).

    Args:
      curves: ``(n, steps + 1)``, one curve per ECG.
    Returns:
      ``(mean, low, high)``, each ``(steps + 1,)``: the mean over ECGs and the
      ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the means of ``n_boot``
      resamples of the ECGs with replacement (pointwise). With one ECG the band is the curve.
    """
    curves = np.asarray(curves, dtype=np.float64)
    n = curves.shape[0]
    mean = curves.mean(axis=0)
    if n == 1:
        return mean, mean.copy(), mean.copy()
    rng = np.random.default_rng(seed)
    # Resample counts instead of indices: (n_boot, n) @ (n, steps) never builds the
    # (n_boot, n, steps) array.
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot)
    means = counts @ curves / n
    alpha = (1.0 - level) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha], axis=0)
    return mean, low, high


def _draw_perturbation(
    ax: plt.Axes,
    curves: Mapping[str, np.ndarray],
    kind: str,
    styles: Mapping[str, Mapping[str, str]],
    n_boot: int,
    seed: int,
) -> None:
    if kind not in PERTURBATION_KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected 'deletion' or 'insertion'")
    sizes = set()
    # A curve that does not move (a saturated model) says nothing about the ranking: its
    # AUC is not printed as a score.
    flat = {name for name, c in curves.items() if curves_are_flat(c)}
    for name, c in curves.items():
        x = np.linspace(0.0, 1.0, c.shape[1])
        mean, low, high = bootstrap_band(c, n_boot=n_boot, seed=seed)
        style = styles[name]
        ax.fill_between(x, low, high, color=style["color"], alpha=0.2, lw=0)
        auc = "flat" if name in flat else f"AUC {trapezoid_auc(x, mean):.3f}"
        ax.plot(x, mean, lw=1.0, **style, label=f"{method_label(name)} ({auc})")
        sizes.add(c.shape[0])
    better = "lower" if kind == "deletion" else "higher"
    ax.set_title(f"{kind.capitalize()} ({better} AUC is better)", pad=3)
    ax.set_xlabel(f"fraction of features {'deleted' if kind == 'deletion' else 'inserted'}",
                  labelpad=1)
    ax.set_ylabel("p(target class)", labelpad=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.02, 1.02)
    if flat:
        import textwrap

        which = ("every curve is" if len(flat) == len(curves) else
                 ", ".join(method_label(name) for name in curves if name in flat) + " flat:")
        note = textwrap.fill(f"{which} flat: the output is saturated, so the AUC cannot rank "
                             "methods" if len(flat) == len(curves) else
                             f"{which} the output is saturated, so their AUC cannot rank them",
                             55)
        ax.text(0.5, 0.5, note, transform=ax.transAxes, fontsize=6, color="0.25",
                ha="center", va="center", bbox={"facecolor": "white", "lw": 0, "alpha": 0.85})
    n_text = "/".join(str(s) for s in sorted(sizes))
    ncol = 1 if len(curves) <= 3 else 2
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=ncol, frameon=False,
              fontsize=6, title=f"shaded: 95% bootstrap CI of the mean (n = {n_text} ECGs)",
              title_fontsize=6, handlelength=1.8, borderaxespad=0.0, columnspacing=1.0)


def _legend_rows(n_methods: int) -> int:
    return n_methods if n_methods <= 3 else -(-n_methods // 2)


@styled
def plot_perturbation_curves(
    curves: Mapping[str, np.ndarray],
    *,
    kind: str = "deletion",
    title: str | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    width_mm: float = SINGLE_COLUMN_MM,
    out: str | Path | None = None,
) -> plt.Figure:
    """Deletion or insertion curves: mean per method and its 95% bootstrap band.

    Args:
      curves: method -> ``(n, steps + 1)``: predicted probability of the target class for
        each of ``n`` ECGs after perturbing a fraction ``linspace(0, 1, steps + 1)`` of the
        features.
      kind: 'deletion' or 'insertion' (axis labels; lower / higher AUC is better).
      n_boot, seed: the percentile bootstrap over ECGs (rows) that gives the shaded band:
        pointwise 2.5% and 97.5% quantiles of ``n_boot`` resampled means.
    The legend gives the trapezoidal AUC of each mean curve.
    """
    checked = _check_curves(curves, "curves")
    if kind not in PERTURBATION_KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected 'deletion' or 'insertion'")
    legend_mm = 6.0 + 2.8 * _legend_rows(len(checked))
    top, plot_h, left, right = (6.0 if title else 1.0) + 5.0, 45.0, 11.0, 3.0
    bottom = 8.0 + legend_mm
    fig = plt.figure(figsize=(width_mm / MM_PER_INCH, (top + plot_h + bottom) / MM_PER_INCH))
    ax = axes_mm(fig, left, bottom, width_mm - left - right, plot_h)
    _draw_perturbation(ax, checked, kind, method_styles(list(checked)), n_boot, seed)
    _title(fig, title)
    return _finish(fig, out)


@styled
def plot_deletion_insertion(
    deletion: Mapping[str, np.ndarray],
    insertion: Mapping[str, np.ndarray],
    *,
    title: str | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    width_mm: float = DOUBLE_COLUMN_MM,
    out: str | Path | None = None,
) -> plt.Figure:
    """Deletion (left) and insertion (right) curves side by side, one colour per method in
    both panels; bands as in ``plot_perturbation_curves`` (95% percentile bootstrap)."""
    deletion = _check_curves(deletion, "deletion")
    insertion = _check_curves(insertion, "insertion")
    names = list(dict.fromkeys([*deletion, *insertion]))
    styles = method_styles(names)
    rows = max(_legend_rows(len(deletion)), _legend_rows(len(insertion)))
    top, plot_h, left, right, gap = (6.0 if title else 1.0) + 5.0, 45.0, 11.0, 3.0, 12.0
    bottom = 8.0 + 6.0 + 2.8 * rows
    panel_w = (width_mm - left - right - gap) / 2
    fig = plt.figure(figsize=(width_mm / MM_PER_INCH, (top + plot_h + bottom) / MM_PER_INCH))
    for j, (kind, curves) in enumerate((("deletion", deletion), ("insertion", insertion))):
        ax = axes_mm(fig, left + j * (panel_w + gap), bottom, panel_w, plot_h)
        _draw_perturbation(ax, curves, kind, styles, n_boot, seed)
    _title(fig, title)
    return _finish(fig, out)


# ----------------------------------------------------------------------------- ROC


def roc_curve(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC points at every distinct score, highest threshold first.

    Args:
      y_true: ``(n,)`` of 0/1 (or bool), both classes present.
      scores: ``(n,)`` finite; higher means more likely positive.
    Returns:
      ``(fpr, tpr, thresholds)``, each ``(k + 1,)`` for ``k`` distinct scores, starting at
      ``(0, 0, inf)``; tied scores move both rates in one step (as scikit-learn's
      ``roc_curve(..., drop_intermediate=False)``).
    """
    y = np.asarray(y_true)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or s.shape != y.shape:
        raise ValueError(f"y_true and scores must be 1-D of equal length; got {y.shape}, {s.shape}")
    if not np.all(np.isin(y, (0, 1))):
        raise ValueError("y_true must hold only 0/1 labels")
    y = y.astype(np.float64)
    if y.min() == y.max():
        raise ValueError("y_true must contain both classes for a ROC curve")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contain NaN or infinite values")
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    # The last index of each run of equal scores: one ROC point per distinct threshold.
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    tps = np.cumsum(y)[last]
    fps = (last + 1) - tps
    return (np.r_[0.0, fps / fps[-1]], np.r_[0.0, tps / tps[-1]], np.r_[np.inf, s[last]])


@styled
def plot_roc_curves(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    title: str | None = None,
    width_mm: float = SINGLE_COLUMN_MM,
    out: str | Path | None = None,
) -> plt.Figure:
    """ROC curve per model with its AUROC (trapezoidal) in the legend and the chance diagonal.

    Args:
      curves: model name -> ``(y_true (n,), scores (n,))``.
    """
    if not curves:
        raise ValueError("curves must hold at least one model")
    styles = {name: model_style(name) for name in curves}
    left, right, bottom = 11.0, 3.0, 9.0
    size = width_mm - left - right
    top = 6.0 if title else 2.0
    fig = plt.figure(figsize=(width_mm / MM_PER_INCH, (top + size + bottom) / MM_PER_INCH))
    ax = axes_mm(fig, left, bottom, size, size)
    for name, pair in curves.items():
        if len(pair) != 2:
            raise ValueError(f"curves[{name!r}] must be a (y_true, scores) pair")
        fpr, tpr, _ = roc_curve(*pair)
        ax.plot(fpr, tpr, lw=1.0, drawstyle="default", **styles[name],
                label=f"{model_label(name)} ({trapezoid_auc(fpr, tpr):.3f})")
    ax.plot([0, 1], [0, 1], color="0.6", lw=0.6, ls="--", label="chance (0.500)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("false positive rate", labelpad=1)
    ax.set_ylabel("true positive rate", labelpad=1)
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(labelsize=6, pad=1)
    ax.legend(loc="lower right", frameon=False, fontsize=6, title="AUROC", title_fontsize=6,
              handlelength=1.8)
    _title(fig, title)
    return _finish(fig, out)


# ----------------------------------------------------------------------------- ROC + PR panel


def precision_recall_curve(
    y_true: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Precision-recall points at every distinct score, highest threshold first.

    Returns ``(recall, precision)``, each ``(k + 1,)``, starting at recall 0 with the
    precision of the highest threshold (tied scores move in one step).
    """
    fpr, tpr, _ = roc_curve(y_true, scores)
    y = np.asarray(y_true, dtype=np.float64)
    positives, negatives = y.sum(), y.size - y.sum()
    tp, fp = tpr * positives, fpr * negatives
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1e-300), np.nan)
    precision[0] = precision[1]
    return tpr, precision


def average_precision(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Step-wise average precision ``sum (R_k - R_{k-1}) P_k`` (as scikit-learn's)."""
    recall, precision = precision_recall_curve(y_true, scores)
    return float(np.sum(np.diff(recall) * precision[1:]))


def _on_grid(x: np.ndarray, y: np.ndarray, grid: np.ndarray, *, envelope: str) -> np.ndarray:
    """``y`` at ``grid`` from step points ``(x, y)`` (x increasing): the largest ``y`` at
    ``x <= g`` ('roc': TPR at FPR g) or at ``x >= g`` ('pr': interpolated precision)."""
    if envelope == "roc":
        index = np.searchsorted(x, grid, side="right") - 1
        return np.maximum.accumulate(y)[np.clip(index, 0, len(y) - 1)]
    best = np.maximum.accumulate(np.nan_to_num(y, nan=0.0)[::-1])[::-1]
    index = np.searchsorted(x, grid, side="left")
    return best[np.clip(index, 0, len(y) - 1)]


def curve_band(
    y_true: np.ndarray, scores: np.ndarray, kind: str, *, n_boot: int = 200,
    level: float = 0.95, seed: int = 0, grid_points: int = 101,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pointwise percentile bootstrap band of a ROC ('roc': TPR over an FPR grid) or PR
    ('pr': interpolated precision over a recall grid) curve, resampling ECGs with
    replacement (resamples holding one class only are redrawn). Returns ``(grid, low,
    high)``, each ``(grid_points,)``."""
    y = np.asarray(y_true).astype(np.float64)
    s = np.asarray(scores, dtype=np.float64)
    grid = np.linspace(0.0, 1.0, grid_points)
    rng = np.random.default_rng(seed)
    rows = []
    while len(rows) < n_boot:
        index = rng.integers(0, y.size, y.size)
        if y[index].min() == y[index].max():
            continue
        if kind == "roc":
            fpr, tpr, _ = roc_curve(y[index], s[index])
            rows.append(_on_grid(fpr, tpr, grid, envelope="roc"))
        else:
            recall, precision = precision_recall_curve(y[index], s[index])
            rows.append(_on_grid(recall, precision, grid, envelope="pr"))
    alpha = (1.0 - level) / 2
    low, high = np.quantile(np.stack(rows), [alpha, 1 - alpha], axis=0)
    return grid, low, high


def tied_fraction(scores: np.ndarray) -> float:
    """Fraction of ECGs whose score equals another ECG's (saturated outputs tie at 0 or 1,
    and a tie block is drawn as one long diagonal segment)."""
    s = np.asarray(scores)
    _, counts = np.unique(s, return_counts=True)
    return float(counts[counts > 1].sum() / s.size) if s.size else 0.0


def _roc_pr_axes(ax_roc: plt.Axes, ax_pr: plt.Axes, curves: Mapping[str, tuple],
                 n_boot: int, seed: int) -> tuple[list[str], int, int]:
    """Draw one class's ROC and PR panels; returns (models with heavily tied scores, n,
    positives). Legends list only the scores, in each model's line style (the figure's
    shared legend names the models)."""
    tied = []
    n = positives = 0
    for model, (y, scores) in curves.items():
        y = np.asarray(y).astype(int)
        style = model_style(model)
        fpr, tpr, _ = roc_curve(y, scores)
        recall, precision = precision_recall_curve(y, scores)
        mark = ""
        if tied_fraction(scores) > 0.1:
            tied.append(model_label(model))
            mark = "*"
        for ax, kind, (x_line, y_line), score in (
                (ax_roc, "roc", (fpr, tpr), trapezoid_auc(fpr, tpr)),
                (ax_pr, "pr", (recall, precision), average_precision(y, scores))):
            grid, low, high = curve_band(y, scores, kind, n_boot=n_boot, seed=seed)
            ax.fill_between(grid, low, high, color=style["color"], alpha=0.12, lw=0)
            ax.plot(x_line, y_line, lw=0.9, drawstyle="steps-post" if kind == "pr" else "default",
                    **style, label=f"{score:.3f}{mark}", gid=model)
        n, positives = y.size, int(y.sum())
    ax_roc.plot([0, 1], [0, 1], color="0.6", lw=0.5, ls=":")
    ax_pr.axhline(positives / max(n, 1), color="0.6", lw=0.5, ls=":")
    ax_roc.set_title("ROC", pad=2)
    ax_pr.set_title(f"PR (chance {positives / max(n, 1):.2f})", pad=2)
    for ax, xlabel, ylabel, legend_title, where in (
            (ax_roc, "false positive rate", "true positive rate", "AUROC", "lower right"),
            (ax_pr, "recall", "precision", "AP", "upper right")):
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.set_xlabel(xlabel, labelpad=1)
        ax.set_ylabel(ylabel, labelpad=1)
        ax.spines[["top", "right"]].set_visible(False)
        ax.tick_params(labelsize=6, pad=1)
        legend = ax.legend(loc=where, frameon=True, fontsize=6, title=legend_title,
                           title_fontsize=6, handlelength=1.4, borderaxespad=0.1,
                           labelspacing=0.1, borderpad=0.2, handletextpad=0.3)
        legend.get_frame().set(linewidth=0, alpha=0.8)
    return tied, n, positives


@styled
def plot_roc_pr_panel(
    per_class: Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]],
    *,
    title: str | None = None,
    n_boot: int = 200,
    seed: int = 0,
    columns: int = 2,
    width_mm: float = DOUBLE_COLUMN_MM,
    out: str | Path | None = None,
) -> plt.Figure:
    """One figure per task: for each class a ROC and a PR panel, every model in its fixed
    style, with a 95% pointwise percentile bootstrap band (``n_boot`` resamples of ECGs),
    n and positives above each pair, AUROC / average precision in the panels' legends and
    one shared legend naming the models.

    Args:
      per_class: class name -> model -> ``(y_true (n,), scores (n,))``.
      columns: classes per row (each class takes a ROC + PR pair of panels).
    Models whose scores are heavily tied (> 10% of ECGs share a score: saturated outputs)
    are starred and a footnote says their long straight segments join tied points.
    """
    if not per_class:
        raise ValueError("per_class must hold at least one class")
    names = list(per_class)
    columns = max(1, min(columns, len(names)))
    rows = -(-len(names) // columns)
    gap, pair_gap, left, right = 11.0, 14.0, 10.0, 3.0
    panel = (width_mm - left - right - columns * gap - (columns - 1) * pair_gap) / (2 * columns)
    panel = min(panel, 55.0)
    top, row_gap = title_mm(title) + 8.0, 20.0
    models = list(dict.fromkeys(m for curves in per_class.values() for m in curves))
    bottom = 23.0
    height = top + rows * panel + (rows - 1) * row_gap + bottom
    fig = plt.figure(figsize=(width_mm / MM_PER_INCH, height / MM_PER_INCH))
    fw, fh = fig_mm(fig)
    tied: set[str] = set()
    for i, name in enumerate(names):
        row, column = divmod(i, columns)
        x = left + column * (2 * panel + gap + pair_gap)
        y = bottom + (rows - 1 - row) * (panel + row_gap)
        ax_roc = axes_mm(fig, x, y, panel, panel)
        ax_pr = axes_mm(fig, x + panel + gap, y, panel, panel)
        starred, n, positives = _roc_pr_axes(ax_roc, ax_pr, per_class[name], n_boot, seed)
        tied.update(starred)
        fig.text((x - 6.0) / fw, (y + panel + 5.5) / fh,
                 f"{name}  (n = {n} ECGs, {positives} positive)", fontsize=7,
                 fontweight="bold", ha="left", va="bottom")
    _title(fig, title)
    handles = [plt.Line2D([], [], lw=1.0, **model_style(m), label=model_label(m)) for m in models]
    fig.legend(handles=handles, loc="lower left", bbox_to_anchor=(2.0 / fw, 9.5 / fh),
               ncol=len(handles), frameon=False, fontsize=6, handlelength=2.2,
               borderaxespad=0.0)
    note = f"shaded: 95% pointwise bootstrap band ({n_boot} resamples of the ECGs); dotted: chance"
    fig.text(2.0 / fw, 5.0 / fh, note, fontsize=6, ha="left", va="bottom")
    if tied:
        fig.text(2.0 / fw, 1.5 / fh, "* scores tied on > 10% of ECGs (saturated outputs): "
                 "straight segments join tied points, not measured operating points",
                 fontsize=6, ha="left", va="bottom")
    return _finish(fig, out)
