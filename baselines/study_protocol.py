"""The UK Biobank MI study's protocol for the feature route: k-fold CV, mean +- sd, subgroups.

:func:`cross_validate_tabular`: the records' ``strat_fold`` values (PTB-XL's patient-disjoint,
label-stratified folds 1-10) are grouped into ``n_folds`` outer folds (5: {1, 2}, {3, 4},
..., {9, 10}); each outer fold is tested once by a model fitted on the others. The decision
threshold (for F1) is chosen on out-of-fold predictions of the training folds (3-fold inner
CV), so the test fold is used only to score. With ``grid_search`` the study's grid is
searched by inner CV on the training folds only (:func:`baselines.tabular.fit_binary`).

Reported per model, as ``mean +- sd`` over the outer folds: AUROC, AUPRC, F1, and AUROC by
sex (PTB-XL: 0 male, 1 female) and by age band (< 40, 40-55, 55-70, >= 70; PTB-XL codes
ages over 89 as 300, which falls in the last band). A subgroup without both classes in a
fold has no AUROC there (NaN, left out of the mean; the count of folds used is given).
Binary tasks only (the study's MI vs non-MI).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from baselines.tabular import fit_binary, make_estimator, scores_of
from imn.features import dataset_features
from imn.train import metrics
from imn.train.config import TrainConfig

logger = logging.getLogger("imn")

AGE_BANDS: tuple[tuple[str, float, float], ...] = (
    ("<40", -math.inf, 40.0), ("40-55", 40.0, 55.0), ("55-70", 55.0, 70.0), (">=70", 70.0, math.inf),
)
SEXES = (("male", 0), ("female", 1))


def outer_folds(strat_folds: np.ndarray, n_folds: int = 5) -> np.ndarray:
    """Outer fold 0..n_folds-1 of each record from its ``strat_fold`` (1..10)."""
    strat_folds = np.asarray(strat_folds)
    if strat_folds.min() < 1 or strat_folds.max() > 10:
        raise ValueError(f"strat_fold must lie in 1..10; got {strat_folds.min()}..{strat_folds.max()}")
    if n_folds < 2 or 10 % n_folds:
        raise ValueError(f"n_folds must divide the 10 strat folds (2 or 5); got {n_folds}")
    return (strat_folds - 1) // (10 // n_folds)


def subgroup_masks(age: np.ndarray, sex: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean masks ``{"sex=male": (N,), ..., "age=40-55": (N,), ...}``."""
    masks = {f"sex={name}": np.asarray(sex) == code for name, code in SEXES}
    age = np.asarray(age, np.float64)
    for name, low, high in AGE_BANDS:
        masks[f"age={name}"] = (age >= low) & (age < high)
    return masks


def _oof_threshold(name: str, x: np.ndarray, y: np.ndarray, params: dict, seed: int) -> float:
    """F1-optimal threshold on 3-fold out-of-fold scores of the training rows."""
    from sklearn.model_selection import StratifiedKFold

    scores = np.zeros(len(y))
    for inner_train, inner_test in StratifiedKFold(3, shuffle=True, random_state=seed).split(x, y):
        model = make_estimator(name, params, seed).fit(x[inner_train], y[inner_train])
        scores[inner_test] = scores_of(model, x[inner_test])
    return float(metrics.choose_thresholds(y[:, None], scores[:, None])[0])


def _mean_sd(values: list[float]) -> dict[str, Any]:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return {"mean": float(np.mean(finite)) if finite else None,
            "sd": float(np.std(finite, ddof=1)) if len(finite) > 1 else None,
            "folds": len(finite), "per_fold": [None if v is None or not np.isfinite(v) else float(v)
                                               for v in values]}


def cross_validate_features(name: str, features: np.ndarray, labels: np.ndarray,
                            strat_folds: np.ndarray, age: np.ndarray, sex: np.ndarray, *,
                            params: dict[str, Any] | None = None, grid_search: bool = False,
                            inner_folds: int = 5, n_folds: int = 5, seed: int = 0) -> dict:
    """The protocol on a feature matrix ``(N, F)`` with binary ``labels (N,)``.

    Returns ``{"metrics": {metric: {mean, sd, folds, per_fold}}, "subgroup_records": ...}``.
    """
    params = dict(params or {})
    y = np.asarray(labels).astype(int)
    folds = outer_folds(strat_folds, n_folds)
    groups = subgroup_masks(age, sex)
    per_fold: dict[str, list[float]] = {
        key: [] for key in ["auroc", "auprc", "f1", *(f"auroc[{g}]" for g in groups)]}
    for k in range(n_folds):
        train, test = folds != k, folds == k
        model, chosen = fit_binary(name, features[train], y[train], params=params,
                                   grid_search=grid_search, inner_folds=inner_folds, seed=seed)
        best = {key.split("__")[-1]: value for key, value in chosen.items() if key != "inner_cv_auroc"}
        threshold = _oof_threshold(name, features[train], y[train], {**params, **best}, seed)
        scores = scores_of(model, features[test])
        summary = metrics.summarize(y[test], scores, thresholds=np.array([threshold]), n_boot=0)
        per_fold["auroc"].append(summary["macro_auroc"])
        per_fold["auprc"].append(summary["macro_auprc"])
        per_fold["f1"].append(summary["f1"])
        for group, mask in groups.items():
            inside = mask[test]
            sub = y[test][inside]
            auroc = metrics.roc_auc(sub, scores[inside]) if 0 < sub.sum() < len(sub) else math.nan
            per_fold[f"auroc[{group}]"].append(float(auroc))
        logger.info("%s outer fold %d/%d: AUROC %.3f on %d records", name, k + 1, n_folds,
                    summary["macro_auroc"] or math.nan, int(test.sum()))
    return {"model": name, "n_folds": n_folds, "records": len(y), "positives": int(y.sum()),
            "subgroup_records": {g: int(m.sum()) for g, m in groups.items()},
            "metrics": {key: _mean_sd(values) for key, values in per_fold.items()}}


def cross_validate_tabular(config: TrainConfig, workdir: str | Path, n_folds: int = 5) -> dict:
    """Run the protocol for ``config.model.name`` on ``config.data``; writes ``cv.json``."""
    from imn.train.data import load_dataset

    dataset, _ = load_dataset(config.data, config.seed)
    if dataset.labels.shape[1] != 1:
        raise ValueError(f"the study protocol is for binary tasks; {dataset.task!r} has "
                         f"{dataset.labels.shape[1]} classes")
    options = config.model.overrides
    params = {k: v for k, v in options.items() if k not in ("grid_search", "inner_folds")}
    table = dataset_features(dataset)
    result = cross_validate_features(
        config.model.name, table.values, dataset.labels[:, 0], dataset.folds, dataset.age,
        dataset.sex, params=params, grid_search=bool(options.get("grid_search", False)),
        inner_folds=int(options.get("inner_folds", 5)), n_folds=n_folds, seed=config.seed)
    result = {"task": dataset.task, "failed_feature_records": table.n_failed, **result}
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text(config.to_json())
    (workdir / "cv.json").write_text(json.dumps(result, indent=2))
    return result


def cv_markdown(results: list[dict]) -> str:
    """One row per model: ``mean +- sd`` of every metric in ``cv.json`` results."""
    if not results:
        return ""
    keys = list(results[0]["metrics"])
    lines = ["| model | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for result in results:
        cells = []
        for key in keys:
            m = result["metrics"][key]
            cells.append("n/a" if m["mean"] is None else
                         f"{m['mean']:.3f} +- {m['sd']:.3f}" if m["sd"] is not None else f"{m['mean']:.3f}")
        lines.append(f"| {result['model']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


__all__ = ["AGE_BANDS", "cross_validate_features", "cross_validate_tabular", "cv_markdown", "outer_folds", "subgroup_masks"]
