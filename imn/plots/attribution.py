"""Figures of a 12-lead ECG with an attribution (saliency) map: the public names in one place.

The figures live in one module per family, this module re-exports them so that
``from imn.plots import attribution as pa; pa.plot_attribution_ecg(...)`` keeps working:

* :mod:`imn.plots.style`: sizes, typography, colour maps, the fixed method/model styles;
* :mod:`imn.plots.base`: input checks, mm geometry, attribution smoothing and kind;
* :mod:`imn.plots.clinical`: clinical layouts, the ECG + attribution figure;
* :mod:`imn.plots.methods`: methods side by side;
* :mod:`imn.plots.segments`: lead x segment heatmap, top-k segments;
* :mod:`imn.plots.xplaim`: single-lead focus and ECG-XPLAIM's four views;
* :mod:`imn.plots.localisation`: one ECG per finding, a strip per method, mask shaded;
* :mod:`imn.plots.curves`, :mod:`imn.plots.summary`, :mod:`imn.plots.model_figures`:
  curves, result summaries and model-internal figures.

Inputs are numpy arrays: ``signal (L, 12)`` in mV and ``attribution (L, 12)``, leads in
``LEADS`` order, ``sampling_rate`` in Hz. Figures are built at their printed size (180 mm
double column by default, fonts >= 6 pt) and saved by ``save_figure`` as PDF + 300 dpi PNG.
"""

from imn.plots.base import (  # noqa: F401
    DEFAULT_SMOOTH_S,
    axes_mm,
    ecg_title,
    is_non_negative,
    is_time_only,
    lead_index,
    normalise_signed,
    smooth_time,
)
from imn.plots.clinical import (  # noqa: F401
    CALIBRATION_MM,
    LAYOUTS,
    STRIP_MM,
    AttributionLayers,
    Panel,
    attribution_layers,
    band_rgba,
    draw_panels,
    layout_panels,
    plot_attribution_ecg,
)
from imn.plots.ecg import GAIN_MM_PER_MV, MM_PER_INCH, PAPER_SPEED_MM_PER_S, ROW_HEIGHT_MM  # noqa: F401
from imn.plots.methods import plot_methods_side_by_side  # noqa: F401
from imn.plots.segments import (  # noqa: F401
    plot_segment_heatmap,
    plot_top_segments,
    segment_heatmap,
    top_k_segments,
    visible_top_k_segments,
    window_grid,
)
from imn.plots.style import (  # noqa: F401
    ABNORMAL_COLOR,
    DOUBLE_COLUMN_MM,
    DPI,
    EVIDENCE_COLOR,
    MIN_FONT_PT,
    NEGATIVE_COLOR,
    POSITIVE_COLOR,
    SINGLE_COLUMN_MM,
    magnitude_cmap,
    method_label,
    method_style,
    save_figure,
    styled,
)
from imn.plots.xplaim import (  # noqa: F401
    abnormal_spans,
    plot_lead_focus,
    plot_xplaim_views,
    strongest_spans,
    xplaim_figures,
)
