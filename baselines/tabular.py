"""The clinical-feature route: classical models on :mod:`imn.features`, run like a neural model.

Models (``config.model.name``):

=================  ==========================================================================
name               model
=================  ==========================================================================
``xgboost``        XGBoost gradient-boosted trees; defaults are the hyper-parameters the UK
                   Biobank MI study (Wang, Qi, Xu, 2022) chose by grid search: max_depth 7,
                   learning rate 0.05, 200 trees, min_child_weight 0.01, gamma 0.3,
                   subsample 0.6, colsample_bytree 0.6, reg_lambda 0.01, reg_alpha 0.01
``hist_gbm``       scikit-learn's histogram gradient boosting (the lighter boosted trees)
``random_forest``  random forest, 500 trees
``logistic_l2``    L2-regularised logistic regression on standardised features
``linear_svm``     linear SVM (hinge loss) on standardised features; scores are its margins
``decision_tree``  one CART tree (max depth 6)
=================  ==========================================================================

XGBoost and HistGradientBoosting take NaN features as they are (records whose delineation
failed, waves not found); the others get the training split's median per feature (a
scikit-learn ``SimpleImputer`` inside the pipeline, so it is fitted on training rows only).

``config.model.overrides``: hyper-parameters of the estimator (e.g. ``{"max_depth": 5}``),
plus ``grid_search: true`` for the study's protocol: :data:`GRIDS` searched by inner
stratified cross-validation on the *training* split only (``inner_folds``, default 5,
scored by AUROC); the validation split chooses only the decision thresholds, as for the
neural models; the test split is touched once. Multi-label tasks fit one model per class.

The run folder has the neural runs' layout (``config.json``, ``provenance.json``,
``metrics.jsonl`` with one line, ``predictions_{validation,test}.npz``, ``metrics.json``)
plus ``model.joblib`` (the fitted estimators) and ``features.json`` (columns, failures), so
:func:`imn.reproduce.tables.classification_rows` reads it unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from imn import atomic, provenance
from imn.features import FeatureTable, dataset_features
from imn.train import metrics
from imn.train.config import TrainConfig
from imn.train.data import evaluation_splits

logger = logging.getLogger("imn")

STUDY_XGBOOST = {
    "max_depth": 7, "learning_rate": 0.05, "n_estimators": 200, "min_child_weight": 0.01,
    "gamma": 0.3, "subsample": 0.6, "colsample_bytree": 0.6, "reg_lambda": 0.01,
    "reg_alpha": 0.01,
}
# The study's nine XGBoost hyper-parameters, each around the value it chose (its grid's
# other values are not published); 2 x 3 x 2^7 = 768 combinations. The other models' grids
# are the usual small ones.
GRIDS: dict[str, dict[str, list[Any]]] = {
    "xgboost": {
        "max_depth": [3, 5, 7], "learning_rate": [0.05, 0.1], "n_estimators": [100, 200],
        "min_child_weight": [0.01, 1.0], "gamma": [0.0, 0.3], "subsample": [0.6, 1.0],
        "colsample_bytree": [0.6, 1.0], "reg_lambda": [0.01, 1.0], "reg_alpha": [0.0, 0.01],
    },
    "hist_gbm": {"learning_rate": [0.05, 0.1], "max_depth": [3, None], "l2_regularization": [0.0, 1.0]},
    "random_forest": {"max_depth": [None, 8], "min_samples_leaf": [1, 5], "max_features": ["sqrt", 0.3]},
    "logistic_l2": {"C": [0.01, 0.1, 1.0, 10.0]},
    "linear_svm": {"C": [0.001, 0.01, 0.1, 1.0]},
    "decision_tree": {"max_depth": [3, 6, 10], "min_samples_leaf": [1, 5, 20]},
}
TABULAR_MODELS: tuple[str, ...] = tuple(GRIDS)
_PIPELINE_STEP = "model"  # name of the estimator inside imputing/scaling pipelines
_RUN_OPTIONS = ("grid_search", "inner_folds")


def is_tabular(model_name: str) -> bool:
    return model_name in TABULAR_MODELS


def make_estimator(name: str, params: dict[str, Any] | None = None, seed: int = 0):
    """An unfitted binary classifier; ``params`` override its defaults.

    Pipelines (imputer, scaler, model) expose the model's parameters unprefixed here; use
    :func:`estimator_params` to address them in a grid.
    """
    params = dict(params or {})
    if name == "xgboost":
        from xgboost import XGBClassifier

        return XGBClassifier(**{**STUDY_XGBOOST, "tree_method": "hist", "n_jobs": 1,
                                "random_state": seed, "eval_metric": "logloss", **params})
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC
    from sklearn.tree import DecisionTreeClassifier

    if name == "hist_gbm":
        return HistGradientBoostingClassifier(**{"random_state": seed, **params})
    if name == "random_forest":
        model = RandomForestClassifier(**{"n_estimators": 500, "n_jobs": 1, "random_state": seed,
                                          **params})
        steps = [("impute", SimpleImputer(strategy="median", keep_empty_features=True))]
    elif name == "decision_tree":
        model = DecisionTreeClassifier(**{"max_depth": 6, "random_state": seed, **params})
        steps = [("impute", SimpleImputer(strategy="median", keep_empty_features=True))]
    elif name == "logistic_l2":
        model = LogisticRegression(**{"C": 0.1, "max_iter": 2000, **params})
        steps = [("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                 ("scale", StandardScaler())]
    elif name == "linear_svm":
        model = LinearSVC(**{"C": 0.01, "max_iter": 20000, "random_state": seed, **params})
        steps = [("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                 ("scale", StandardScaler())]
    else:
        raise ValueError(f"unknown tabular model {name!r}; expected one of {TABULAR_MODELS}")
    return Pipeline(steps + [(_PIPELINE_STEP, model)])


def estimator_params(estimator, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """``grid`` with keys prefixed for a pipeline's model step."""
    if hasattr(estimator, "steps"):
        return {f"{_PIPELINE_STEP}__{key}": values for key, values in grid.items()}
    return grid


def scores_of(estimator, features: np.ndarray) -> np.ndarray:
    """Positive-class scores ``(N,)``: probabilities, or an SVM's margins."""
    if hasattr(estimator, "predict_proba"):
        return estimator.predict_proba(features)[:, 1]
    return estimator.decision_function(features)


def fit_binary(name: str, features: np.ndarray, labels: np.ndarray, *, params: dict[str, Any],
               grid_search: bool, inner_folds: int, seed: int):
    """Fit one binary model on the training rows ``features (N, F)``, ``labels (N,)``.

    With ``grid_search``, :data:`GRIDS` [name] is searched by stratified ``inner_folds``-fold
    cross-validation on these rows only (refitted on all of them with the best setting).
    Returns ``(estimator, chosen params or {})``.
    """
    labels = np.asarray(labels).astype(int)
    if labels.min() == labels.max():
        raise ValueError(f"the training split has only class {labels[0]}; a {name} model needs both")
    estimator = make_estimator(name, params, seed)
    if not grid_search:
        return estimator.fit(features, labels), {}
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    folds = min(inner_folds, int(np.bincount(labels).min()))
    if folds < 2:
        raise ValueError(f"grid search needs >= 2 training records of each class; got {np.bincount(labels)}")
    search = GridSearchCV(estimator, estimator_params(estimator, GRIDS[name]), scoring="roc_auc",
                          cv=StratifiedKFold(folds, shuffle=True, random_state=seed), refit=True,
                          n_jobs=1)
    search.fit(features, labels)
    return search.best_estimator_, {**search.best_params_, "inner_cv_auroc": search.best_score_}


class ConstantClassifier:
    """The model of a class whose training labels are all one value (it cannot be fitted):
    every record gets that value as its probability. Its AUROC is 0.5 wherever the evaluated
    split has both labels; the run goes on with the other classes, as the networks' runs do."""

    def __init__(self, value: int):
        self.value = float(value)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        n = len(features)
        return np.column_stack([np.full(n, 1.0 - self.value), np.full(n, self.value)])


def fit_classes(name: str, features: np.ndarray, labels: np.ndarray, classes: tuple[str, ...], *,
                params: dict[str, Any], grid_search: bool, inner_folds: int, seed: int):
    """One binary model per class of ``labels (N, K)`` (:func:`fit_binary`); a class with one
    label value in training gets a :class:`ConstantClassifier` and a warning instead of
    failing the run. Returns ``(estimators, chosen params per class)``."""
    estimators, chosen = [], []
    for k, cls in enumerate(classes):
        column = np.asarray(labels[:, k]).astype(int)
        if column.min() == column.max():
            logger.warning("%s: class %s has only label %d in the training split; it gets a "
                           "constant score", name, cls, column[0])
            estimators.append(ConstantClassifier(column[0]))
            chosen.append({"class": cls, "constant": int(column[0])})
            continue
        estimator, best = fit_binary(name, features, column, params=params, grid_search=grid_search,
                                     inner_folds=inner_folds, seed=seed)
        estimators.append(estimator)
        chosen.append({"class": cls, **best})
        logger.info("%s fitted for class %s on %d records%s", name, cls, len(features),
                    f" (grid search: {best})" if best else "")
    return estimators, chosen


@dataclasses.dataclass
class TabularRun:
    """A fitted feature-route run: one estimator per class and its feature table."""

    estimators: list
    classes: tuple[str, ...]
    features: FeatureTable
    rows: dict[str, np.ndarray]  # split -> row indices into the dataset / feature table


def _split_rows(folds: np.ndarray, config: TrainConfig) -> dict[str, np.ndarray]:
    # The evaluation protocol as the neural trainer applies it (merged_9_10: test = validation).
    splits = evaluation_splits(config.data)
    rows = {}
    for name in ("train", "validation", "test"):
        if name == "test" and config.data.protocol == "merged_9_10":
            rows["test"] = rows["validation"]  # select and report on the same records
            continue
        index = np.flatnonzero(np.isin(folds, splits.folds(name)))
        if config.data.max_records is not None:
            index = index[:config.data.max_records]
        if len(index) == 0:
            raise ValueError(f"the {name} split (folds {splits.folds(name)}) is empty")
        rows[name] = index
    return rows


def train_and_evaluate(config: TrainConfig, workdir: str | Path) -> dict:
    """Extract features, fit ``config.model.name`` on the training folds, evaluate like the
    neural trainer (thresholds from validation, bootstrap CIs) and write the run folder.

    Returns the dictionary written to ``metrics.json``.
    """
    from imn.train.data import load_dataset

    name = config.model.name
    if not is_tabular(name):
        raise ValueError(f"{name!r} is not a tabular model; expected one of {TABULAR_MODELS}")
    options = {key: config.model.overrides[key] for key in _RUN_OPTIONS if key in config.model.overrides}
    params = {k: v for k, v in config.model.overrides.items() if k not in _RUN_OPTIONS}
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text(config.to_json())

    dataset, identity = load_dataset(config.data, config.seed)
    rows = _split_rows(dataset.folds, config)
    # Measure only the records the run uses (all of them unless data.max_records caps a split).
    # Kept in dataset order, so an uncapped run measures exactly the dataset's signals and
    # shares their feature cache with every other model and protocol on the same data.
    # Unique: under merged_9_10 the test rows are the validation rows.
    used = np.unique(np.concatenate(list(rows.values())))
    dataset = dataset.subset(used)
    rows = {split: np.searchsorted(used, index) for split, index in rows.items()}
    table = dataset_features(dataset)
    identity["records_per_split"] = {split: len(index) for split, index in rows.items()}
    record = provenance.collect(identity)
    record["model"] = {"name": name, "classes": list(dataset.classes), "features": len(table.names)}
    (workdir / "provenance.json").write_text(json.dumps(record, indent=2, default=str))

    started = time.perf_counter()
    train_x, train_y = table.values[rows["train"]], dataset.labels[rows["train"]]
    estimators, chosen = fit_classes(name, train_x, train_y, dataset.classes, params=params,
                                     grid_search=bool(options.get("grid_search", False)),
                                     inner_folds=int(options.get("inner_folds", 5)), seed=config.seed)
    fit_seconds = time.perf_counter() - started

    def predict(split: str) -> np.ndarray:
        x = table.values[rows[split]]
        return np.stack([scores_of(e, x) for e in estimators], axis=1).astype(np.float32)

    scores = {split: predict(split) for split in ("validation", "test")}
    thresholds = metrics.choose_thresholds(dataset.labels[rows["validation"]], scores["validation"])
    results = {}
    for split in ("validation", "test"):
        labels = dataset.labels[rows[split]]
        np.savez_compressed(workdir / f"predictions_{split}.npz", scores=scores[split], labels=labels,
                            ecg_ids=dataset.ecg_ids[rows[split]], classes=np.asarray(dataset.classes),
                            thresholds=thresholds)
        results[split] = metrics.summarize(labels, scores[split], thresholds=thresholds,
                                           n_boot=config.bootstrap_samples, seed=config.seed,
                                           class_names=list(dataset.classes))
    val_auroc = float(results["validation"]["macro_auroc"])
    (workdir / "metrics.jsonl").write_text(json.dumps({
        "epoch": 0, "val_macro_auroc": val_auroc, "best_val_macro_auroc": val_auroc,
        "fit_seconds": fit_seconds,
        "train_samples_per_s": len(train_x) / fit_seconds if fit_seconds > 0 else None,
    }) + "\n")
    import joblib

    joblib.dump({"estimators": estimators, "classes": dataset.classes, "names": table.names},
                workdir / "model.joblib")
    failed = {split: [int(dataset.ecg_ids[r]) for r in index if table.failed[r]]
              for split, index in rows.items()}
    (workdir / "features.json").write_text(json.dumps({
        "names": list(table.names), "fiducial_leads_used": sorted(set(table.fiducial_leads.tolist())),
        "failed_ecg_ids": failed, "grid_search": chosen,
    }, indent=1, default=float))
    summary = {
        "model": name, "task": dataset.task, "classes": list(dataset.classes),
        "best_epoch": 0, "best_val_macro_auroc": val_auroc, "epochs_run": 1,
        "protocol": config.data.protocol,
        "features": {"columns": len(table.names), "failed_records": int(table.n_failed)},
        **results,
    }
    # metrics.json is the run's done marker (imn reproduce skips finished runs): atomic.
    atomic.write_json(workdir / "metrics.json", summary, indent=2, default=float)
    return summary


__all__ = ["GRIDS", "STUDY_XGBOOST", "TABULAR_MODELS", "ConstantClassifier", "fit_binary",
           "fit_classes", "is_tabular", "make_estimator", "scores_of", "train_and_evaluate"]
