"""The tables of a reproduction, built from its run folders (never from numbers typed here).

Each table is written as CSV (every column, full precision, CI bounds in their own columns)
and Markdown (a caption line: task, n, how targets were chosen, CI method; ``mean [low,
high]`` per metric in one number format per column; footnotes). A value that cannot rank
methods is printed ``n/a`` with a footnote saying why, detected from the data (never from
model names): curves that stay flat (a saturated output does not move when features are
inserted or deleted), metrics that are the same on every ECG because the output does not
respond to perturbation, and the random control's by-construction values.

* :func:`classification_rows`: per task and model, test macro AUROC / AUPRC / F1 and (for a
  multi-label task) subset accuracy with 95% bootstrap CIs, validation AUROC, how training
  ended (early stopping or the epoch cap), test records and positives, the evaluation
  protocol, and calibration (ECE with equal-mass bins and Brier score, raw and after
  temperature scaling fitted on validation; the ECE a perfectly calibrated model would show
  on the test records, and the ECE with the class weighting's logit shift undone; the scaled
  model's AUROC, which equals the logits'). F1 and subset accuracy use per-class thresholds chosen on the
  validation split.
* :func:`per_class_rows`: per task, model and class of a task with more than one class,
  the validation threshold, the test F1, precision and recall at it, and test AUROC and
  AUPRC with their 95% CIs.
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

import numpy as np

from imn.report import CI_SUFFIXES, DEFINED_SUFFIX, NOTE_SUFFIX, curves_are_flat
from imn.train.run_folder import read_history, read_metrics

FAITHFULNESS_METRICS = (
    ("deletion_auc", "deletion AUC (lower better)"),
    ("insertion_auc", "insertion AUC (higher better)"),
    ("aopc_morf", "AOPC MoRF (higher better)"),
    ("aopc_lerf", "AOPC LeRF (lower better)"),
    ("faithfulness_correlation", "faithfulness corr. (higher better)"),
    ("infidelity", "infidelity (lower better)"),
    ("max_sensitivity", "max-sensitivity (lower better)"),
    ("randomization_abs", "randomisation |mean \u03c1| (closer to 0 better)"),
)
LOCALISATION_METRICS = (
    ("pointing_game", "pointing game"),
    ("relevance_mass_accuracy", "relevance mass acc."),
    ("relevance_rank_accuracy", "relevance rank acc."),
    ("mask_auroc", "mask AUROC of |a|"),
)


def _positives(summary: dict[str, Any]) -> str:
    """``"MI 12"`` or ``"AFIB 9, NORM 20, ..."`` from a metrics summary's per-class counts."""
    counts = summary.get("positives")
    if isinstance(counts, dict):
        return ", ".join(f"{name} {int(count)}" for name, count in counts.items())
    if isinstance(counts, (int, float)):
        return str(int(counts))
    return ", ".join(f"{name} {int(count)}" for name, count in zip(summary.get("class_names", []), counts or []))


def _finished_runs(runs: dict[tuple[str, str], Path]):
    """``(task, model, metrics)`` of every run with a ``metrics.json`` (its done marker)."""
    for (task, model), workdir in runs.items():
        if (metrics := read_metrics(workdir)) is not None:
            yield task, model, metrics


def classification_rows(runs: dict[tuple[str, str], Path]) -> list[dict[str, Any]]:
    """One row per finished run ``{(task, model): workdir}`` (runs without ``metrics.json``
    are skipped)."""
    rows = []
    train_labels: dict = {}  # one data load per task for runs that predate a calibration key
    for task, model, metrics in _finished_runs(runs):
        test = metrics["test"]
        row: dict[str, Any] = {"task": task, "model": model}
        for key in ("macro_auroc", "macro_auprc", "f1", "subset_accuracy"):
            for suffix in ("", *CI_SUFFIXES):
                # Binary tasks have no subset accuracy, runs older than it no CI: NaN.
                value = test.get(key + suffix)
                row[f"test_{key}{suffix}"] = float("nan") if value is None else float(value)
        row["val_macro_auroc"] = float(metrics["best_val_macro_auroc"])
        row["best_epoch"] = metrics["best_epoch"]
        row["epochs_run"] = metrics["epochs_run"]
        row["training_ended"] = training_ended(metrics)
        row["test_records"] = test["n_records"]
        row["test_positives"] = _positives(test)
        row["protocol"] = protocol_label(metrics.get("protocol", "separate"))
        row.update(_calibration_columns(metrics, runs[task, model], train_labels))
        rows.append(row)
    return rows


def training_ended(metrics: dict[str, Any]) -> str:
    """How a run's training ended, for the table: by patience (converged on validation) or by
    the epoch cap (it might have gone on improving), with the selected epoch (1-based)."""
    if "stopped_early" not in metrics:
        return "one fit (no epochs)"  # the feature route's trees and logistic regression
    best = int(metrics["best_epoch"]) + 1
    if metrics["stopped_early"]:
        return f"patience, epoch {metrics['epochs_run']} (best {best})"
    return f"cap of {metrics['epochs_run']} epochs (best {best})"


def protocol_label(protocol: str) -> str:
    """How a run's checkpoint was selected and reported (``imn.train.data.PROTOCOL_LABELS``)."""
    from imn.train.data import PROTOCOL_LABELS

    return PROTOCOL_LABELS.get(protocol, protocol)


_NAN = float("nan")


def _calibration_columns(metrics: dict[str, Any], workdir: Path,
                         train_labels: dict) -> dict[str, float]:
    """Calibration of the raw model, of the temperature-scaled one and of the prior-corrected
    one, and the ECE a calibrated model would show on the test records (NaN for runs written
    before calibration was reported; the floor and the prior correction of runs evaluated
    before those were reported are recomputed from their predictions)."""
    from imn.train.trainer import run_calibration

    test = run_calibration(workdir, metrics, "test", train_labels)
    val = metrics.get("validation", {}).get("calibration", {})
    return {
        "temperature": float(test.get("temperature", _NAN)),
        "val_ece": float(val.get("ece", _NAN)),
        "test_ece": float(test.get("ece", _NAN)),
        "test_ece_floor": float(test.get("ece_floor", _NAN)),
        "test_ece_prior_corrected": float(test.get("ece_prior_corrected", _NAN)),
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
    ("test_f1", "test macro F1 [95% CI]"),
    ("test_subset_accuracy", "test subset accuracy [95% CI]"),
    ("val_macro_auroc", "val macro AUROC"),
    ("training_ended", "training ended by"),
    ("test_ece", "test ECE"), ("test_ece_floor", "test ECE of a calibrated model (floor)"),
    ("test_ece_prior_corrected", "test ECE, prior-corrected"),
    ("test_ece_scaled", "test ECE, T-scaled"),
    ("test_brier", "test Brier"), ("test_brier_scaled", "test Brier, T-scaled"),
    ("temperature", "T (fit on val)"),
    ("test_macro_auroc_scaled", "test macro AUROC, T-scaled"),
    ("test_saturated", "test p = 0 or 1 (float32)"),
    ("test_records", "test records"), ("test_positives", "test positives"),
    ("protocol", "protocol"),
]


def per_class_rows(runs: dict[tuple[str, str], Path]) -> list[dict[str, Any]]:
    """One row per class of every finished run of a task with more than one class: the
    threshold chosen on validation, the test F1, precision and recall at it, test AUROC and
    AUPRC [95% CI], positives and the protocol (NaN where undefined or not recorded)."""
    rows = []
    for task, model, metrics in _finished_runs(runs):
        test = metrics["test"]
        if len(test.get("per_class", {})) < 2:
            continue
        for name, entry in test["per_class"].items():
            row: dict[str, Any] = {"task": task, "model": model, "class": name,
                                   "threshold": _float(entry.get("threshold"))}
            for key in ("f1", "precision", "recall"):
                row[f"test_{key}"] = _float(entry.get(key))
            for key in ("auroc", "auprc"):
                for suffix in ("", *CI_SUFFIXES):
                    row[f"test_{key}{suffix}"] = _float(entry.get(key + suffix))
            row["test_positives"] = entry["positives"]
            row["protocol"] = protocol_label(metrics.get("protocol", "separate"))
            rows.append(row)
    return rows


def _float(value: Any) -> float:
    return _NAN if value is None else float(value)


PER_CLASS_COLUMNS = [
    ("task", "task"), ("model", "model"), ("class", "class"),
    ("threshold", "threshold (validation)"), ("test_f1", "test F1"),
    ("test_precision", "test precision"), ("test_recall", "test recall"),
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
                _copy_defined_count(row, source, key)
            rows.append(row)
    return rows


def abs_interval(value: float, low: float, high: float) -> tuple[float, float, float]:
    """``|value|`` and the image of ``[low, high]`` under ``|.|`` (0 when it spans 0): the
    interval for ``|E rho|`` from the one for ``E rho``."""
    if not np.isfinite(value):
        return float("nan"), float("nan"), float("nan")
    if low <= 0.0 <= high:
        return abs(value), 0.0, max(abs(low), abs(high))
    return abs(value), min(abs(low), abs(high)), max(abs(low), abs(high))


# Footnotes of degenerate cells (marker -> text); markers are assigned in this order.
DEGENERACY_NOTES = {
    "flat": "every curve of this method stays within 0.01 of its start: the model's output "
            "does not move when features are deleted or inserted (saturated), so the AUC "
            "(and the AOPC, from the same deletions) cannot rank attributions",
    "constant": "the same value on every ECG: the model's output does not respond to the "
                "perturbations (saturated), so the metric cannot tell methods apart",
    "undefined": "undefined on every ECG (a correlation with a constant map or output)",
    "skipped": "not computed for this method (listed in the run's sensitivity_skip: too "
               "costly at this budget)",
    "control": "by construction for the random control (its map ignores the input and the "
               "model): a reference, not a score",
    "not_computed": "not computed for this model (the feature route: a noisy copy would need "
                    "a new delineation; fitted trees have no randomised counterpart)",
    "budget": "not computed at this preset's budget (its settings turn the metric off: "
              "max-sensitivity with 0 re-explanations, or no randomised model)",
}
# Metrics read off a saved curve (AOPC MoRF is the deletion curve's mean drop; LeRF deletes
# the same features in the other order, so a flat deletion curve leaves it nothing to rank).
_CURVE_METRICS = {"deletion_auc": "deletion", "insertion_auc": "insertion",
                  "aopc_morf": "deletion", "aopc_lerf": "deletion"}
# Metrics that measure the output's response to perturbations: one value on every ECG means
# the output did not respond. Max-sensitivity and randomisation |rho| measure the map, and
# the same value everywhere (e.g. rho = 1) is a real score.
_RESPONSE_METRICS = ("deletion_auc", "insertion_auc", "aopc_morf", "aopc_lerf",
                     "faithfulness_correlation", "infidelity")
_CONTROL = "random"


def _curves(workdir: Path) -> dict[str, np.ndarray]:
    path = workdir / "faithfulness_curves_test.npz"
    if not path.exists():
        return {}
    with np.load(path) as saved:
        return {key: np.asarray(saved[key]) for key in saved.files}


def degeneracy(row: dict[str, Any], curves: dict[str, np.ndarray],
               skipped: tuple[str, ...] = (), not_computed: tuple[str, ...] = (),
               switched_off: tuple[str, ...] = ()) -> dict[str, str]:
    """metric -> reason key (of ``DEGENERACY_NOTES``) for each degenerate or missing cell of
    ``row`` (``skipped``: methods whose max-sensitivity the run did not compute;
    ``not_computed``: metrics the run computed for no model of its kind; ``switched_off``:
    metrics the run's budget turned off)."""
    reasons = {}
    for key, _ in FAITHFULNESS_METRICS:
        value = row.get(key, float("nan"))
        low, high = row.get(key + "_ci_low"), row.get(key + "_ci_high")
        kind = _CURVE_METRICS.get(key)
        curve = curves.get(f"{row['method']}_{kind}") if kind else None
        if curve is not None and curves_are_flat(curve):
            reasons[key] = "flat"
        elif row["method"] == _CONTROL and key in ("max_sensitivity", "randomization_abs"):
            reasons[key] = "control"
        elif key in not_computed:
            reasons[key] = "not_computed"
        elif key in switched_off:
            reasons[key] = "budget"
        elif key == "max_sensitivity" and row["method"] in skipped:
            reasons[key] = "skipped"
        elif not np.isfinite(value):
            reasons[key] = "undefined"
        elif (key in _RESPONSE_METRICS and low == high == value
              and row.get(key + DEFINED_SUFFIX, row.get("n", 0)) > 1):
            reasons[key] = "constant"
    return reasons


def saturated_fraction(workdir: Path, ecg_ids: np.ndarray | None, tolerance: float = 1e-4) -> float:
    """Fraction of the explained ECGs whose every output probability lies within
    ``tolerance`` of 0 or 1 (from ``predictions_test.npz``); NaN when unknown."""
    path = workdir / "predictions_test.npz"
    if not path.exists():
        return float("nan")
    with np.load(path) as saved:
        scores, ids = np.asarray(saved["scores"], np.float64), np.asarray(saved["ecg_ids"])
    if ecg_ids is not None:
        scores = scores[np.isin(ids, ecg_ids)]
    if not len(scores):
        return float("nan")
    return float(np.mean(np.all(np.minimum(scores, 1 - scores) < tolerance, axis=1)))


def faithfulness_rows(runs: dict[str, Path]) -> list[dict[str, Any]]:
    """``method_rows`` for the faithfulness metrics, with ``randomization_abs`` (|mean rho|
    and its interval) and a ``{metric}_note`` reason key on every degenerate cell."""
    rows = method_rows(runs, FAITHFULNESS_METRICS[:-1] + (("randomization_similarity", ""),))
    curves = {model: _curves(workdir) for model, workdir in runs.items()}
    for row in rows:
        value, low, high = abs_interval(row["randomization_similarity"],
                                        row["randomization_similarity_ci_low"],
                                        row["randomization_similarity_ci_high"])
        row.update(randomization_abs=value, randomization_abs_ci_low=low,
                   randomization_abs_ci_high=high)
        if "randomization_similarity" + DEFINED_SUFFIX in row:
            row["randomization_abs" + DEFINED_SUFFIX] = row["randomization_similarity" + DEFINED_SUFFIX]
        table = _faithfulness_table(runs[row["model"]]) or {}
        skipped = tuple(table.get("sensitivity_skip", ()))
        # The randomisation column is shown as |rho| (randomization_abs).
        not_computed = tuple("randomization_abs" if key == "randomization_similarity" else key
                             for key in table.get("not_computed", {}))
        switched_off = (("max_sensitivity",) if table.get("sensitivity_samples") == 0 else ()) + (
            ("randomization_abs",) if table.get("randomization") is False else ())
        for key, reason in degeneracy(row, curves[row["model"]], skipped, not_computed,
                                      switched_off).items():
            row[key + NOTE_SUFFIX] = reason
    return rows


def footnotes(rows: list[dict[str, Any]]) -> dict[str, str]:
    """The footnotes the rows refer to, reason key -> text (only reasons that occur)."""
    used = {value for row in rows for key, value in row.items() if key.endswith(NOTE_SUFFIX)}
    return {reason: text for reason, text in DEGENERACY_NOTES.items() if reason in used}


_POLICY = {
    "predicted": "the class each model scores highest (binary tasks: the predicted side)",
    "evidence": "the highest-scored class that has a local ground-truth evidence mask",
}


def faithfulness_caption(task: str, runs: dict[str, Path], targets: str, rows: list[dict[str, Any]]) -> str:
    """One line: task, n, target policy, CI method, and how saturated each model's outputs
    are on the explained ECGs."""
    sizes = sorted({int(row["n"]) for row in rows})
    saturation = []
    for model, workdir in runs.items():
        ids = _curves(workdir).get("ecg_ids")
        fraction = saturated_fraction(workdir, ids)
        if np.isfinite(fraction):
            saturation.append(f"{model} {100 * fraction:.0f}%")
    text = (f"Task {task}, test split, n = {'/'.join(map(str, sizes)) or '?'} ECGs per model; "
            f"explained class: {_POLICY.get(targets, targets)}; cells: mean over ECGs "
            "[95% percentile bootstrap CI, 1000 resamples of the ECGs].")
    if saturation:
        text += (" ECGs with saturated outputs (every p within 1e-4 of 0 or 1): "
                 + ", ".join(saturation) + ".")
    return text + _partly_defined_clause(rows)


def _partly_defined_clause(rows: list[dict[str, Any]]) -> str:
    """A sentence for the caption when some cell averages fewer ECGs than its row's n."""
    short = any(key.endswith(DEFINED_SUFFIX) and value < row.get("n", value)
                for row in rows for key, value in row.items())
    return (" A cell marked (k of n) is the mean over the k ECGs where the metric is defined "
            "(a correlation with a constant map or output, or a non-finite map, is not)."
            if short else "")


def localisation_caption(task: str, targets: str, rows: list[dict[str, Any]]) -> str:
    sizes = sorted({int(row["n"]) for row in rows})
    return (f"Task {task}, test split, n = {'/'.join(map(str, sizes)) or '?'} ECGs with a local "
            f"evidence mask; explained class: {_POLICY.get(targets, targets)}; cells: mean over "
            "ECGs [95% percentile bootstrap CI, 1000 resamples of the ECGs]; higher is better. "
            "Pointing game and relevance mass and rank accuracy count positive relevance only "
            "(evidence for the explained class); mask AUROC ranks |a| (where the map looks, "
            "whatever its sign)." + _partly_defined_clause(rows))


def classification_caption(rows: list[dict[str, Any]], bootstrap_samples: int) -> str:
    tasks = list(dict.fromkeys(row["task"] for row in rows))
    return (f"Test split of each task ({', '.join(tasks)}); macro AUROC / AUPRC / F1 with 95% "
            f"percentile bootstrap CIs ({bootstrap_samples} resamples of the records); F1 at "
            "per-class thresholds chosen on the validation split, which also selects the "
            "checkpoint (val macro AUROC).")


def cost_caption(task: str, device: str) -> str:
    return (f"Task {task}: explanation time per ECG measured in the faithfulness stage "
            f"(compilation excluded) on {device}; model evaluations per ECG of each method; "
            "training throughput: median over the epochs after the first.")


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
        _copy_defined_count(row, source, key)
    return row


def _copy_defined_count(row: dict[str, Any], source: dict[str, Any], key: str) -> None:
    """On how many ECGs ``key`` was defined, where the run recorded it (older runs did not)."""
    if key + DEFINED_SUFFIX in source:
        row[key + DEFINED_SUFFIX] = int(source[key + DEFINED_SUFFIX])


def metric_columns(metrics: tuple[tuple[str, str], ...], by_finding: bool = False) -> list[tuple[str, str]]:
    ecgs = "ECGs with evidence" if metrics is LOCALISATION_METRICS else "ECGs"
    finding = [("finding", "finding")] if by_finding else []
    return [("model", "model"), ("method", "method"), *finding, ("n", ecgs), *metrics]


def training_samples_per_s(workdir: Path) -> float:
    """Median training throughput over the epochs after the first (which includes
    compilation), from ``metrics.jsonl``; NaN when unknown."""
    rates = [row.get("train_samples_per_s") for row in read_history(workdir)]
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
