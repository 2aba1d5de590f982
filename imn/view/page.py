"""One self-contained HTML page from the explained runs: plotly.js (from the ``plotly``
Python package), the viewer's script and style, and every ECG's data inline. Nothing is
fetched when the page opens, so it works offline from disk.
"""

from __future__ import annotations

import datetime
import html
import json
from importlib import resources
from pathlib import Path

import numpy as np

from imn.data.dataset import LEADS
from imn.plots import style
from imn.plots.style import method_label
from imn.view import encode
from imn.view.collect import RunView

# The static figures' grey paper (the paper's red would compete with a red/blue
# attribution) and their Okabe-Ito bluish green for planted masks.
GRID_COLORS = dict(zip(("minor", "major"), style.GRID_COLORS))
MASK_COLOR = style.EVIDENCE_COLOR
# Opacity of an overlay at |a| = peak, as the static figures' bands (imn.plots.clinical).
BAND_ALPHA = 0.85
_COLORSCALE_STOPS = 21


def _rgba_scale(cmap, alpha_of) -> list[list]:
    """A plotly colorscale sampled from a matplotlib colormap; ``alpha_of(position)`` gives
    the opacity, so weak attribution leaves the grid visible as on the static figures."""
    scale = []
    for position in np.linspace(0.0, 1.0, _COLORSCALE_STOPS):
        r, g, b, _ = cmap(position)
        scale.append([float(position), f"rgba({round(255 * r)},{round(255 * g)},{round(255 * b)},"
                                        f"{alpha_of(position):.3f})"])
    return scale


def colorscales() -> dict[str, list]:
    """Signed maps: RdBu_r centred at 0 (red supports the explained class); non-negative
    maps: the white-started YlOrRd. Both from imn.plots.style, the static figures'
    own colormaps, with opacity growing with |a|."""
    import matplotlib.pyplot as plt

    from imn.plots.style import MAGNITUDE_CMAP, SIGNED_CMAP, magnitude_cmap

    return {
        "signed": _rgba_scale(plt.get_cmap(SIGNED_CMAP), lambda p: BAND_ALPHA * abs(2 * p - 1)),
        "magnitude": _rgba_scale(magnitude_cmap(), lambda p: BAND_ALPHA * p),
        "magnitude_name": MAGNITUDE_CMAP,
        "signed_name": SIGNED_CMAP,
    }


def method_traits(view: RunView, method: str) -> dict:
    """How a method's maps are drawn: ``kind`` 'magnitude' when no map of the run has a
    negative value (Grad-CAM), else 'signed'; ``time_only`` when every map is the same on
    all 12 leads (1-D Grad-CAM), drawn as one strip rather than 12 lead-specific maps."""
    maps = [ecg.maps[method] for ecg in view.ecgs if method in ecg.maps]
    nonnegative = all(np.nanmin(a) >= 0 for a in maps) and any(np.nanmax(a) > 0 for a in maps)
    time_only = all(np.allclose(a, a[:, :1], rtol=1e-6, atol=0.0) for a in maps)
    return {"label": method_label(method),
            "kind": "magnitude" if nonnegative else "signed", "time_only": bool(time_only)}


def imn_weights(ecg) -> np.ndarray | None:
    """IMN's weight map of the explained scalar, ``W = (W · x) / x`` ``(L, 12)``: exact up
    to float rounding where ``x != 0``, undefined (NaN) where ``x == 0``."""
    if "imn" not in ecg.maps:
        return None
    x = ecg.x.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x != 0.0, ecg.maps["imn"].astype(np.float64) / x, np.nan)


def _commit(provenance: dict) -> str:
    """The git commit a run was trained at (provenance.json), or ''."""
    git = provenance.get("git")
    return str(git.get("commit", "")) if isinstance(git, dict) else ""


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _rounded(curve: np.ndarray) -> list[float | None]:
    """A curve for JSON: 5 decimals, None (a gap in the plot) where it is not finite."""
    return [_finite(round(float(v), 5)) for v in curve]


def run_payload(view: RunView) -> dict:
    """The JSON a page holds for one run (arrays encoded by :mod:`imn.view.encode`)."""
    rate = view.sampling_rate
    overlay_factor = encode.bin_factor(rate, encode.OVERLAY_RATE)
    signal_factor = encode.bin_factor(rate, encode.SIGNAL_RATE)
    ecgs = []
    for ecg in view.ecgs:
        weights = imn_weights(ecg)
        ecgs.append({
            "id": ecg.ecg_id,
            "explained": view.classes[ecg.target] if ecg.target < len(view.classes) else str(ecg.target),
            "true": ecg.true_label,
            "predicted": ecg.predicted,
            "p_predicted": _finite(ecg.p_predicted),
            "p_explained": _finite(ecg.p_explained),
            "signal": encode.encode_signal(ecg.signal, signal_factor),
            "maps": {m: encode.encode_overlay(a, overlay_factor) for m, a in ecg.maps.items()},
            "weights": None if weights is None else encode.encode_overlay(weights, overlay_factor),
            "mask": None if ecg.evidence is None or not ecg.evidence.any()
            else encode.spans_seconds(ecg.evidence, rate),
            "curves": {m: {"deletion": _rounded(d), "insertion": _rounded(i)}
                       for m, (d, i) in ecg.curves.items()},
        })
    length = view.ecgs[0].signal.shape[0] if view.ecgs else 0
    return {
        "name": view.name,
        "model": view.model,
        "task": view.task,
        "path": str(view.path),
        "rate": rate,
        "signal_rate": rate / signal_factor,
        "overlay_rate": rate / overlay_factor,
        "seconds": length / rate,
        "units": view.units,
        "units_note": view.units_note,
        "classes": list(view.classes),
        "methods": {m: method_traits(view, m) for m in view.methods},
        "curve_unit": view.curve_unit,
        "curve_steps": view.curve_steps,
        "git": _commit(view.provenance),
        "ecgs": ecgs,
    }


def report_payload(views: list[RunView], title: str) -> dict:
    return {
        "title": title,
        "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "leads": list(LEADS),
        "colorscales": colorscales(),
        "grid": GRID_COLORS,
        "mask_color": MASK_COLOR,
        "mulaw": {"mu": encode.MU, "levels": encode.LEVELS, "undefined": encode.UNDEFINED,
                  "relative_error": encode.MULAW_RELATIVE_ERROR},
        "runs": [run_payload(view) for view in views],
    }


def _asset(name: str) -> str:
    return resources.files("imn.view").joinpath(name).read_text(encoding="utf-8")


def _script_safe(text: str) -> str:
    """Text that cannot end the <script> element it sits in."""
    return text.replace("</", "<\\/")


def render_html(payload: dict) -> str:
    """The page: plotly.js, the viewer's style, data and script, all inline."""
    from plotly.offline import get_plotlyjs

    data = _script_safe(json.dumps(payload, separators=(",", ":"), allow_nan=False))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(payload['title'])}</title>\n"
        f"<style>\n{_asset('style.css')}\n</style>\n"
        # Reports a failure to the reader (and to the browser test) instead of a blank page.
        "<script>window.addEventListener('error',function(e){var b=document.getElementById('error');"
        "if(b){b.hidden=false;b.textContent='The viewer failed: '+e.message;}});</script>\n"
        f"<script>{get_plotlyjs()}</script>\n"
        "</head>\n<body>\n"
        f"{_asset('body.html')}\n"
        f"<script type=\"application/json\" id=\"imn-data\">{data}</script>\n"
        f"<script>\n{_asset('app.js')}\n</script>\n"
        "</body>\n</html>\n"
    )


def write_html(payload: dict, out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(payload), encoding="utf-8")
    return out
