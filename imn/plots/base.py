"""Shared by every figure module: input checks, millimetre geometry, titles and footers, and
the preparation of an attribution map for display (smoothing, normalisation, its kind).

Figures are laid out in millimetres at their printed size; ``axes_mm`` places an axes box
from the figure's bottom-left corner.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.textpath import TextPath  # noqa: E402
import numpy as np  # noqa: E402

from imn.data.dataset import LEADS, NUM_LEADS  # noqa: E402
from imn.plots.ecg import MM_PER_INCH  # noqa: E402

MM_PER_POINT = MM_PER_INCH / 72.0

# Attribution bands are the centred moving average of the signed map over this window: the
# sum of a window's attribution is what deleting that window tests, and one sample (10 ms at
# 100 Hz) is too thin to see in print.
DEFAULT_SMOOTH_S = 0.08

# ----------------------------------------------------------------------------- validation


def lead_index(name: str) -> int:
    """Column of lead ``name`` in ``LEADS`` (``'avr'`` matches ``'aVR'``)."""
    if isinstance(name, str):
        for i, lead in enumerate(LEADS):
            if name == lead or name.lower() == lead.lower():
                return i
    raise ValueError(f"unknown lead {name!r}; expected one of {', '.join(LEADS)}")


def as_ecg(x: np.ndarray, what: str) -> np.ndarray:
    """``x`` as float64 ``(L, 12)``; a clear error naming ``what`` otherwise."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != NUM_LEADS or x.shape[0] < 2:
        raise ValueError(f"{what} must have shape (L, {NUM_LEADS}) with L >= 2; got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{what} contains NaN or infinite values")
    return x


def check_rate(sampling_rate: float) -> float:
    if isinstance(sampling_rate, bool) or not np.isscalar(sampling_rate) or not sampling_rate > 0:
        raise ValueError(f"sampling_rate must be a positive number; got {sampling_rate!r}")
    return float(sampling_rate)


def check_pair(
    signal: np.ndarray, attribution: np.ndarray, sampling_rate: float
) -> tuple[np.ndarray, np.ndarray, float]:
    signal = as_ecg(signal, "signal")
    attribution = as_ecg(attribution, "attribution")
    if attribution.shape != signal.shape:
        raise ValueError(
            f"attribution shape {attribution.shape} differs from the signal's {signal.shape}"
        )
    return signal, attribution, check_rate(sampling_rate)


def check_mask(mask: np.ndarray | None, shape: tuple[int, ...], what: str = "evidence") -> np.ndarray | None:
    """``mask`` as bool of ``shape`` (or None)."""
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.shape != shape:
        raise ValueError(f"{what} mask has shape {mask.shape}; the signal's is {shape}")
    return mask.astype(bool)


def check_width(width_mm: float | None) -> None:
    if width_mm is not None and not width_mm > 20:
        raise ValueError(f"width_mm must be None (1:1 paper scale) or > 20 mm; got {width_mm!r}")


# ----------------------------------------------------------------------------- attribution display


def normalise_signed(attribution: np.ndarray) -> np.ndarray:
    """``attribution / max|attribution|`` over the whole array (all zeros stays zeros)."""
    peak = float(np.max(np.abs(attribution))) if attribution.size else 0.0
    return attribution / peak if peak > 0 else np.zeros_like(attribution)


def smooth_time(attribution: np.ndarray, sampling_rate: float, smooth_s: float) -> np.ndarray:
    """Centred moving average over ``round(smooth_s * fs)`` samples (>= 1) along axis 0 of
    ``(L,)`` or ``(L, 12)``, with the window shrunk at the ends (no zero padding, so an edge
    is not pulled towards 0)."""
    if not smooth_s >= 0:
        raise ValueError(f"smooth_s must be >= 0; got {smooth_s!r}")
    a = np.asarray(attribution, dtype=np.float64)
    width = max(1, int(round(smooth_s * sampling_rate)))
    if width == 1:
        return a.copy()
    flat = a.reshape(a.shape[0], -1)
    kernel = np.ones(width)
    sums = np.stack([np.convolve(flat[:, i], kernel, mode="same") for i in range(flat.shape[1])],
                    axis=1)
    counts = np.convolve(np.ones(a.shape[0]), kernel, mode="same")[:, None]
    return (sums / counts).reshape(a.shape)


def is_time_only(attribution: np.ndarray) -> bool:
    """True when every lead carries the same map (a 1-D Grad-CAM upsampled over time): such a
    map says *when*, never *which lead*, and is drawn as one strip."""
    a = np.asarray(attribution)
    if a.ndim != 2 or a.shape[1] < 2:
        return False
    scale = float(np.max(np.abs(a))) or 1.0
    return bool(np.all(np.abs(a - a[:, :1]) <= 1e-6 * scale))


def is_non_negative(attribution: np.ndarray) -> bool:
    """True when the map is never negative (Grad-CAM, ``|a|``): drawn on a sequential colour
    map from 0, not a diverging one whose negative half would go unused."""
    return bool(np.min(attribution) >= 0.0)


# ----------------------------------------------------------------------------- millimetre geometry


def fig_mm(fig: plt.Figure) -> tuple[float, float]:
    """Figure width and height in mm."""
    w, h = fig.get_size_inches()
    return w * MM_PER_INCH, h * MM_PER_INCH


def axes_mm(fig: plt.Figure, x_mm: float, y_mm: float, w_mm: float, h_mm: float) -> plt.Axes:
    """Axes placed in millimetres from the figure's bottom-left corner."""
    fw, fh = fig_mm(fig)
    return fig.add_axes((x_mm / fw, y_mm / fh, w_mm / fw, h_mm / fh))


def title(fig: plt.Figure, text: str | None) -> None:
    """A left-aligned 8 pt title 1 mm below the figure's top edge (may hold two lines)."""
    if text:
        fw, fh = fig_mm(fig)
        fig.text(2.0 / fw, 1 - 1.0 / fh, text, fontsize=8, ha="left", va="top",
                 linespacing=1.1)


def title_mm(text: str | None) -> float:
    """Top margin (mm) that ``title`` needs for ``text``."""
    if not text:
        return 1.0
    return 2.5 + 3.6 * (text.count("\n") + 1)


def text_width_mm(text: str, fontsize: float) -> float:
    """Width of one line of text at ``fontsize`` points, in millimetres (the glyphs' extent,
    measured without a renderer), for margins that must fit their labels."""
    return TextPath((0, 0), text, size=fontsize).get_extents().width * MM_PER_POINT


def footer_caption(fig: plt.Figure, text: str, y_mm: float = 4.0) -> None:
    fw, fh = fig_mm(fig)
    fig.text(2.0 / fw, y_mm / fh, text, fontsize=6, ha="left", va="center")


def footer_legend(fig: plt.Figure, handles: Sequence, y_mm: float = 4.0) -> None:
    fw, fh = fig_mm(fig)
    fig.legend(handles=list(handles), loc="center right",
               bbox_to_anchor=(1 - 1.0 / fw, y_mm / fh), ncol=len(handles), frameon=False,
               fontsize=6, handlelength=1.5, columnspacing=1.2, borderaxespad=0.0)


def ecg_title(model: str, method: str, ecg_id: int | str, *, true_labels: Sequence[str] = (),
              explained: str | None = None, probability: float | None = None) -> str:
    """``"ECG-IMN, IMN (W·x) | ECG 19 | true: QRSW | explained: QRSW, p = 0.97"``."""
    from imn.plots.style import method_label, model_label

    parts = [f"{model_label(model)}, {method_label(method)}", f"ECG {ecg_id}"]
    parts.append("true: " + (", ".join(true_labels) if true_labels else "none of the classes"))
    if explained is not None:
        text = f"explained: {explained}"
        if probability is not None:
            text += f", p = {probability:.2f}"
        parts.append(text)
    return " | ".join(parts)
