"""The one place that fixes how figures look: print sizes, typography, colour maps, and the
colour + line style + readable name of every attribution method and model.

Every figure module draws methods with :func:`method_style` / :func:`method_label`, so a
method has the same colour, line style and name in every figure of the project (and in any
other front end, e.g. an HTML viewer, that imports this module).

Colour choices (all colour-blind safe):

* methods and models: the Okabe & Ito (2008) palette without its yellow (too light on
  white); a method that shares a colour with another differs from it by line style. The
  ``random`` control is always grey and dotted, so it reads as a reference, not a contender.
* signed attributions: ``RdBu_r`` (ColorBrewer) with limits symmetric around 0 (red supports
  the explained class, blue refutes it); non-negative maps (Grad-CAM, ``|a|``): the
  sequential ``YlOrRd`` started at white, so zero is blank paper.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import Colormap, LinearSegmentedColormap, ListedColormap  # noqa: E402

DPI = 300
SINGLE_COLUMN_MM = 88.0
DOUBLE_COLUMN_MM = 180.0
MIN_FONT_PT = 6.0

SIGNED_CMAP = "RdBu_r"
MAGNITUDE_CMAP = "YlOrRd"
POSITIVE_COLOR = "#b2182b"  # the red end of RdBu_r
NEGATIVE_COLOR = "#2166ac"  # the blue end of RdBu_r
ABNORMAL_COLOR = "#D55E00"  # Okabe-Ito vermilion
EVIDENCE_COLOR = "#009E73"  # Okabe-Ito bluish green: ground-truth evidence masks
TRACE_COLOR = "#111111"
GRID_COLORS = ("#e3e3e3", "#b5b5b5")

# Okabe & Ito (2008) without yellow, which is too light on white.
OKABE_ITO: tuple[str, ...] = (
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
)
LINESTYLES: tuple[str, ...] = ("-", "--", "-.", (0, (5, 1, 1, 1, 1, 1)))

# ----------------------------------------------------------------------------- methods and models

# name -> (readable name, colour, line style). Families share a colour: gradient methods are
# green/purple, Shapley estimators orange, class-activation maps blue.
_METHODS: dict[str, tuple[str, str, Any]] = {
    "imn": ("IMN (W\u00b7x)", "#D55E00", "-"),
    "gradcam": ("Grad-CAM", "#0072B2", "-"),
    "gradcam_x_input": ("Grad-CAM \u00d7 input", "#0072B2", "--"),
    "saliency": ("Saliency", "#56B4E9", "-"),
    "input_x_gradient": ("Input \u00d7 gradient", "#009E73", "-"),
    "integrated_gradients": ("Integrated gradients", "#009E73", "--"),
    "gradient_shap": ("GradientSHAP", "#E69F00", "-"),
    "kernel_shap": ("KernelSHAP", "#E69F00", "--"),
    "occlusion": ("Occlusion", "#CC79A7", "-"),
    "attention": ("Attention map (xECGNet)", "#CC79A7", "--"),
    "tree_shap": ("Tree SHAP (features)", "#000000", "-."),
    "random": ("Random (control)", "#7f7f7f", ":"),
    # Localisation reference rows: the planted mask itself and the mask moved off the evidence.
    "oracle": ("Oracle (the mask)", "#000000", "-"),
    "misplaced_mask": ("Misplaced mask (control)", "#000000", ":"),
}
_MODELS: dict[str, tuple[str, str, Any]] = {
    "imn": ("ECG-IMN", "#D55E00", "-"),
    "cnn2d": ("2-D CNN", "#0072B2", "--"),
    "inception1d": ("Inception1D", "#009E73", "-."),
    "resnet1d_wang": ("ResNet1D (Wang)", "#CC79A7", (0, (5, 1, 1, 1, 1, 1))),
    "xresnet1d101": ("xResNet1D-101", "#E69F00", "-"),
    "resnet34_1d": ("ResNet34-1D", "#56B4E9", "--"),
    "xecgnet": ("xECGNet", "#F0E442", "-"),
    "xecgnet_ft": ("xECGNet, fine-tuned", "#F0E442", "--"),
    "imn_stable": ("ECG-IMN, stabilised", "#D55E00", "--"),
    # The paper's categorical head (2 logits, softmax): the model of its headline number.
    "imn_softmax": ("ECG-IMN, softmax", "#D55E00", (0, (1, 1))),
    "imn_direct": ("ECG-IMN, direct", "#D55E00", "-."),
    # The trainability study's IMN with this codebase's earlier Flax initialisation.
    "imn_flax_init": ("ECG-IMN, Flax init", "#E69F00", ":"),
    # The clinical-feature route (baselines.tabular): black and grey, apart from the networks.
    "xgboost": ("XGBoost (features)", "#000000", "-"),
    "hist_gbm": ("Gradient boosting (features)", "#000000", "--"),
    "random_forest": ("Random forest (features)", "#000000", "-."),
    "logistic_l2": ("Logistic regression (features)", "#7F7F7F", "-"),
    "linear_svm": ("Linear SVM (features)", "#7F7F7F", "--"),
    "decision_tree": ("Decision tree (features)", "#7F7F7F", "-."),
}


def _fallback(name: str) -> dict[str, Any]:
    """A stable style for a name not in the map (from a CRC of the name, not its position,
    so it does not change when other methods are added or removed)."""
    code = zlib.crc32(name.encode())
    return {"color": OKABE_ITO[code % len(OKABE_ITO)],
            "linestyle": LINESTYLES[(code // len(OKABE_ITO)) % len(LINESTYLES)]}


def method_style(name: str) -> dict[str, Any]:
    """``{'color', 'linestyle'}`` of attribution method ``name`` (fixed across figures)."""
    if name in _METHODS:
        _, color, linestyle = _METHODS[name]
        return {"color": color, "linestyle": linestyle}
    return _fallback(name)


def method_label(name: str) -> str:
    """Readable name of a method (``'gradcam_x_input'`` -> ``'Grad-CAM × input'``)."""
    return _METHODS[name][0] if name in _METHODS else name.replace("_", " ")


def model_style(name: str) -> dict[str, Any]:
    """``{'color', 'linestyle'}`` of model ``name`` (fixed across figures)."""
    if name in _MODELS:
        _, color, linestyle = _MODELS[name]
        return {"color": color, "linestyle": linestyle}
    return _fallback(name)


# Markers for per-epoch lines, so that models sharing a hue (the IMN family) stay apart in
# greyscale print and in a legend's small handles; other models get a circle.
_MODEL_MARKERS = {
    "imn": "o", "imn_stable": "s", "imn_softmax": "D", "imn_direct": "v",
    "imn_flax_init": "^", "cnn2d": "P", "inception1d": "X", "resnet1d_wang": "h",
    "xecgnet": "<", "xecgnet_ft": ">",
}


def model_marker(name: str) -> str:
    """Matplotlib marker of model ``name`` for per-epoch lines (fixed across figures)."""
    return _MODEL_MARKERS.get(name, "o")


def model_label(name: str) -> str:
    """Readable name of a model (``'resnet1d_wang'`` -> ``'ResNet1D (Wang)'``)."""
    return _MODELS[name][0] if name in _MODELS else name


def method_styles(names: list[str] | tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """``name -> method_style(name)`` for each name."""
    return {name: method_style(name) for name in names}


# ----------------------------------------------------------------------------- colour maps


def magnitude_cmap() -> LinearSegmentedColormap:
    """YlOrRd with its pale-yellow start replaced by white, for maps >= 0 (zero = no colour)."""
    base = plt.get_cmap(MAGNITUDE_CMAP)
    anchors = [(1.0, 1.0, 1.0)] + [base(x)[:3] for x in np.linspace(0.12, 1.0, 8)]
    return LinearSegmentedColormap.from_list("white_YlOrRd", anchors)


def signed_cmap() -> Colormap:
    """``RdBu_r``: blue (refutes) - white (0) - red (supports)."""
    return plt.get_cmap(SIGNED_CMAP)


def lightened(cmap: Colormap, alpha: float) -> ListedColormap:
    """``cmap`` blended over white at ``alpha`` (so a black trace stays readable on it)."""
    rgb = cmap(np.linspace(0.0, 1.0, 256))[:, :3]
    return ListedColormap(rgb * alpha + (1.0 - alpha), name=f"{cmap.name}_light")


# ----------------------------------------------------------------------------- typography, saving

# Final-size typography: 7 pt body, 6 pt ticks and legends (the minimum asked of a figure).
RC: dict[str, Any] = {
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
    """Run ``func`` under the project's final-size typography (rc parameters)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with plt.rc_context(RC):
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


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
    with plt.rc_context(RC):
        for path in paths:
            # No bbox_inches="tight": the saved size must be the designed (printed) size.
            # No creation date in the PDF: redrawing an unchanged figure leaves the committed
            # file byte-identical instead of touching every PDF in results/.
            metadata = {"CreationDate": None} if path.suffix == ".pdf" else None
            fig.savefig(path, dpi=dpi, metadata=metadata)
    plt.close(fig)
    return paths


def finish(fig: plt.Figure, out: str | Path | None) -> plt.Figure:
    """Save ``fig`` to ``out`` (a stem) when given; return it."""
    if out is not None:
        save_figure(fig, out)
    return fig
