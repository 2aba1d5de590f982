"""The tables of a reproduction, built from its run folders (never from numbers typed here).

Each table is written as CSV (every column, full precision, CI bounds in their own columns)
and Markdown (``mean [low, high]`` per metric, 3 decimals).

* :func:`classification_rows`: per task and model, test macro AUROC / AUPRC / F1 with 95%
  bootstrap CIs, validation AUROC, test records and positives, the evaluation protocol,
  and calibration (ECE with equal-mass bins and Brier score, raw and after temperature
  scaling fitted on validation; the scaled model's AUROC, which equals the logits').
* :func:`per_class_rows`: per task, model and class, test AUROC with its 95% CI (tasks
  with more than one class, e.g. superdiagnostic).
* :func:`faithfulness_rows` / :func:`localisation_rows`: per model and method, from each
  explained run's ``faithfulness_test.json``.
* :func:`cost_rows`: explanation ms and model evaluations per ECG, training samples/s.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from imn.report import CI_SUFFIXES

FAITHFULNESS_METRICS = (
    ("deletion_auc", "deletion AUC (lower better)"),
    ("insertion_auc", "insertion AUC (higher better)"),
    ("aopc_morf", "AOPC MoRF (higher better)"),
    ("aopc_lerf", "AOPC LeRF (lower better)"),
    ("faithfulness_correlation", "faithfulness corr. (higher better)"),
    ("infidelity", "infidelity (lower better)"),
    ("max_sensitivity", "max-sensitivity (lower better)"),
    ("randomization_similarity", "randomisation similarity (lower better)"),
)
LOCALISATION_METRICS = (
    ("pointing_game", "pointing game"),
    ("relevance_mass_accuracy", "relevance mass acc."),
    ("relevance_rank_accuracy", "relevance rank acc."),
    ("mask_auroc", "mask AUROC"),
)


def _positives(summary: dict[str, Any]) -> str:
    """``"MI 12"`` or ``"AFIB 9, NORM 20, ..."`` from a metrics summary's per-class counts."""
    counts = summary.get("positives")
    if isinstance(counts, dict):
        return ", ".join(f"{name} {int(count)}" for name, count in counts.items())
    if isinstance(counts, (int, float)):
        return str(int(counts))
    return ", ".join(f"{name} {int(count)}" for name, count in zip(summary.get("class_names", []), counts or []))


def classification_rows(runs: dict[tuple[str, str], Path]) -> list[dict[str, Any]]:
    """One row per finished run ``{(task, model): workdir}`` (runs without ``metrics.json``
    are skipped)."""
    rows = []
    for (task, model), workdir in runs.items():
        path = workdir / "metrics.json"
        if not path.exists():
            continue
        metrics = json.loads(path.read_text())
        test = metrics["test"]
        row: dict[str, Any] = {"task": task, "model": model}
        for key in ("macro_auroc", "macro_auprc", "f1"):
            for suffix in ("", *CI_SUFFIXES):
                row[f"test_{key}{suffix}"] = float(test[key + suffix])
        row["val_macro_auroc"] = float(metrics["best_val_macro_auroc"])
        row["best_epoch"] = metrics["best_epoch"]
        row["epochs_run"] = metrics["epochs_run"]
        row["test_records"] = test["n_records"]
        row["test_positives"] = _positives(test)
        row["protocol"] = protocol_label(metrics.get("protocol", "separate"))
        row.update(_calibration_columns(metrics))
        rows.append(row)
    return rows


def protocol_label(protocol: str) -> str:
    """How a run's checkpoint was selected and reported (``imn.train.data.PROTOCOL_LABELS``)."""
    from imn.train.data import PROTOCOL_LABELS

    return PROTOCOL_LABELS.get(protocol, protocol)


_NAN = float("nan")


def _calibration_columns(metrics: dict[str, Any]) -> dict[str, float]:
    """Calibration of the raw model and of the temperature-scaled one (NaN for runs written
    before calibration was reported)."""
    test = metrics["test"].get("calibration", {})
    val = metrics.get("validation", {}).get("calibration", {})
    return {
        "temperature": float(test.get("temperature", _NAN)),
        "val_ece": float(val.get("ece", _NAN)),
        "test_ece": float(test.get("ece", _NAN)),
        "test_ece_scaled": float(test.get("ece_scaled", _NAN)),
        "test_brier": float(test.get("brier", _NAN)),
        "test_brier_scaled": float(test.get("brier_scaled", _NAN)),
        "test_macro_auroc_scaled": float(metrics["test"].get("macro_auroc_scaled", _NAN)),
        "test_saturated": float(test.get("saturated", _NAN)),
    }


CLASSIFICATION_COLUMNS = [
    ("task", "task"), ("model", "model"),
    ("test_macro_auroc", "test macro AUROC [95% CI]"),
    ("test_macro_auprc", "test macro AUPRC [95% CI]"),
    ("test_f1", "test F1 [95% CI]"),
    ("val_macro_auroc", "val macro AUROC"),
    ("test_ece", "test ECE"), ("test_ece_scaled", "test ECE, T-scaled"),
    ("test_brier", "test Brier"), ("test_brier_scaled", "test Brier, T-scaled"),
    ("temperature", "T (fit on val)"),
    ("test_macro_auroc_scaled", "test macro AUROC, T-scaled"),
    ("test_saturated", "test p = 0 or 1 (float32)"),
    ("test_records", "test records"), ("test_positives", "test positives"),
    ("protocol", "protocol"),
]


def per_class_rows(runs: dict[tuple[str, str], Path]) -> list[dict[str, Any]]:
    """One row per class of every finished multi-class run: test AUROC [95% CI], AUPRC,
    positives and the protocol."""
    rows = []
    for (task, model), workdir in runs.items():
        path = workdir / "metrics.json"
        if not path.exists():
            continue
        metrics = json.loads(path.read_text())
        test = metrics["test"]
        if len(test.get("per_class", {})) < 2:
            continue
        for name, entry in test["per_class"].items():
            row: dict[str, Any] = {"task": task, "model": model, "class": name}
            for key in ("auroc", "auprc"):
                for suffix in ("", *CI_SUFFIXES):
                    value = entry.get(key + suffix)
                    row[f"test_{key}{suffix}"] = _NAN if value is None else float(value)
            row["test_positives"] = entry["positives"]
            row["protocol"] = protocol_label(metrics.get("protocol", "separate"))
            rows.append(row)
    return rows


PER_CLASS_COLUMNS = [
    ("task", "task"), ("model", "model"), ("class", "class"),
    ("test_auroc", "test AUROC [95% CI]"), ("test_auprc", "test AUPRC [95% CI]"),
    ("test_positives", "test positives"), ("protocol", "protocol"),
]


def _faithfulness_table(workdir: Path) -> dict[str, Any] | None:
    path = workdir / "faithfulness_test.json"
    return json.loads(path.read_text()) if path.exists() else None


def method_rows(runs: dict[str, Path], metrics: tuple[tuple[str, str], ...]) -> list[dict[str, Any]]:
    """Rows ``model, method, n, metric, metric_ci_low, metric_ci_high, ...`` from each
    model's faithfulness table (``runs``: model -> workdir); metrics absent from a table
    (e.g. localisation on PTB-XL) are left out."""
    rows = []
    for model, workdir in runs.items():
        table = _faithfulness_table(workdir)
        if table is None:
            continue
        for source in table["rows"]:
            if metrics[0][0] not in source:
                continue
            row: dict[str, Any] = {"model": model, "method": source["method"], "n": source["n"]}
            if "n_with_evidence" in source and metrics is LOCALISATION_METRICS:
                row["n"] = source["n_with_evidence"]
            for key, _ in metrics:
                for suffix in ("", *CI_SUFFIXES):
                    row[key + suffix] = float(source.get(key + suffix, float("nan")))
            rows.append(row)
    return rows


def faithfulness_rows(runs: dict[str, Path]) -> list[dict[str, Any]]:
    return method_rows(runs, FAITHFULNESS_METRICS)


def localisation_rows(runs: dict[str, Path]) -> list[dict[str, Any]]:
    return method_rows(runs, LOCALISATION_METRICS)


def metric_columns(metrics: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    ecgs = "ECGs with evidence" if metrics is LOCALISATION_METRICS else "ECGs"
    return [("model", "model"), ("method", "method"), ("n", ecgs), *metrics]


def training_samples_per_s(workdir: Path) -> float:
    """Median training throughput over the epochs after the first (which includes
    compilation), from ``metrics.jsonl``; NaN when unknown."""
    path = workdir / "metrics.jsonl"
    if not path.exists():
        return float("nan")
    rates = [json.loads(line).get("train_samples_per_s") for line in path.read_text().splitlines() if line.strip()]
    rates = [rate for rate in rates if rate]
    if not rates:
        return float("nan")
    return float(statistics.median(rates[1:] or rates))


def cost_rows(runs: dict[str, Path], evaluations: dict[tuple[str, str], tuple[float, str]],
              device: str) -> list[dict[str, Any]]:
    """Per model and method: explanation ms per ECG (measured in the faithfulness stage),
    model evaluations per ECG and their kind (``evaluations``: (model, method) -> (count,
    'forward' | 'gradient')), the model's training samples/s, and the device. A model whose
    run was not explained gets one row with its training rate and no method."""
    rows = []
    for model, workdir in runs.items():
        table = _faithfulness_table(workdir)
        train_rate = training_samples_per_s(workdir)
        if table is None:
            rows.append({"model": model, "method": "(not explained)", "explain_ms_per_ecg": float("nan"),
                         "evaluations_per_ecg": float("nan"), "evaluation_kind": "",
                         "train_samples_per_s": train_rate, "device": device})
            continue
        for source in table["rows"]:
            count, kind = evaluations.get((model, source["method"]), (float("nan"), ""))
            rows.append({
                "model": model, "method": source["method"],
                "explain_ms_per_ecg": float(source["explain_ms_per_ecg"]),
                "evaluations_per_ecg": count, "evaluation_kind": kind,
                "train_samples_per_s": train_rate, "device": device,
            })
    return rows


COST_COLUMNS = [
    ("model", "model"), ("method", "method"), ("explain_ms_per_ecg", "explain ms/ECG"),
    ("evaluations_per_ecg", "model evaluations/ECG"), ("evaluation_kind", "kind"),
    ("train_samples_per_s", "training samples/s"), ("device", "device"),
]
