"""The tables of a reproduction, built from its run folders (never from numbers typed here).

Each table is written as CSV (every column, full precision, CI bounds in their own columns)
and Markdown (``mean [low, high]`` per metric, 3 decimals).

* :func:`classification_rows`: per task and model, test macro AUROC / AUPRC / F1 with 95%
  bootstrap CIs, validation AUROC, test records and positives.
* :func:`faithfulness_rows` / :func:`localisation_rows`: per model and method, from each
  explained run's ``faithfulness_test.json``; the localisation table ends each model with the
  reference maps (``oracle``: the mask itself, ``misplaced_mask``: the mask moved off the
  evidence) beside the ``random`` method; :func:`localisation_by_finding_rows`: the same per
  explained finding (QRSW, STE, TINV) and overall.
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
        rows.append(row)
    return rows


CLASSIFICATION_COLUMNS = [
    ("task", "task"), ("model", "model"),
    ("test_macro_auroc", "test macro AUROC [95% CI]"),
    ("test_macro_auprc", "test macro AUPRC [95% CI]"),
    ("test_f1", "test F1 [95% CI]"),
    ("val_macro_auroc", "val macro AUROC"),
    ("test_records", "test records"), ("test_positives", "test positives"),
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
    rows = []
    for model, workdir in runs.items():
        rows += method_rows({model: workdir}, LOCALISATION_METRICS)
        table = _faithfulness_table(workdir) or {}
        rows += [_localisation_copy(model, source) for source in table.get("reference_rows", [])]
    return rows


def localisation_by_finding_rows(runs: dict[str, Path]) -> list[dict[str, Any]]:
    """Per model, method (reference maps included) and explained finding (``all`` first)."""
    return [_localisation_copy(model, source, finding=source["finding"])
            for model, workdir in runs.items()
            for source in (_faithfulness_table(workdir) or {}).get("localisation_by_finding", [])]


def _localisation_copy(model: str, source: dict[str, Any], **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"model": model, "method": source["method"], **extra, "n": source["n"]}
    for key, _ in LOCALISATION_METRICS:
        for suffix in ("", *CI_SUFFIXES):
            row[key + suffix] = float(source.get(key + suffix, float("nan")))
    return row


def metric_columns(metrics: tuple[tuple[str, str], ...], by_finding: bool = False) -> list[tuple[str, str]]:
    ecgs = "ECGs with evidence" if metrics is LOCALISATION_METRICS else "ECGs"
    finding = [("finding", "finding")] if by_finding else []
    return [("model", "model"), ("method", "method"), *finding, ("n", ecgs), *metrics]


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
