"""Curve figures: deletion / insertion (perturbation) curves and ROC curves.

Same conventions as :mod:`imn.plots.attribution`: built at the final printed size (88 mm,
one column, per panel), fonts >= 6 pt, saved by ``save_figure`` as PDF + 300 dpi PNG.
Methods are told apart by the Okabe-Ito palette (colour-blind safe) and, beyond its seven
colours, by the line style too. ROC points are computed here with numpy (scikit-learn is
a test-only dependency).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from imn.plots.attribution import (  # noqa: E402
    DOUBLE_COLUMN_MM,
    MM_PER_INCH,
    SINGLE_COLUMN_MM,
    _finish,
    _title,
    axes_mm,
    styled,
)

# Okabe & Ito (2008) without yellow, which is too light on white.
OKABE_ITO: tuple[str, ...] = (
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
)
_LINESTYLES = ("-", "--", ":", "-.")
PERTURBATION_KINDS = ("deletion", "insertion")


def method_styles(names: Sequence[str]) -> dict[str, dict[str, str]]:
    """``name -> {'color', 'linestyle'}``, fixed by position so panels agree."""
    return {
        name: {"color": OKABE_ITO[i % len(OKABE_ITO)],
               "linestyle": _LINESTYLES[(i // len(OKABE_ITO)) % len(_LINESTYLES)]}
        for i, name in enumerate(names)
    }


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
    for name, c in curves.items():
        x = np.linspace(0.0, 1.0, c.shape[1])
        mean, low, high = bootstrap_band(c, n_boot=n_boot, seed=seed)
        style = styles[name]
        ax.fill_between(x, low, high, color=style["color"], alpha=0.2, lw=0)
        ax.plot(x, mean, lw=1.0, **style, label=f"{name} (AUC {trapezoid_auc(x, mean):.3f})")
        sizes.add(c.shape[0])
    better = "lower" if kind == "deletion" else "higher"
    ax.set_title(f"{kind.capitalize()} ({better} AUC is better)", pad=3)
    ax.set_xlabel(f"fraction of features {'deleted' if kind == 'deletion' else 'inserted'}",
                  labelpad=1)
    ax.set_ylabel("p(target class)", labelpad=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.02, 1.02)
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(labelsize=6, pad=1)
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
    styles = method_styles(list(curves))
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
                label=f"{name} ({trapezoid_auc(fpr, tpr):.3f})")
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
