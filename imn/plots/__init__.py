"""Figures at printed size: the clinical ECG grid, attribution figures, curves and summaries.

The fixed colour, line style and readable name of every method and model live in
:mod:`imn.plots.style` and are re-exported here for other front ends.
"""

from imn.plots.style import method_label, method_style, model_label, model_style  # noqa: F401
