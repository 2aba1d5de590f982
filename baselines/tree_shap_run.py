"""The feature route's explanation scored as the networks' are: tree SHAP on the synthetic
benchmark, for localisation and for faithfulness.

:func:`score_tree_shap` explains the same ECGs ``imn.explain.run`` picks with
``targets="evidence"`` (the first ``n`` test records carrying a class with a local evidence
mask, each for the such class its model scores highest, here the largest log-odds) by XGBoost's
exact tree SHAP mapped onto the ECG (:func:`baselines.tree_shap.shap_to_ecg`), beside a random
map (a fixed normal draw, like the ``random`` method), and scores both with

* the perturbation metrics of :func:`imn.explain.run.perturbation_scores` (deletion and
  insertion curves, AOPC, faithfulness correlation, infidelity) on the raw ECG in mV, where
  every perturbed ECG is delineated and measured again (NeuroKit2, :mod:`imn.features`) and
  fed to the trees: the model is a host function entered through ``jax.pure_callback``;
  a perturbed record whose delineation fails gets NaN features, which XGBoost treats as
  missing values, as it does in training;
* the localisation metrics and reference maps of the networks' tables.

Max-sensitivity and randomisation similarity are not computed (NaN): the first would delineate
every noisy copy again for each method, the second has no counterpart for fitted trees.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from baselines.tree_shap import open_tabular_run, shap_to_ecg, tree_shap

METHODS = ("tree_shap", "random")


def host_predict_fn(estimators, sampling_rate: int):
    """A jittable ``predict(x (N, L, 12) mV) -> (N, K)`` probabilities of the fitted
    per-class estimators, through feature extraction on the host."""
    import jax
    import jax.numpy as jnp

    from baselines.tabular import scores_of
    from imn.features import extract_features

    feature_log = logging.getLogger("imn.features.extract")

    def on_host(x: np.ndarray) -> np.ndarray:
        # Thousands of small calls: NeuroKit2's warnings on flattened leads and the per-call
        # timing and failure lines would bury the run's log (failures become NaN features).
        level = feature_log.level
        feature_log.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                table = extract_features(np.asarray(x, np.float64), sampling_rate, progress=False,
                                         use_cache=False)
        finally:
            feature_log.setLevel(level)
        return np.stack([scores_of(e, table.values) for e in estimators], axis=1).astype(np.float32)

    def predict(x):
        shape = jax.ShapeDtypeStruct((x.shape[0], len(estimators)), jnp.float32)
        return jax.pure_callback(on_host, shape, x, vmap_method="broadcast_all")

    return predict


def score_tree_shap(workdir, settings, split: str = "test", n: int | None = None, seed: int = 0) -> dict[str, Any]:
    """Explain and score a finished XGBoost run (see the module docstring); writes
    ``faithfulness_{split}.json`` (rows, reference rows, per-finding localisation) and
    ``faithfulness_curves_{split}.npz`` like the networks' runs, and returns the summary.
    ``settings``: the :class:`imn.explain.run.FaithfulnessSettings` of the networks."""
    from imn import atomic
    from imn.explain.run import (
        _local_evidence,
        localisation_scores,
        localisation_tables,
        method_row,
        perturbation_scores,
    )

    part, table, estimators = open_tabular_run(workdir, split)
    if part.evidence is None:
        raise ValueError(f"{workdir}: tree SHAP is scored on data with evidence masks "
                         "(the synthetic benchmark); this run's data has none")
    local = _local_evidence(part)
    rows = np.flatnonzero(local.any(axis=1))[:n]
    features = table.subset(rows)
    start = time.perf_counter()
    per_class = [tree_shap(estimator, features.values) for estimator in estimators]
    margins = np.stack([values.sum(1) + bias for values, bias in per_class], axis=1)  # (n, K)
    targets = np.where(local[rows], margins, -np.inf).argmax(axis=1).astype(np.int32)
    values = np.stack([per_class[k][0][i] for i, k in enumerate(targets)])
    maps = {"tree_shap": shap_to_ecg(values, features)}
    seconds = {"tree_shap": time.perf_counter() - start, "random": 0.0}
    maps["random"] = np.random.default_rng(seed).normal(size=maps["tree_shap"].shape).astype(np.float32)
    x = np.asarray(part.signals[rows], np.float32)
    mask = np.asarray(part.evidence[rows, targets])
    predict = host_predict_fn(estimators, part.sampling_rate)
    result_rows, curves, localisation = [], {}, {}
    for method in METHODS:
        scores = perturbation_scores(predict, x, maps[method], targets, settings,
                                     sampling_rate=part.sampling_rate)
        curves[f"{method}_deletion"] = scores.pop("deletion_curve")
        curves[f"{method}_insertion"] = scores.pop("insertion_curve")
        scores["max_sensitivity"] = np.full(len(x), np.nan)
        scores["randomization_similarity"] = np.full(len(x), np.nan)
        localisation[method] = localisation_scores(maps[method], mask)
        scores.update(localisation[method])
        result_rows.append(method_row(method, len(x), seconds[method], scores))
    explained = SimpleNamespace(evidence=mask, targets=targets, classes=tuple(part.classes))
    references, by_finding = localisation_tables(explained, localisation)
    workdir = Path(workdir)
    atomic.savez_compressed(workdir / f"faithfulness_curves_{split}.npz", steps=settings.steps,
                            unit=settings.unit, targets=targets, ecg_ids=part.ecg_ids[rows], **curves)
    summary = {"split": split, "targets": "evidence", "rows": result_rows, "reference_rows": references,
               "localisation_by_finding": by_finding, "ecg_ids": part.ecg_ids[rows].tolist(),
               "not_computed": {"max_sensitivity": "every noisy copy would need a new delineation",
                                "randomization_similarity": "no counterpart for fitted trees"},
               "finished": True, "methods_pending": []}
    atomic.write_json(workdir / f"faithfulness_{split}.json", summary, default=str)
    return summary


__all__ = ["METHODS", "host_predict_fn", "score_tree_shap"]
