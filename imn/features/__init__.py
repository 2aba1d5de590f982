"""Clinical ECG features: global delineation (NeuroKit2) + per-lead wave measurements.

``extract_features(signals, rate)`` gives a :class:`FeatureTable` of
``12 * len(LEAD_FEATURES)`` per-lead columns named ``<lead>_<feature>`` plus ``global_*``
interval columns; units are in :mod:`imn.features.measure`'s docstring and ``feature_unit``.
"""

from imn.features.delineate import (
    DEFAULT_FIDUCIAL_LEADS,
    FIDUCIALS,
    DelineationError,
    bandpass,
    delineate,
    delineate_best,
    fiducial_signal,
)
from imn.features.extract import FEATURES_VERSION, FeatureTable, dataset_features, extract_features
from imn.features.measure import (
    EXTREME_FEATURES,
    FEATURE_NAMES,
    GLOBAL_FEATURE_WAVES,
    GLOBAL_FEATURES,
    LEAD_FEATURE_WAVES,
    LEAD_FEATURES,
    feature_unit,
    wave_spans,
)

__all__ = [
    "DEFAULT_FIDUCIAL_LEADS",
    "EXTREME_FEATURES",
    "FEATURES_VERSION",
    "FEATURE_NAMES",
    "FIDUCIALS",
    "GLOBAL_FEATURES",
    "GLOBAL_FEATURE_WAVES",
    "LEAD_FEATURES",
    "LEAD_FEATURE_WAVES",
    "DelineationError",
    "FeatureTable",
    "bandpass",
    "dataset_features",
    "delineate",
    "delineate_best",
    "extract_features",
    "feature_unit",
    "fiducial_signal",
    "wave_spans",
]
