"""Explanation and faithfulness cost benchmarks (imn.bench.explain) on a tiny IMN.

A widths-(4, 8, 8) IMN on 0.64 s ECGs (64 samples) with small budgets keeps every timing to
milliseconds; what is checked is the bookkeeping: rows, evaluation counts, the limit, and
the CLI glue.
"""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest

from imn.bench.explain import (
    METRICS,
    SMALL_OVERRIDES,
    add_bench_parsers,
    bench_explain,
    bench_faithfulness,
    cost_table,
    evaluations_per_ecg,
    format_table,
)
from imn.explain import METHODS

TINY = dict(seconds=0.64, n_ecgs=2, model_overrides=SMALL_OVERRIDES["imn"], batch_sizes=(2,),
            repeats=1)
METHOD_OPTIONS = {
    "integrated_gradients": {"steps": 3},
    "gradient_shap": {"n_samples": 3},
    "kernel_shap": {"n_samples": 16, "segments": 4},
}
METRIC_OPTIONS = {
    "faithfulness_correlation": {"n_runs": 4},
    "infidelity": {"n_perturbations": 4},
    "max_sensitivity": {"n_samples": 2},
}


@pytest.fixture(scope="module")
def explain_rows():
    return {row["method"]: row for row in bench_explain("imn", options=METHOD_OPTIONS, **TINY)}


@pytest.fixture(scope="module")
def faithfulness_rows():
    rows = bench_faithfulness("imn", steps=4, options=METRIC_OPTIONS, **TINY)
    return {row["metric"]: row for row in rows}


def _assert_measured(row):
    assert row["note"] is None
    assert row["ms_per_ecg"] > 0 and row["limit_ms_per_ecg"] > 0
    assert row["fraction_of_limit"] > 0 and math.isfinite(row["fraction_of_limit"])
    # the fraction is the limit over the measured time, both per ECG
    assert row["fraction_of_limit"] == pytest.approx(
        row["limit_ms_per_ecg"] / row["ms_per_ecg"], rel=0.02)
    assert row["best_batch"] == 2 and row["device"]


def test_evaluation_counts_follow_the_options():
    """Counts come from the options actually used, defaults from the library itself."""
    assert evaluations_per_ecg("integrated_gradients") == (50, "gradient")
    assert evaluations_per_ecg("integrated_gradients", {"steps": 7}) == (7, "gradient")
    assert evaluations_per_ecg("gradient_shap", {"n_samples": 9}) == (9, "gradient")
    assert evaluations_per_ecg("gradcam") == (1, "gradient")
    assert evaluations_per_ecg("imn") == (1, "forward")
    assert evaluations_per_ecg("random") == (0, "none")
    assert evaluations_per_ecg("kernel_shap") == (2048 + 2, "forward")
    assert evaluations_per_ecg("kernel_shap", {"n_samples": 100}) == (102, "forward")
    # G = 12 groups: at most 2^12 - 2 coalitions; a background of M ECGs multiplies by M
    assert evaluations_per_ecg("kernel_shap", {"n_samples": 9999, "segments": 1}) == (4096, "forward")
    background = np.zeros((3, 64, 12), np.float32)
    assert evaluations_per_ecg("kernel_shap", {"n_samples": 10, "background": background})[0] == 36
    assert evaluations_per_ecg("deletion") == (51, "forward")
    assert evaluations_per_ecg("insertion", {"steps": 10}) == (11, "forward")
    assert evaluations_per_ecg("aopc", {"steps": 4}) == (5, "forward")
    assert evaluations_per_ecg("faithfulness_correlation", {"n_runs": 20}) == (21, "forward")
    assert evaluations_per_ecg("infidelity", {"n_perturbations": 8}) == (9, "forward")
    sensitivity = {"n_samples": 4, "explainer": "integrated_gradients",
                   "explainer_options": {"steps": 3}}
    assert evaluations_per_ecg("max_sensitivity", sensitivity) == (15, "gradient")
    with pytest.raises(ValueError, match="unknown"):
        evaluations_per_ecg("lime")


def test_explain_rows_cover_every_method(explain_rows):
    assert list(explain_rows) == list(METHODS)
    for row in explain_rows.values():
        assert row["model"] == "imn" and row["sampling_rate"] == 100
        assert row["input_length"] == 64 and row["n_ecgs"] == 2


def test_explain_counts_and_fraction_of_limit(explain_rows):
    expected = {"imn": (1, "forward"), "saliency": (1, "gradient"),
                "input_x_gradient": (1, "gradient"), "integrated_gradients": (3, "gradient"),
                "gradient_shap": (3, "gradient"), "kernel_shap": (18, "forward")}
    for method, (count, kind) in expected.items():
        row = explain_rows[method]
        assert (row["evaluations_per_ecg"], row["evaluation_kind"]) == (count, kind), method
        _assert_measured(row)
    assert explain_rows["integrated_gradients"]["options"]["steps"] == 3
    # random makes no model evaluation: timed, but no limit
    random = explain_rows["random"]
    assert random["ms_per_ecg"] > 0 and random["evaluations_per_ecg"] == 0
    assert random["fraction_of_limit"] is None


def test_non_applicable_methods_are_reported(explain_rows):
    for method in ("gradcam", "gradcam_x_input"):
        row = explain_rows[method]
        assert row["ms_per_ecg"] is None and row["fraction_of_limit"] is None
        assert row["note"].startswith("not applicable") and "feature map" in row["note"]
    assert explain_rows["attention"]["note"].startswith("not applicable")  # no attention branch
    table = format_table(list(explain_rows.values()))
    assert "imn 100 Hz gradcam: not applicable" in table
    # the paper's cost table keeps measured rows only: no Grad-CAM for an IMN
    assert [entry["method"] for entry in cost_table(list(explain_rows.values()))] == [
        "imn", "gradient_shap", "kernel_shap"]


def test_faithfulness_rows(faithfulness_rows):
    assert list(faithfulness_rows) == list(METRICS)
    expected = {"deletion": 5, "insertion": 5, "aopc": 5, "faithfulness_correlation": 5,
                "infidelity": 5, "max_sensitivity": 3}  # (2 + 1) IMN explanations
    for metric, count in expected.items():
        row = faithfulness_rows[metric]
        assert row["evaluations_per_ecg"] == count and row["evaluation_kind"] == "forward"
        _assert_measured(row)
    assert faithfulness_rows["max_sensitivity"]["options"]["explainer"] == "imn"
    assert faithfulness_rows["deletion"]["options"]["unit"] == "sample"


def test_faithfulness_reports_an_explainer_that_cannot_be_rerun():
    rows = bench_faithfulness("imn", metrics=["max_sensitivity"], explainer="gradcam", **TINY)
    assert rows[0]["ms_per_ecg"] is None and "not applicable" in rows[0]["note"]


def _parser():
    parser = argparse.ArgumentParser(prog="imn")
    add_bench_parsers(parser.add_subparsers(dest="bench_command", required=True))
    return parser


TINY_CLI = ["--model", "imn", "--small", "--sampling-rates", "100", "--n", "1", "--seconds",
            "0.64", "--batch-sizes", "1", "--repeats", "1"]


def test_cli_bench_explain_json(capsys):
    args = _parser().parse_args(["explain", *TINY_CLI, "--methods", "imn,integrated_gradients",
                                 "--set", "integrated_gradients.steps=2", "--json"])
    assert args.func(args) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["method"] for row in rows] == ["imn", "integrated_gradients"]
    assert rows[1]["evaluations_per_ecg"] == 2 and rows[1]["fraction_of_limit"] > 0


def test_cli_bench_faithfulness_table(capsys):
    args = _parser().parse_args(["faithfulness", *TINY_CLI, "--metrics", "deletion",
                                 "--steps", "3"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "% of limit" in out
    line = next(line for line in out.splitlines() if " deletion " in line)
    assert line.split()[:5] == ["imn", "100", "deletion", "4", "forward"]
