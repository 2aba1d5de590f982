"""The IMN trainability study (issue 13): does ECG-IMN train, and at what cost in AUROC?

    imn trainability --data ptbxl:../shared/data/ptb-xl --out results/imn-trainability

trains, for each task and seed, four models with the paper's recipe (``imn_paper_recipe``):

* ``imn``            ECG-IMN with the authors' initialisation (PyTorch defaults; the paper),
* ``imn_flax_init``  ECG-IMN with this codebase's earlier Flax initialisation,
* ``imn_stable``     the stabilised variant (a deviation from the paper, see the registry),
* ``cnn2d``          the black box on the same encoder,

on ``norm_vs_mi`` and ``superdiagnostic`` of the PTB-XL folder given (the slice will do) and
on the synthetic task; 3 seeds each. It writes into ``--out``:

* ``runs/TASK/VARIANT/seedS/``: each run folder (resumable: a finished run is skipped),
* ``learning_curves_TASK.{pdf,png}``: train loss and validation AUROC per epoch, mean and
  range over seeds, one figure per task,
* ``reliability_TASK.{pdf,png}``: reliability diagrams of the validation predictions, one
  panel per model with its seeds pooled: raw, temperature-scaled and prior-corrected, with
  the ECE a perfectly calibrated model would show on those records,
* ``initial_logits.{csv,pdf,png}``: |initial logit| of each model (training mode, the first
  validation batch of each task) over the seeds,
* ``table_trainability.{csv,md}``: test macro AUROC mean +- sd over seeds, validation ECE
  before temperature scaling, beside the ECE a perfectly calibrated model would show on those
  records (its floor: the validation folds are small) and after undoing the class-weighted
  loss's prior shift (:mod:`imn.train.calibration`), saturated test probabilities, epochs run
  and whether early stopping ended the run, per task and variant,
* ``table_trainability_per_class.{csv,md}``: test AUROC per class, mean +- sd over seeds,
  for the tasks with more than one class (superdiagnostic, synthetic),
* ``study.json``: the plan (every training config) and wall times.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from imn.errors import ConfigError, UserError
from imn.report import write_table
from imn.train.config import TrainConfig, apply_overrides
from imn.train.data import SYNTHETIC_TASK
from imn.train.presets import check_preset, imn_paper_recipe
from imn.train.run_folder import read_history, read_metrics

logger = logging.getLogger("imn")

# variant -> (registered model, constructor overrides)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "imn": ("imn", {}),
    "imn_flax_init": ("imn", {"init": "flax"}),
    "imn_stable": ("imn_stable", {}),
    "cnn2d": ("cnn2d", {}),
}
PTBXL_TASKS = ("norm_vs_mi", "superdiagnostic")
SEEDS = (0, 1, 2)
# Records in the batch whose initial logits are measured (one BatchNorm batch).
INITIAL_LOGIT_RECORDS = 32


@dataclasses.dataclass(frozen=True)
class Study:
    preset: str
    ptbxl_root: str | None  # None: synthetic task only
    seeds: tuple[int, ...] = SEEDS
    variants: tuple[str, ...] = tuple(VARIANTS)
    overrides: tuple[str, ...] = ()  # ``key=value`` for every run (e.g. epochs=30)
    chosen_tasks: tuple[str, ...] | None = None  # a subset of the available tasks (None: all)

    @property
    def available_tasks(self) -> tuple[str, ...]:
        return (PTBXL_TASKS if self.ptbxl_root else ()) + (SYNTHETIC_TASK,)

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.chosen_tasks or self.available_tasks

    def config(self, task: str, variant: str, seed: int) -> TrainConfig:
        model, model_overrides = VARIANTS[variant]
        config = imn_paper_recipe(self.preset, model=model, task=task)
        source = ["data.source=synthetic"] if task == SYNTHETIC_TASK else [
            "data.source=ptbxl", f"data.root={self.ptbxl_root}"]
        sets = [*source, f"seed={seed}", *self.overrides]
        sets += [f"model.overrides.{key}={json.dumps(value)}" for key, value in model_overrides.items()]
        return apply_overrides(config, sets)

    def runs(self) -> list[tuple[str, str, int]]:
        """Every ``(task, variant, seed)`` in training order: seed-major within a task (every
        variant of seed 0 before seed 1), so a study stopped early still compares all variants
        on the seeds it finished."""
        return [(t, v, s) for t in self.tasks for s in self.seeds for v in self.variants]

    def run_dir(self, out: Path, task: str, variant: str, seed: int) -> Path:
        return out / "runs" / task / variant / f"seed{seed}"


def make_study(preset: str, ptbxl_root: str | None, *, seeds: tuple[int, ...] = SEEDS,
               variants: tuple[str, ...] | None = None, overrides: tuple[str, ...] = (),
               tasks: tuple[str, ...] | None = None) -> Study:
    check_preset(preset)
    chosen = tuple(variants or VARIANTS)
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown:
        raise UserError(f"unknown variant(s) {unknown}; expected some of {tuple(VARIANTS)}")
    if not seeds:
        raise ValueError("the study needs at least one seed")
    study = Study(preset, ptbxl_root, tuple(seeds), chosen, tuple(overrides))
    if tasks:
        missing = [t for t in tasks if t not in study.available_tasks]
        if missing:
            raise UserError(f"unknown task(s) {missing} for this study; expected some of "
                             f"{study.available_tasks} (the PTB-XL tasks need --data ptbxl:DIR)")
        study = dataclasses.replace(study, chosen_tasks=tuple(tasks))
    return study


# ---------------------------------------------------------------------------- training
def train_missing(runs: Sequence[tuple[str, Path, Callable[[], TrainConfig]]]) -> dict[str, float]:
    """Trains each ``(name, workdir, config)`` whose run has not finished (no ``metrics.json``),
    in order; returns wall seconds per run trained now (a killed run resumes in its folder).

    A finished run is kept only if it was trained with the config asked for now: the same
    ``--out`` with another preset or ``--set`` raises :class:`ConfigError` naming the run and
    the settings, instead of mixing old runs into new tables."""
    from imn.train.continuation import config_differences, describe_differences
    from imn.train.run_folder import read_run_config
    from imn.train.trainer import train_and_evaluate

    seconds = {}
    for index, (name, workdir, config) in enumerate(runs, 1):
        if (workdir / "metrics.json").exists():
            if differences := config_differences(read_run_config(workdir), config()):
                raise ConfigError(f"run {workdir} was trained with another config "
                                  f"({describe_differences(differences)}); choose another --out, "
                                  "or delete the run to retrain it")
            continue
        logger.info("[%d/%d] training %s", index, len(runs), name)
        start = time.perf_counter()
        train_and_evaluate(config(), workdir)
        seconds[name] = time.perf_counter() - start
    return seconds


def train_all(study: Study, out: Path) -> dict[str, float]:
    """Trains every (task, variant, seed) not finished yet, in ``study.runs()`` order;
    returns wall seconds per run."""
    return train_missing([(f"{t}/{v}/seed{s}", study.run_dir(out, t, v, s),
                           functools.partial(study.config, t, v, s)) for t, v, s in study.runs()])


# ---------------------------------------------------------------------------- read back
def _mean_sd(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None and np.isfinite(v)]
    if not values:
        return float("nan"), float("nan")
    return float(np.mean(values)), (float(statistics.stdev(values)) if len(values) > 1 else 0.0)


_CALIBRATION_KEYS = ("ece", "ece_floor", "ece_prior_corrected")


def table_rows(study: Study, out: Path, train_labels: dict | None = None) -> list[dict[str, Any]]:
    """Per task and variant, over the finished seeds: test macro AUROC mean and sd, validation
    ECE raw, beside the ECE a perfectly calibrated model would show on those records (its
    floor) and after undoing the class-weighted loss's prior shift, saturated test
    probabilities, epochs run, and how many runs stopped early (patience) rather than at the
    epoch cap."""
    from imn.train.trainer import run_calibration

    rows = []
    train_labels = {} if train_labels is None else train_labels
    for task in study.tasks:
        for variant in study.variants:
            finished = [(s, m) for s in study.seeds
                        if (m := read_metrics(study.run_dir(out, task, variant, s))) is not None]
            if not finished:
                continue
            test_auroc = [m["test"]["macro_auroc"] for _, m in finished]
            val_calibration = [run_calibration(study.run_dir(out, task, variant, s), m,
                                               "validation", train_labels) for s, m in finished]
            calibration_columns = {}
            for key in _CALIBRATION_KEYS:
                key_mean, key_sd = _mean_sd([c.get(key) for c in val_calibration])
                calibration_columns[f"val_{key}_mean"] = key_mean
                calibration_columns[f"val_{key}"] = f"{key_mean:.3f} ± {key_sd:.3f}"
            saturated = [m["test"].get("calibration", {}).get("saturated") for _, m in finished]
            epochs = [len(read_history(study.run_dir(out, task, variant, s))) for s, _ in finished]
            # The trainer's own verdict (patience can run out on the cap's last epoch).
            stopped = [bool(m.get("stopped_early")) for _, m in finished]
            mean, sd = _mean_sd(test_auroc)
            rows.append({
                "task": task, "variant": variant, "seeds": len(finished),
                "test_macro_auroc_mean": mean, "test_macro_auroc_sd": sd,
                "test_macro_auroc": f"{mean:.3f} ± {sd:.3f}",
                **calibration_columns,
                "test_saturated_total": int(sum(s or 0 for s in saturated)),
                "epochs_run": ", ".join(str(e) for e in epochs),
                "stopped_early": f"{sum(stopped)}/{len(stopped)}",
            })
    return rows


def per_class_table_rows(study: Study, out: Path) -> list[dict[str, Any]]:
    """Per task with more than one class, variant and class, over the finished seeds: test
    AUROC mean and sd (NaN seeds, where a test fold has one label only, left out) and the
    test positives."""
    rows = []
    for task in study.tasks:
        for variant in study.variants:
            finished = [m for s in study.seeds
                        if (m := read_metrics(study.run_dir(out, task, variant, s))) is not None]
            per_class = [m["test"].get("per_class", {}) for m in finished]
            names = list(dict.fromkeys(name for classes in per_class for name in classes))
            if len(names) < 2:
                continue
            for name in names:
                values = [v for classes in per_class if name in classes
                          if (v := classes[name].get("auroc")) is not None and np.isfinite(v)]
                mean, sd = _mean_sd(values)
                rows.append({"task": task, "variant": variant, "class": name, "seeds": len(values),
                             "test_auroc_mean": mean, "test_auroc_sd": sd,
                             "test_auroc": f"{mean:.3f} ± {sd:.3f}",
                             "test_positives": next(c[name].get("positives") for c in per_class
                                                    if name in c)})
    return rows


PER_CLASS_COLUMNS = [
    ("task", "task"), ("variant", "model"), ("class", "class"), ("seeds", "seeds"),
    ("test_auroc", "test AUROC (mean ± sd)"), ("test_positives", "test positives"),
]


TABLE_COLUMNS = [
    ("task", "task"), ("variant", "model"), ("seeds", "seeds"),
    ("test_macro_auroc", "test macro AUROC (mean ± sd)"),
    ("val_ece", "val ECE, raw (mean ± sd)"),
    ("val_ece_floor", "val ECE of a calibrated model (floor)"),
    ("val_ece_prior_corrected", "val ECE, prior-corrected"),
    ("test_saturated_total", "test p = 0 or 1 (all seeds)"),
    ("epochs_run", "epochs run"), ("stopped_early", "early-stopped"),
]


# ---------------------------------------------------------------------------- initial logits
def initial_logit_rows(study: Study) -> list[dict[str, Any]]:
    """|initial logit| of every variant on the first validation records of each task,
    one row per (task, variant, seed, record, class)."""
    from imn.models.diagnostics import initial_logits
    from imn.train.data import prepare_task_data
    from imn.train.trainer import model_outputs

    rows = []
    for task in study.tasks:
        config = study.config(task, study.variants[0], study.seeds[0])
        data = prepare_task_data(config.data, seed=config.seed)
        signals = data.validation.signals[:INITIAL_LOGIT_RECORDS]
        for variant in study.variants:
            model, overrides = VARIANTS[variant]
            k = model_outputs(model, len(data.classes))
            logits = initial_logits(model, signals, study.seeds, num_classes=k, **overrides)
            for seed_index, seed in enumerate(study.seeds):
                for value in np.abs(logits[seed_index]).ravel():
                    rows.append({"task": task, "variant": variant, "seed": seed,
                                 "abs_logit": float(value)})
    return rows


# ---------------------------------------------------------------------------- reliability
def reliability_panels(study: Study, out: Path, task: str, split: str = "validation",
                       train_labels: dict | None = None) -> tuple[dict, dict]:
    """Per variant with finished runs of ``task``: its ``split`` predictions over the seeds
    pooled, as ``{name: (labels, probs)}`` raw, temperature-scaled (each seed by its own T,
    fitted on validation) and prior-corrected (each seed's logits minus its class weighting's
    offset); and the ECE a perfectly calibrated model would show on the pooled records.
    Returns ``(panels, floors)`` keyed by the variant's display name."""
    from imn.plots.style import model_label
    from imn.train.calibration import ece_floor
    from imn.train.trainer import reliability_series

    panels, floors = {}, {}
    cache = {} if train_labels is None else train_labels
    for variant in study.variants:
        parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        for seed in study.seeds:
            workdir = study.run_dir(out, task, variant, seed)
            if (metrics := read_metrics(workdir)) is None:
                continue
            for name, pair in reliability_series(workdir, metrics, split, cache).items():
                parts.setdefault(name, []).append(pair)
        if not parts:
            continue
        seeds = len(parts["raw"])
        name = f"{model_label(variant)} ({seeds} seed{'s' if seeds > 1 else ''})"
        panels[name] = {series: (np.concatenate([l for l, _ in pairs]), np.concatenate([p for _, p in pairs]))
                        for series, pairs in parts.items()}
        floors[name] = float(np.mean(ece_floor(panels[name]["raw"][1])["mean"]))
    return panels, floors


def _write_initial_logits(rows: list[dict[str, Any]], stem: Path) -> list[Path]:
    """Every value in ``stem.csv``; the median |logit| per task and model in ``stem.md``."""
    import csv

    stem.parent.mkdir(parents=True, exist_ok=True)
    with open(stem.with_suffix(".csv"), "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["task", "variant", "seed", "abs_logit"])
        writer.writeheader()
        writer.writerows(rows)
    groups: dict[tuple[str, str], list[float]] = {}
    for row in rows:
        groups.setdefault((row["task"], row["variant"]), []).append(row["abs_logit"])
    summary = [{"task": task, "variant": variant, "values": len(values),
                "median_abs_logit": float(np.median(values)),
                "max_abs_logit": float(np.max(values))}
               for (task, variant), values in groups.items()]
    md = write_table(summary, stem.parent / f"{stem.name}_summary")
    return [stem.with_suffix(".csv"), *md]


# ---------------------------------------------------------------------------- entry point
def finished_history(workdir: Path) -> list[dict]:
    """``metrics.jsonl`` of a finished run (one with ``metrics.json``); [] for a run still
    training or not started, whose partial curve would read as a finished one."""
    return read_history(workdir) if (workdir / "metrics.json").exists() else []


def run_study(study: Study, out: str | Path, *, figures: bool = True,
              train: bool = True) -> dict[str, Any]:
    """Train what is missing, then write the table, curves and initial-logit figure.

    ``train=False`` trains nothing: the tables and figures report the finished runs only
    (each row says over how many seeds), for a study that is still running elsewhere."""
    from imn.plots.calibration import panel_sizes, plot_reliability_grid
    from imn.plots.trainability import plot_initial_logits, plot_learning_curves

    out = Path(out)
    train_labels: dict = {}  # training labels by data config, for runs that predate a key
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if train:
        seconds = train_all(study, out)
    else:
        seconds = {}
        missing = [f"{t}/{v}/seed{s}" for t, v, s in study.runs()
                   if not (study.run_dir(out, t, v, s) / "metrics.json").exists()]
        if missing:
            logger.warning("%d of %d runs not finished, reported without them: %s",
                           len(missing), len(study.runs()), ", ".join(missing))
    written = write_table(table_rows(study, out, train_labels), out / "table_trainability",
                          TABLE_COLUMNS)
    if per_class := per_class_table_rows(study, out):
        written += write_table(per_class, out / "table_trainability_per_class", PER_CLASS_COLUMNS)
    logit_rows = initial_logit_rows(study)
    written += _write_initial_logits(logit_rows, out / "initial_logits")
    if figures:
        for task in study.tasks:
            histories = {variant: [finished_history(study.run_dir(out, task, variant, s))
                                   for s in study.seeds] for variant in study.variants}
            written += plot_learning_curves(histories, out / f"learning_curves_{task}", title=task)
            panels, floors = reliability_panels(study, out, task, "validation", train_labels)
            if panels:
                plot_reliability_grid(panels, out / f"reliability_{task}", floors=floors,
                                      title=f"{task}: validation, seeds pooled "
                                            f"({panel_sizes(panels)} per panel)")
                written += [out / f"reliability_{task}.pdf", out / f"reliability_{task}.png"]
        written += plot_initial_logits(logit_rows, out / "initial_logits")
    record = write_record(out / "study.json", {
        "study": dataclasses.asdict(study),
        "configs": {f"{t}/{v}/seed{s}": study.config(t, v, s).to_dict()
                    for t in study.tasks for v in study.variants for s in study.seeds},
    }, seconds, time.perf_counter() - started)
    return {"written": [str(p) for p in written], **record}


def write_record(path: Path, plan: dict[str, Any], train_seconds: dict[str, float],
                 elapsed: float) -> dict[str, Any]:
    """Writes ``plan`` with the wall times to ``path`` (JSON) and returns what it wrote.

    Wall times add up over invocations: one that only redraws keeps the training times of the
    one that trained (a run trained again replaces its own entry)."""
    previous = json.loads(path.read_text()) if path.exists() else {}
    record = {**plan,
              "train_seconds": {**previous.get("train_seconds", {}), **train_seconds},
              "total_seconds": previous.get("total_seconds", 0.0) + elapsed}
    path.write_text(json.dumps(record, indent=2, default=str))
    return record
