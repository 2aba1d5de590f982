"""The clinical-feature route's classical models: run folder, tables, grid search."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("neurokit2")
pytest.importorskip("xgboost")

from baselines.tabular import (  # noqa: E402
    GRIDS,
    TABULAR_MODELS,
    fit_binary,
    make_estimator,
    scores_of,
    train_and_evaluate,
)
from imn.reproduce.tables import classification_rows  # noqa: E402
from imn.train.config import load_config  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def feature_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("IMN_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.slow
def test_tiny_run_has_the_neural_layout_and_reaches_the_tables(tmp_path, feature_cache):
    config = load_config(f"{REPO / 'configs/tabular.py'}:tiny",
                         ["data.source=synthetic", "data.synthetic_n=60", "data.max_records=30",
                          "model.name=xgboost", 'model.overrides={"n_estimators": 20}'])
    summary = train_and_evaluate(config, tmp_path / "run")
    run = tmp_path / "run"
    for name in ("config.json", "provenance.json", "metrics.jsonl", "metrics.json",
                 "predictions_validation.npz", "predictions_test.npz", "model.joblib", "features.json"):
        assert (run / name).is_file(), name
    written = json.loads((run / "metrics.json").read_text())
    assert written["model"] == "xgboost" and written["classes"] == summary["classes"]
    predictions = np.load(run / "predictions_test.npz")
    n_test = written["test"]["n_records"]
    assert n_test > 0 and predictions["scores"].shape == (n_test, len(summary["classes"]))
    assert json.loads((run / "provenance.json").read_text())["data"]["records_per_split"]["train"] == 30
    assert np.all((predictions["scores"] >= 0) & (predictions["scores"] <= 1))
    rows = classification_rows({("synthetic", "xgboost"): run})
    assert len(rows) == 1 and rows[0]["test_macro_auroc"] == written["test"]["macro_auroc"]
    # The features were cached: a second model on the same records does not re-extract them.
    assert len(list((feature_cache / "features").glob("*.npz"))) == 1

    from baselines.tree_shap import explain_run

    explained = explain_run(run, "test", class_index=0)
    assert explained["attribution"].shape == explained["signals"].shape
    assert explained["attribution"].shape[0] == n_test
    np.testing.assert_array_equal(explained["ecg_ids"], predictions["ecg_ids"])
    # Mapped SHAP + bias is the model's logit, whose sigmoid is the stored score.
    logit = explained["attribution"].sum((1, 2)) + explained["bias"]
    np.testing.assert_allclose(1 / (1 + np.exp(-logit)), predictions["scores"][:, 0], atol=1e-4)
    assert len(list((feature_cache / "features").glob("*.npz"))) == 1


def _separable(n=120, features=10, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features))
    y = (x[:, 0] + 0.5 * x[:, 1] + 0.3 * rng.normal(size=n) > 0).astype(int)
    x[rng.random(x.shape) < 0.05] = np.nan  # failed measurements stay NaN
    return x, y


@pytest.mark.parametrize("name", TABULAR_MODELS)
def test_every_model_learns_a_separable_problem_with_missing_values(name):
    from sklearn.metrics import roc_auc_score

    x, y = _separable()
    params = {"n_estimators": 30} if name in ("xgboost", "random_forest") else {}
    params = {"max_iter": 30} if name == "hist_gbm" else params
    from threadpoolctl import threadpool_limits

    # One OpenMP thread: HistGradientBoosting's thread pool spins badly on a busy 2-core CI box.
    with threadpool_limits(1, user_api="openmp"):
        model, chosen = fit_binary(name, x[:80], y[:80], params=params, grid_search=False,
                                   inner_folds=3, seed=0)
    assert chosen == {}
    assert roc_auc_score(y[80:], scores_of(model, x[80:])) > 0.8


def test_grid_search_picks_from_the_grid_by_inner_cv():
    x, y = _separable()
    model, chosen = fit_binary("logistic_l2", x, y, params={}, grid_search=True, inner_folds=3, seed=0)
    assert chosen["model__C"] in GRIDS["logistic_l2"]["C"]
    assert 0.5 < chosen["inner_cv_auroc"] <= 1.0
    assert model.named_steps["model"].C == chosen["model__C"]


def test_bad_model_and_one_class_are_named():
    with pytest.raises(ValueError, match="unknown tabular model"):
        make_estimator("gbm9000")
    with pytest.raises(ValueError, match="only class"):
        fit_binary("decision_tree", np.zeros((4, 2)), np.zeros(4), params={}, grid_search=False,
                   inner_folds=3, seed=0)


def test_a_class_with_one_training_label_gets_a_constant_score_and_the_run_goes_on(caplog):
    """On the slice's diagnostic tasks some classes have no positive in folds 1-8: that class
    scores constant (AUROC 0.5 where the test split has both labels), the others are fitted."""
    from baselines.tabular import ConstantClassifier, fit_classes

    x, y = _separable()
    labels = np.stack([y, np.zeros_like(y)], axis=1)
    estimators, chosen = fit_classes("logistic_l2", x, labels, ("A", "ABSENT"), params={},
                                     grid_search=False, inner_folds=3, seed=0)
    assert isinstance(estimators[1], ConstantClassifier) and chosen[1] == {"class": "ABSENT", "constant": 0}
    assert np.all(scores_of(estimators[1], x) == 0.0) and np.ptp(scores_of(estimators[0], x)) > 0
    assert "ABSENT has only label 0" in caplog.text


def test_split_rows_follow_the_evaluation_protocol():
    """Under merged_9_10 the feature route selects and reports on folds 9 + 10 together, as
    the neural trainer does; by default validation and test are folds 9 and 10."""
    from baselines.tabular import _split_rows
    from imn.train.config import load_config

    folds = np.repeat(np.arange(1, 11), 3)
    separate = load_config("configs/tabular.py:tiny", ["data.source=synthetic"])
    rows = _split_rows(folds, separate)
    assert set(folds[rows["validation"]]) == {9} and set(folds[rows["test"]]) == {10}
    merged = load_config("configs/tabular.py:tiny", ["data.source=synthetic", "data.protocol=merged_9_10"])
    rows = _split_rows(folds, merged)
    assert set(folds[rows["validation"]]) == {9, 10}
    np.testing.assert_array_equal(rows["test"], rows["validation"])
    assert set(folds[rows["train"]]) == set(range(1, 9))
