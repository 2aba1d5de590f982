"""Exact tree SHAP for the feature route, and its map back onto the ECG.

:func:`tree_shap`: XGBoost's own exact TreeSHAP (``Booster.predict(pred_contribs=True)``),
one value per feature plus the bias, in log-odds, summing exactly to the model's margin.

:func:`shap_to_ecg`: a feature measures one wave of one lead (``V2_ST60_mean``: the ST level
60 ms after the J point in V2), so its SHAP value is spread over that wave's time span in that
lead, shared equally between the record's beats and uniformly over each span's samples
(a max / min feature, which one beat sets, goes to that beat's span alone). The
result is an attribution ``(N, L, 12)`` like every other explainer's, so the clinical-grid
figures and the localisation metrics apply unchanged. Rules:

* per-lead feature -> its lead, over its wave (``LEAD_FEATURE_WAVES``); ``T_R_ratio`` gives
  half to the QRS and half to the T wave;
* per-lead max / min feature (``EXTREME_FEATURES``, e.g. ``V2_ST60_max``) -> its lead, over
  its wave in the beat that sets it (``FeatureTable.extreme_beats``; the first beat if several
  tie); as the other per-lead features when the table has no such beats or that beat's span
  is missing;
* ``global_*`` feature (an interval of the fiducial lead) -> 1/12 to every lead, over its
  wave (``GLOBAL_FEATURE_WAVES``: QRS_dur over the QRS, QT from QRS onset to T offset, RR
  from one R peak to the next, ...);
* a wave with no span in the record (delineation failed, wave not found) -> spread uniformly
  over the whole lead.

So for every record and lead: ``sum over time of the map == sum of that lead's feature SHAP
values + (sum of the global features' SHAP values) / 12``, exactly; the bias is not mapped.
"""

from __future__ import annotations

import numpy as np

from imn.data.dataset import NUM_LEADS
from imn.features import FeatureTable
from imn.features.delineate import FID
from imn.features.measure import (
    EXTREME_FEATURES,
    GLOBAL_FEATURE_WAVES,
    GLOBAL_FEATURES,
    LEAD_FEATURE_WAVES,
    LEAD_FEATURES,
    wave_spans,
)

_RATIO_WAVES = ("QRS", "T")


def tree_shap(estimator, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact TreeSHAP of a fitted XGBoost classifier (or Booster) on ``features (N, F)``.

    Returns ``(values (N, F), bias (N,))`` in log-odds: ``values.sum(1) + bias`` is the
    model's margin (its logit) for each record.
    """
    import xgboost

    booster = estimator.get_booster() if hasattr(estimator, "get_booster") else estimator
    if not isinstance(booster, xgboost.Booster):
        raise TypeError(f"tree_shap needs an XGBoost model, got {type(estimator).__name__}")
    matrix = xgboost.DMatrix(np.asarray(features, np.float32), missing=np.nan)
    contributions = booster.predict(matrix, pred_contribs=True)
    return contributions[:, :-1], contributions[:, -1]


def _wave_names() -> tuple[str, ...]:
    waves = set(LEAD_FEATURE_WAVES.values()) | set(GLOBAL_FEATURE_WAVES.values()) | set(_RATIO_WAVES)
    waves.discard("QRS+T")
    return tuple(sorted(waves))


WAVE_ORDER = _wave_names()


def wave_densities(fiducials: np.ndarray, sampling_rate: int, length: int) -> np.ndarray:
    """``(len(WAVE_ORDER), L)``: each wave's weight per sample, summing to 1 per wave.

    ``fiducials``: one record's ``(B, len(FIDUCIALS))`` (NaN rows allowed). Each beat with a
    span gets an equal share, spread uniformly over its samples; no span -> uniform.
    """
    beats = fiducials[np.isfinite(fiducials[:, FID["R_peak"]])]
    next_r = np.append(beats[1:, FID["R_peak"]], np.nan)
    densities = np.full((len(WAVE_ORDER), length), 1.0 / length)
    for w, wave in enumerate(WAVE_ORDER):
        start, stop = wave_spans(beats, wave, sampling_rate, next_r_peak=next_r)
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(start) & np.isfinite(stop) & (stop >= start) & (start >= 0) & (stop < length)
        if not ok.any():
            continue
        first, last = start[ok].astype(np.int64), stop[ok].astype(np.int64)
        weight = 1.0 / (ok.sum() * (last - first + 1))
        # A difference array: +w at each span's first sample, -w after its last, cumsum.
        steps = np.zeros(length + 1)
        np.add.at(steps, first, weight)
        np.add.at(steps, last + 1, -weight)
        densities[w] = np.cumsum(steps[:-1])
    return densities


def _wave_matrix() -> tuple[np.ndarray, np.ndarray]:
    """How much of each per-lead / global feature goes to each wave: ``(W, F_lead)``, ``(W, F_global)``."""
    index = {wave: w for w, wave in enumerate(WAVE_ORDER)}
    lead = np.zeros((len(WAVE_ORDER), len(LEAD_FEATURES)))
    for f, feature in enumerate(LEAD_FEATURES):
        wave = LEAD_FEATURE_WAVES[feature]
        if wave == "QRS+T":
            for part in _RATIO_WAVES:
                lead[index[part], f] = 1.0 / len(_RATIO_WAVES)
        else:
            lead[index[wave], f] = 1.0
    glob = np.zeros((len(WAVE_ORDER), len(GLOBAL_FEATURES)))
    for f, feature in enumerate(GLOBAL_FEATURES):
        glob[index[GLOBAL_FEATURE_WAVES[feature]], f] = 1.0
    return lead, glob


_EXTREME_COLUMNS = np.array([LEAD_FEATURES.index(name) for name in EXTREME_FEATURES])


def extreme_beat_spans(table: FeatureTable) -> tuple[np.ndarray, np.ndarray]:
    """First and last sample (inclusive) ``(N, 12, len(EXTREME_FEATURES))`` int of each max /
    min feature's wave in the beat that sets it; -1 where the table has no such beat or that
    beat's span is missing or off the record."""
    n = len(table)
    first = np.full((n, NUM_LEADS, len(EXTREME_FEATURES)), -1, np.int64)
    last = first.copy()
    if table.extreme_beats is None or table.fiducials.shape[1] == 0:  # no beat anywhere
        return first, last
    length = table.signal_length
    for e, name in enumerate(EXTREME_FEATURES):
        beat = table.extreme_beats[:, :, e].astype(np.int64)  # (N, 12)
        # One beat's fiducials per record and lead: (N * 12, len(FIDUCIALS)); -1 -> any row,
        # masked below.
        rows = table.fiducials[np.arange(n)[:, None], np.maximum(beat, 0)].reshape(n * NUM_LEADS, -1)
        start, stop = wave_spans(rows.astype(np.float64), LEAD_FEATURE_WAVES[name], table.sampling_rate)
        start, stop = start.reshape(n, NUM_LEADS), stop.reshape(n, NUM_LEADS)
        with np.errstate(invalid="ignore"):
            ok = (beat >= 0) & np.isfinite(start) & np.isfinite(stop) & (stop >= start) \
                & (start >= 0) & (stop < length)
        first[:, :, e] = np.where(ok, np.nan_to_num(start), -1)
        last[:, :, e] = np.where(ok, np.nan_to_num(stop), -1)
    return first, last


def shap_to_ecg(values: np.ndarray, table: FeatureTable) -> np.ndarray:
    """Feature SHAP values ``(N, F)`` (columns ``table.names``) -> attribution ``(N, L, 12)``.

    See the module docstring for the rules; float32, same units as ``values`` (log-odds).
    """
    values = np.asarray(values, np.float64)
    if values.shape != table.values.shape:
        raise ValueError(f"SHAP values {values.shape} do not match the feature table "
                         f"{table.values.shape} (one value per record and feature column)")
    n_lead = NUM_LEADS * len(LEAD_FEATURES)
    per_lead = values[:, :n_lead].reshape(len(values), NUM_LEADS, len(LEAD_FEATURES)).copy()
    per_global = values[:, n_lead:]
    # Max / min features with a known beat go there; the rest is spread over every beat.
    first, last = extreme_beat_spans(table)
    on_one_beat = first >= 0  # (N, 12, E)
    extreme_values = per_lead[:, :, _EXTREME_COLUMNS]
    per_lead[:, :, _EXTREME_COLUMNS] = np.where(on_one_beat, 0.0, extreme_values)
    lead_to_wave, global_to_wave = _wave_matrix()
    # (N, W, 12): SHAP mass of each wave in each lead.
    wave_mass = np.einsum("wf,nlf->nwl", lead_to_wave, per_lead)
    wave_mass += (np.einsum("wg,ng->nw", global_to_wave, per_global) / NUM_LEADS)[:, :, None]
    length = table.signal_length
    out = np.empty((len(values), length, NUM_LEADS), np.float32)
    for i in range(len(values)):
        densities = wave_densities(table.fiducials[i], table.sampling_rate, length)
        mapped = densities.T @ wave_mass[i]  # (L, 12) float64
        for lead, e in zip(*np.nonzero(on_one_beat[i])):
            span = slice(first[i, lead, e], last[i, lead, e] + 1)
            mapped[span, lead] += extreme_values[i, lead, e] / (span.stop - span.start)
        out[i] = mapped
    return out


def open_tabular_run(workdir, split: str):
    """``(dataset part of split, feature table of its records, fitted estimators per class)``
    of a finished run of :mod:`baselines.tabular`; features come from the cache it filled."""
    import json
    from pathlib import Path

    import joblib

    from baselines.tabular import _split_rows
    from imn.features import dataset_features
    from imn.train.config import TrainConfig
    from imn.train.data import load_dataset

    workdir = Path(workdir)
    model_path = workdir / "model.joblib"
    if not model_path.is_file():
        raise FileNotFoundError(f"{model_path} is missing: {workdir} is not a finished tabular run")
    config = TrainConfig.from_dict(json.loads((workdir / "config.json").read_text()))
    dataset, _ = load_dataset(config.data, config.seed)
    rows = _split_rows(dataset.folds, config)
    if split not in rows:
        raise ValueError(f"unknown split {split!r}; expected train, validation or test")
    used = np.sort(np.concatenate(list(rows.values())))
    dataset = dataset.subset(used)
    table = dataset_features(dataset, progress=False)
    index = np.searchsorted(used, rows[split])
    return dataset.subset(index), table.subset(index), joblib.load(model_path)["estimators"]


def explain_run(workdir, split: str = "test", class_index: int = 0) -> dict[str, np.ndarray]:
    """Tree SHAP of a finished XGBoost run of :mod:`baselines.tabular`, mapped onto its ECGs.

    Returns ``{"attribution": (N, L, 12), "signals": (N, L, 12) mV, "ecg_ids": (N,),
    "shap": (N, F), "bias": (N,), "names": (F,)}`` for the records of ``split``, explaining
    class ``class_index`` (log-odds of that class's model). The features come from the cache
    the run filled.
    """
    part, table, estimators = open_tabular_run(workdir, split)
    if not 0 <= class_index < len(estimators):
        raise ValueError(f"class_index {class_index} out of range for {len(estimators)} classes")
    values, bias = tree_shap(estimators[class_index], table.values)
    return {"attribution": shap_to_ecg(values, table), "signals": part.signals,
            "ecg_ids": part.ecg_ids, "shap": values, "bias": bias, "names": np.asarray(table.names)}


__all__ = ["WAVE_ORDER", "explain_run", "extreme_beat_spans", "shap_to_ecg", "tree_shap",
           "wave_densities"]
