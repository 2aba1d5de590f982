"""Explaining and scoring a trained run: what ``imn explain`` and ``imn faithfulness`` call.

A run folder (from ``imn train``) is reopened from its ``config.json``; the best checkpoint is
restored into an eval-mode model; the first ``n`` records of a split are explained for their
target class (the class of highest predicted probability, so every explained prediction is a
positive call the model really makes); every faithfulness metric re-runs the model on the
perturbed inputs.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from imn.explain.api import METHODS, attribute
from imn.explain.model_fns import predict_fn as make_predict_fn
from imn.train.config import TrainConfig
from imn.train.metrics import bootstrap_indices, percentile_interval
from imn.train.steps import merge_eval_model
from imn.train.trainer import predict, restore_for_evaluation, setup_run

logger = logging.getLogger("imn")

# Methods that need an extra input drawn here: expected gradients needs training ECGs.
_BACKGROUND_SIZE = 32


@dataclasses.dataclass
class ExplainedRun:
    """A restored run, ready to explain: eval-mode model, split data and targets."""

    model: Any
    x: np.ndarray  # (n, L, 12), normalised as in training
    targets: np.ndarray  # (n,) int
    evidence: np.ndarray | None  # (n, L, 12) bool masks of the target class (synthetic data)
    ecg_ids: np.ndarray
    background: np.ndarray  # (M, L, 12) training ECGs
    classes: tuple[str, ...]


def open_run(workdir: str | Path, split: str = "test", n: int | None = None) -> ExplainedRun:
    workdir = Path(workdir)
    config = TrainConfig.from_json((workdir / "config.json").read_text())
    if config.data.crop_seconds is not None:
        raise ValueError(
            f"{workdir} was trained on {config.data.crop_seconds} s crops; explaining whole records "
            "of a crop-trained model is not supported yet"
        )
    run = setup_run(config, workdir, write_files=False)
    try:
        state, _ = restore_for_evaluation(run)
        part = run.data.split(split)
        count = len(part) if n is None else min(n, len(part))
        x = np.asarray(part.signals[:count], np.float32)
        scores = predict(run, state, x)
        model = merge_eval_model(run.steps, state)
    finally:
        run.checkpoints.close()
    label_targets = scores.argmax(axis=1).astype(np.int32)  # a column of the labels
    evidence = None
    if part.evidence is not None:
        evidence = np.asarray(part.evidence[np.arange(count), label_targets])
    # A softmax head's label column 0 is its class 1 (see imn.train.losses.scores_from_logits).
    softmax = getattr(model, "head_type", "sigmoid") == "softmax"
    targets = np.ones_like(label_targets) if softmax else label_targets
    rng = np.random.default_rng(config.seed)
    pick = rng.choice(len(run.data.train), size=min(_BACKGROUND_SIZE, len(run.data.train)), replace=False)
    return ExplainedRun(model, x, targets, evidence, part.ecg_ids[:count],
                        np.asarray(run.data.train.signals[np.sort(pick)], np.float32), run.data.classes)


def method_options(method: str, explained: ExplainedRun, options: dict | None = None) -> dict:
    """Default options per method (a background from the training split where needed)."""
    merged = dict(options or {})
    if method == "gradient_shap":
        merged.setdefault("background", explained.background)
    return merged


def explain(explained: ExplainedRun, method: str, options: dict | None = None) -> tuple[np.ndarray, float]:
    """Attributions ``(n, L, 12)`` for the run's targets, and the seconds they took."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    start = time.perf_counter()
    attribution = np.asarray(attribute(method, explained.model, explained.x, explained.targets,
                                       **method_options(method, explained, options)))
    return attribution, time.perf_counter() - start


def explain_run(workdir: str | Path, method: str, split: str = "test", n: int | None = None,
                options: dict | None = None) -> Path:
    """Write ``attributions_{method}_{split}.npz`` into the run folder and return its path."""
    explained = open_run(workdir, split, n)
    attribution, seconds = explain(explained, method, options)
    out = Path(workdir) / f"attributions_{method}_{split}.npz"
    np.savez_compressed(out, attribution=attribution, x=explained.x, targets=explained.targets,
                        ecg_ids=explained.ecg_ids, classes=np.asarray(explained.classes),
                        seconds=seconds)
    logger.info("%s: %d ECGs in %.1f s -> %s", method, len(explained.x), seconds, out)
    return out


def _mean_ci(values: np.ndarray, n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """Mean over ECGs and its percentile-bootstrap 95% interval (NaN entries ignored)."""
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan"), float("nan")
    means = values[bootstrap_indices(len(values), n_boot, seed)].mean(axis=1)
    low, high = percentile_interval(means)
    return float(values.mean()), float(low), float(high)


def score_method(explained: ExplainedRun, attribution: np.ndarray, *, steps: int, unit: str,
                 segments: int) -> dict[str, np.ndarray]:
    """Per-ECG faithfulness (and, with evidence masks, localisation) scores."""
    from imn import faithfulness

    predict = make_predict_fn(explained.model)
    x, target = explained.x, explained.targets
    common = dict(steps=steps, unit=unit, segments=segments)
    deletion = faithfulness.deletion_curve(predict, x, attribution, target, **common)
    insertion = faithfulness.insertion_curve(predict, x, attribution, target, **common)
    scores = {
        "deletion_auc": np.asarray(faithfulness.curve_auc(deletion)),
        "insertion_auc": np.asarray(faithfulness.curve_auc(insertion)),
        # AOPC from the deletion curve: mean drop from f(x) over the steps (Samek et al.).
        "aopc_morf": np.asarray(deletion[:, :1] - deletion).mean(axis=1),
        "faithfulness_correlation": np.asarray(faithfulness.faithfulness_correlation(
            predict, x, attribution, target, unit=unit, segments=segments)),
        "deletion_curve": np.asarray(deletion),
        "insertion_curve": np.asarray(insertion),
    }
    if explained.evidence is not None:
        mask = explained.evidence
        scores["pointing_game"] = np.asarray(faithfulness.pointing_game(attribution, mask), np.float64)
        scores["relevance_mass_accuracy"] = np.asarray(faithfulness.relevance_mass_accuracy(attribution, mask))
        scores["relevance_rank_accuracy"] = np.asarray(faithfulness.relevance_rank_accuracy(attribution, mask))
        scores["mask_auroc"] = np.asarray(faithfulness.mask_auroc(attribution, mask))
    return scores


def faithfulness_run(workdir: str | Path, methods: list[str], split: str = "test", n: int | None = None,
                     *, steps: int = 50, unit: str = "patch", segments: int = 20) -> list[dict]:
    """Score every method on the same ECGs; write the table (CSV, Markdown) and curves (.npz)."""
    workdir = Path(workdir)
    explained = open_run(workdir, split, n)
    rows, curves = [], {}
    for method in methods:
        attribution, seconds = explain(explained, method)
        scores = score_method(explained, attribution, steps=steps, unit=unit, segments=segments)
        curves[f"{method}_deletion"] = scores.pop("deletion_curve")
        curves[f"{method}_insertion"] = scores.pop("insertion_curve")
        row: dict[str, Any] = {"method": method, "n": len(explained.x),
                               "explain_ms_per_ecg": 1e3 * seconds / len(explained.x)}
        for name, values in scores.items():
            row[name], row[f"{name}_ci_low"], row[f"{name}_ci_high"] = _mean_ci(values)
        rows.append(row)
        logger.info("%s: deletion AUC %.3f, insertion AUC %.3f", method, row["deletion_auc"], row["insertion_auc"])
    np.savez_compressed(workdir / f"faithfulness_curves_{split}.npz", steps=steps, unit=unit, **curves)
    _write_table(rows, workdir / f"faithfulness_{split}")
    (workdir / f"faithfulness_{split}.json").write_text(json.dumps(
        {"split": split, "unit": unit, "steps": steps, "segments": segments, "rows": rows}, indent=2))
    return rows


def _write_table(rows: list[dict], stem: Path) -> None:
    """``stem.csv`` (every column) and ``stem.md`` (mean [95% CI] per metric)."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with open(stem.with_suffix(".csv"), "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    metrics = [c for c in columns if c not in ("method", "n", "explain_ms_per_ecg") and not c.endswith(("_ci_low", "_ci_high"))]
    lines = ["| method | n | ms/ECG | " + " | ".join(metrics) + " |",
             "|---" * (3 + len(metrics)) + "|"]
    for row in rows:
        cells = [f"{row[m]:.3f} [{row[m + '_ci_low']:.3f}, {row[m + '_ci_high']:.3f}]" for m in metrics]
        lines.append(f"| {row['method']} | {row['n']} | {row['explain_ms_per_ecg']:.1f} | " + " | ".join(cells) + " |")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
