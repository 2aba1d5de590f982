"""The UK Biobank study's protocol (outer CV, mean +- sd, sex and age subgroups)."""

from __future__ import annotations

import numpy as np
import pytest

from baselines.study_protocol import cross_validate_features, cv_markdown, outer_folds, subgroup_masks


def test_outer_folds_pair_the_strat_folds():
    assert outer_folds(np.arange(1, 11), 5).tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert outer_folds(np.arange(1, 11), 2).tolist() == [0] * 5 + [1] * 5
    with pytest.raises(ValueError, match="divide"):
        outer_folds(np.arange(1, 11), 3)
    with pytest.raises(ValueError, match="1..10"):
        outer_folds(np.array([0, 1]), 5)


def test_subgroups_cover_every_known_age_and_sex():
    masks = subgroup_masks(np.array([30, 40, 54.9, 55, 70, 300, np.nan]), np.array([0, 1, 0, 1, 0, 1, -1]))
    assert masks["age=<40"].tolist() == [True] + [False] * 6
    assert masks["age=40-55"].tolist() == [False, True, True, False, False, False, False]
    assert masks["age=>=70"].tolist() == [False] * 4 + [True, True, False]  # 300 codes > 89
    assert masks["sex=male"].sum() == 3 and masks["sex=female"].sum() == 3


def test_protocol_scores_each_fold_once_and_reports_mean_sd():
    rng = np.random.default_rng(0)
    n = 300
    x = rng.normal(size=(n, 6))
    y = (x[:, 0] + 0.7 * rng.normal(size=n) > 0.3).astype(int)
    strat = np.tile(np.arange(1, 11), n // 10)
    age = rng.uniform(20, 90, n)
    sex = rng.integers(0, 2, n)
    result = cross_validate_features("logistic_l2", x, y, strat, age, sex, n_folds=5)
    auroc = result["metrics"]["auroc"]
    assert auroc["folds"] == 5 and len(auroc["per_fold"]) == 5
    assert 0.75 < auroc["mean"] <= 1.0 and auroc["sd"] >= 0
    assert np.isclose(auroc["mean"], np.mean(auroc["per_fold"]))
    assert result["metrics"]["auroc[sex=female]"]["folds"] == 5
    assert result["subgroup_records"]["sex=male"] + result["subgroup_records"]["sex=female"] == n
    assert "logistic_l2" in cv_markdown([result]) and "+-" in cv_markdown([result])
