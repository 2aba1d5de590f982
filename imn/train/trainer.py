"""``train_and_evaluate(config, workdir)``: the one entry point for training a model.

Run folder layout::

    workdir/
      config.json         the resolved TrainConfig (a resumed run must match it)
      provenance.json     git commit, package versions, device, data identity
      metrics.jsonl       one line per epoch (train loss, validation AUROC, lr, rate)
      tensorboard/        the same curves as TensorBoard event files (imn.train.tensorboard)
      checkpoints/last    resume point (every epoch); checkpoints/best (validation AUROC)
      predictions_{split}.npz, metrics.json   final evaluation of the best checkpoint

A run killed at any point and started again with the same command continues from its last
checkpoint and ends with the same metrics as an uninterrupted run: the epoch order depends
only on (seed, epoch), dropout keys only on the step count, and the early-stopping state is
stored with the checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from imn import atomic, provenance
from imn.data.pipeline import BatchLoader, aggregate_windows, sliding_windows
from imn.data.sharding import make_mesh, replicated_sharding
from imn.models import create_model
from imn.errors import ConfigError
from imn.train import attention, calibration, losses, metrics, run_folder
from imn.train.checkpoint import CheckpointError, RunCheckpoints
from imn.train.config import TrainConfig
from imn.train.data import TaskData, prepare_task_data
from imn.train.optim import make_optimizer
from imn.train.progress import Progress
from imn.train.tensorboard import EventLog
from imn.train.steps import LossSpec, StepFunctions, TrainState, make_steps, merge_eval_model

logger = logging.getLogger("imn")


class TrainingDivergedError(FloatingPointError):
    """The loss became NaN or infinite."""


def maybe_initialize_distributed() -> None:
    """Join a multi-process (multi-host) job when the environment describes one.

    ``JAX_COORDINATOR_ADDRESS`` (host:port of process 0) with ``JAX_NUM_PROCESSES`` and
    ``JAX_PROCESS_ID``, or with a cluster JAX detects by itself (SLURM, Open MPI,
    Kubernetes); or ``IMN_DISTRIBUTED=1`` where JAX detects everything (Cloud TPU pod slices).
    Must run before anything touches a JAX device, so it does not ask JAX how many
    processes there are (that would start the single-process backend).
    """
    wanted = os.environ.get("JAX_COORDINATOR_ADDRESS") or os.environ.get("IMN_DISTRIBUTED") == "1"
    if not wanted or jax.distributed.is_initialized():
        return
    known = {name: int(os.environ[variable]) for name, variable in
             (("num_processes", "JAX_NUM_PROCESSES"), ("process_id", "JAX_PROCESS_ID"))
             if os.environ.get(variable)}
    jax.distributed.initialize(**known)


# ---------------------------------------------------------------------------- set-up
def _samples(seconds: float | None, rate: int) -> int | None:
    if seconds is None:
        return None
    samples = int(round(seconds * rate))
    # Models that pool twice over time need a length divisible by 4.
    return samples - samples % 4


def model_outputs(model_name: str, num_labels: int) -> int:
    """Logits the model must produce for ``num_labels`` label columns."""
    if model_name == "imn_softmax":
        if num_labels != 1:
            raise ValueError("imn_softmax is the paper's 2-class head; it needs a binary task (K = 1)")
        return 2
    return num_labels


def build_model(config: TrainConfig, num_labels: int, sampling_rate: int, input_length: int):
    return create_model(
        config.model.name,
        num_classes=model_outputs(config.model.name, num_labels),
        sampling_rate=sampling_rate,
        seed=config.seed,
        input_length=input_length,
        **config.model.overrides,
    )


def class_weights_for(head: str, config: TrainConfig, train_labels: np.ndarray) -> np.ndarray:
    """The task loss's class weights from the training labels ``(N, K)``: balanced weights
    ``(2,)`` for a softmax head, BCE ``pos_weight`` ``(K,)`` (or ones) for a sigmoid head."""
    if head == "softmax":
        return losses.balanced_class_weights(train_labels)
    if config.optim.pos_weight:
        return losses.positive_weights(train_labels)
    return np.ones(train_labels.shape[1], np.float32)


def loss_spec_for(model, config: TrainConfig, train_labels: np.ndarray,
                  attention_targets: np.ndarray | None = None) -> LossSpec:
    """Task loss of ``model``; for an attention branch network (xECGNet) also its branch's
    BCE and, with ``attention_targets`` (stage 2), the attention regulariser."""
    head = getattr(model, "head_type", "sigmoid")
    weights = class_weights_for(head, config, train_labels)
    l1 = config.optim.weight_l1 if hasattr(model, "generate") else 0.0
    auxiliary = None
    if attention.has_attention_branch(model):
        gamma = config.attention.gamma if attention_targets is not None else 0.0
        auxiliary = attention.abn_auxiliary(config.attention.branch_weight, gamma, attention_targets)
    return LossSpec(head=head, class_weight=weights, weight_l1=l1, auxiliary=auxiliary)


@dataclasses.dataclass
class Run:
    """Everything a run needs after set-up: data, model steps, loaders, checkpoints."""

    config: TrainConfig
    workdir: Path
    data: TaskData
    steps: StepFunctions
    mesh: Any
    train_loader: BatchLoader
    steps_per_epoch: int
    checkpoints: RunCheckpoints
    model_name: str
    logit_step: Any = None  # built on first use by binary_logit_step (one compile per run)


def _check_config(config: TrainConfig, workdir: Path) -> None:
    """A resumed run must have the config it was started with."""
    path = workdir / "config.json"
    if path.exists() and run_folder.read_run_config(workdir).to_json() != config.to_json():
        raise ConfigError(f"{path} holds a different config; resume with the same config or use a new workdir")


def setup_run(config: TrainConfig, workdir: str | Path, *, write_files: bool = True, devices=None,
              allow_data_move: bool = False) -> Run:
    """Load data, build the model, steps, loader and checkpoint managers of a run.

    ``devices``: the devices of the data mesh (default: all local devices).
    The data is checked against what the run folder recorded at training
    (:mod:`imn.train.run_folder`; ``allow_data_move`` accepts the same data in another
    folder). ``config.json`` and ``provenance.json`` are written only after the data loaded
    and the model was built, so a command with a bad argument leaves no run folder behind.
    """
    workdir = Path(workdir)
    if not (0 <= config.min_improvement < 1):
        raise ConfigError(f"min_improvement must be in [0, 1) (a margin of validation macro "
                          f"AUROC), got {config.min_improvement}")
    if config.attention.stage not in (1, 2):
        raise ConfigError(f"attention.stage must be 1 or 2, got {config.attention.stage}")
    if config.attention.stage == 2 and not config.attention.init_from:
        raise ConfigError("attention.stage=2 fine-tunes a stage-1 run: set attention.init_from to "
                          "its run folder (e.g. --set attention.init_from=runs/xecgnet)")
    if write_files:
        _check_config(config, workdir)
    data = prepare_task_data(config.data, seed=config.seed)
    recorded = run_folder.recorded_identity(workdir)
    if recorded is not None:
        run_folder.check_data_identity(workdir, recorded, data.identity, allow_data_move=allow_data_move)
    rate = data.sampling_rate
    crop = _samples(config.data.crop_seconds, rate)
    window = _samples(config.data.eval_window_seconds, rate)
    input_length = crop or data.train.length
    if window is not None and window != input_length:
        raise ConfigError(f"evaluation windows ({window} samples) must match the training crop ({input_length})")

    mesh = make_mesh(devices)
    model = build_model(config, len(data.classes), rate, input_length)
    targets = None
    # Stage 2's starting point and heatmaps matter to training only; evaluation and
    # explanation (write_files=False) restore the run's own checkpoints and never need them.
    if config.attention.stage == 2 and write_files:
        if not attention.has_attention_branch(model):
            raise ConfigError(f"attention.stage=2 fine-tunes an attention map; model "
                             f"{config.model.name!r} has none (use xecgnet)")
        targets = attention.prepare_finetuning(model, config, data, input_length, workdir, crop,
                                               allow_data_move=allow_data_move)
    spec = loss_spec_for(model, config, data.train.labels, targets)
    train_loader = BatchLoader(
        data.train.signals, data.train.labels, batch_size=config.batch_size, mesh=mesh,
        shuffle=True, drop_remainder=True, seed=config.seed, crop_length=crop,
    )
    steps_per_epoch = len(train_loader)
    if config.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, config.max_steps_per_epoch)
    tx = make_optimizer(config.optim, steps_per_epoch, config.epochs)
    steps = make_steps(model, tx, spec, seed=config.seed, compute_dtype=config.compute_dtype,
                       state_sharding=replicated_sharding(mesh))
    if write_files:
        workdir.mkdir(parents=True, exist_ok=True)
        if not (workdir / "config.json").exists():
            atomic.write_text(workdir / "config.json", config.to_json())
        if not (workdir / "provenance.json").exists():
            record = {"run_format": run_folder.RUN_FORMAT, **provenance.collect(data.identity)}
            record["model"] = {"name": config.model.name, "classes": list(data.classes),
                               "input_length": input_length}
            atomic.write_json(workdir / "provenance.json", record)
    return Run(config, workdir, data, steps, mesh, train_loader, steps_per_epoch,
               RunCheckpoints(workdir), config.model.name)


# ---------------------------------------------------------------------------- evaluation
def _host_array(value: jax.Array) -> np.ndarray:
    """The whole of a (batch-sharded) array on this host; with several processes each holds
    only its rows, so they are gathered from all of them first."""
    if value.is_fully_addressable:
        return np.asarray(value)
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(value, tiled=True))


def run_head(run: Run) -> str:
    """The run's model head: ``'sigmoid'`` or ``'softmax'``."""
    return getattr(merge_eval_model(run.steps, run.steps.init_state()), "head_type", "sigmoid")


def binary_logit_step(run: Run):
    """A jitted ``(state, batch) -> (B, K)`` (or ``(B, W, K)`` windowed) of the binary logits
    whose sigmoid is each class's score (:func:`imn.train.calibration.binary_logits`):
    the unsaturated numbers that temperature scaling divides. Runs in float32 whatever
    ``compute_dtype`` the scores were computed in."""
    if run.logit_step is not None:
        return run.logit_step
    head = run_head(run)

    @jax.jit
    def step(state: TrainState, batch: dict) -> jax.Array:
        model = merge_eval_model(run.steps, state)
        x = batch["x"]
        windowed = x.ndim == 4
        if windowed:
            batch_size, windows = x.shape[:2]
            x = x.reshape((batch_size * windows,) + x.shape[2:])
        logits = model(x).astype(np.float32)
        if head == "softmax":
            logits = logits[:, 1:2] - logits[:, 0:1]
        return logits.reshape(batch_size, windows, -1) if windowed else logits

    run.logit_step = step
    return step


def _aggregate_window_logits(window_logits: np.ndarray, how: str) -> np.ndarray:
    """Per-record binary logits whose sigmoid is the aggregated window probability."""
    if how == "max":  # max commutes with the sigmoid
        return aggregate_windows(window_logits, "max")
    probs = aggregate_windows(calibration.sigmoid(window_logits), how)
    probs = np.clip(probs, np.finfo(np.float64).tiny, 1 - np.finfo(np.float64).eps)
    return np.log(probs) - np.log1p(-probs)


def predict(run: Run, state: TrainState, signals: np.ndarray, *, logits: bool = False) -> np.ndarray:
    """Scores ``(N, K)`` in the label layout, with sliding windows for crop-trained models.

    ``logits=True`` gives the binary logits of :func:`binary_logit_step` instead (float64).
    """
    config = run.config
    rate = run.data.sampling_rate
    window = _samples(config.data.eval_window_seconds, rate)
    inputs = signals
    if window is not None:
        stride = _samples(config.data.eval_stride_seconds or config.data.eval_window_seconds / 2, rate)
        inputs = sliding_windows(signals, window, stride)
    placeholder = np.zeros((len(signals), 1), np.float32)
    loader = BatchLoader(inputs, placeholder, batch_size=config.eval_batch_size, mesh=run.mesh,
                         shuffle=False, drop_remainder=False, seed=0, prefetch_depth=2)
    num_outputs = len(run.data.classes)
    scores = np.zeros((len(signals), num_outputs), np.float64 if logits else np.float32)
    step = binary_logit_step(run) if logits else run.steps.eval_step
    for batch in loader.epoch(0):
        batch_scores = _host_array(step(state, batch))
        if window is not None and logits:
            batch_scores = _aggregate_window_logits(batch_scores.astype(np.float64),
                                                    config.data.eval_aggregation)
        elif window is not None:
            batch_scores = aggregate_windows(batch_scores, config.data.eval_aggregation)
        index = _host_array(batch["index"])
        valid = index >= 0
        scores[index[valid]] = batch_scores[valid]
    return scores


def _check_finite(value: float, where: str) -> None:
    if not math.isfinite(value):
        raise TrainingDivergedError(
            f"loss became {value} {where}; the last good state is in checkpoints/last. "
            "Lower optim.learning_rate, set optim.grad_clip_norm, or check the input for NaNs."
        )


# ---------------------------------------------------------------------------- the loop
def _read_history(path: Path, up_to_epoch: int) -> list[dict]:
    """metrics.jsonl lines of epochs <= ``up_to_epoch`` (later ones belong to a lost epoch)."""
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [line for line in lines if line["epoch"] <= up_to_epoch]


def _write_history(path: Path, history: list[dict]) -> None:
    atomic.write_text(path, "".join(json.dumps(line) + "\n" for line in history))


def train(run: Run) -> TrainState:
    """The epoch loop with early stopping and per-epoch checkpoints; returns the last state."""
    state = run.steps.init_state()
    meta = {"epoch": -1, "best_score": -math.inf, "best_epoch": -1, "bad_epochs": 0, "stopped": False}
    restored = run.checkpoints.restore_last(state)
    history_path = run.workdir / "metrics.jsonl"
    if restored is not None:
        state, meta = restored
        logger.info("resuming %s after epoch %d (best validation AUROC %.4f at epoch %d)",
                    run.workdir, meta["epoch"], meta["best_score"], meta["best_epoch"])
    history = _read_history(history_path, meta["epoch"])
    _write_history(history_path, history)

    events = EventLog(run.workdir)
    try:
        return _epochs(run, state, meta, history, history_path, events)
    finally:
        events.close()


def _epochs(run: Run, state: TrainState, meta: dict, history: list[dict], history_path: Path,
            events: EventLog) -> TrainState:
    """The epochs after ``meta["epoch"]``, until the cap or early stopping."""
    config = run.config
    samples_per_step = config.batch_size
    for epoch in range(meta["epoch"] + 1, config.epochs):
        if meta["stopped"]:
            break
        progress = Progress(f"epoch {epoch + 1}/{config.epochs} step", run.steps_per_epoch,
                            units_per_item=samples_per_step)
        started = time.perf_counter()
        losses_seen = []
        for step_in_epoch, batch in enumerate(run.train_loader.epoch(epoch)):
            if step_in_epoch >= run.steps_per_epoch:
                break
            state, step_metrics = run.steps.train_step(state, batch)
            losses_seen.append(step_metrics["loss"])
            if (step_in_epoch + 1) % config.log_every_steps == 0:
                # Fetching a value synchronises with the device; do it only every few steps.
                loss_now = float(step_metrics["loss"])
                _check_finite(loss_now, f"at step {int(state.step)} (epoch {epoch + 1})")
                events.step_loss(int(state.step), loss_now)
                progress.update(config.log_every_steps, extra=f"loss {loss_now:.4f}", force=True)
        train_loss = float(np.mean(jax.device_get(losses_seen)))
        _check_finite(train_loss, f"in epoch {epoch + 1}")
        train_seconds = time.perf_counter() - started

        val_scores = predict(run, state, run.data.validation.signals)
        val_auroc = metrics.macro_auroc(run.data.validation.labels, val_scores)
        improved = is_new_best(val_auroc, meta["best_score"], config.min_improvement)
        meta = {
            "epoch": epoch,
            "best_score": float(val_auroc) if improved else meta["best_score"],
            "best_epoch": epoch if improved else meta["best_epoch"],
            "bad_epochs": 0 if improved else meta["bad_epochs"] + 1,
            "stopped": False,
        }
        if config.patience is not None and meta["bad_epochs"] >= config.patience:
            meta["stopped"] = True
        record = {
            "epoch": epoch,
            "step": int(state.step),
            "train_loss": train_loss,
            "val_macro_auroc": float(val_auroc),
            "best_val_macro_auroc": meta["best_score"],
            "train_samples_per_s": run.steps_per_epoch * samples_per_step / train_seconds,
            "epoch_seconds": time.perf_counter() - started,
        }
        history.append(record)
        # Metrics first, checkpoint second: a kill in between re-runs the epoch, and the
        # resumed run drops the orphaned line before writing it again.
        _write_history(history_path, history)
        events.epoch(record)
        if improved:
            run.checkpoints.save_best(int(state.step), state, meta)
        run.checkpoints.save_last(int(state.step), state, meta)
        logger.info("epoch %d/%d  train loss %.4f  val macro AUROC %.4f%s  (%.1f s)",
                    epoch + 1, config.epochs, train_loss, val_auroc, "  *best*" if improved else "",
                    record["epoch_seconds"])
        if meta["stopped"]:
            logger.info("early stopping: no improvement for %d epochs", config.patience)
    return state


def is_new_best(score: float, best: float, min_improvement: float = 0.0) -> bool:
    """Whether a validation ``score`` is a new best: finite and above ``best`` by more than
    ``min_improvement`` (``best`` is -inf before the first epoch)."""
    return bool(np.isfinite(score) and score > best + min_improvement)


def _stopped_early(history_path: Path, config: TrainConfig) -> bool:
    """Whether patience ended the run: fewer epochs logged than the cap, or the last
    ``patience`` epochs without a new best (patience can run out on the cap's own epoch)."""
    history = _read_history(history_path, config.epochs)
    if len(history) < config.epochs:
        return True
    if not config.patience or not history:
        return False
    best = [line["best_val_macro_auroc"] for line in history]
    since_best = next((i for i in range(len(best) - 1, 0, -1) if best[i] > best[i - 1]), 0)
    return len(history) - 1 - since_best >= config.patience


def evaluate_state(run: Run, state: TrainState, splits=("validation", "test")) -> dict:
    """Predictions and metrics of ``state``; thresholds and the calibration temperature are
    fitted on the validation split only.

    Each split's summary gains ``calibration`` (:func:`imn.train.calibration.calibration_summary`:
    ECE and Brier before and after temperature scaling and after undoing the class-weighted
    loss's prior shift, and the ECE perfect calibration would show on the split's records)
    and ``macro_auroc_scaled``, the
    macro AUROC of the temperature-scaled model, ranked by ``logits / T`` in float64 (the
    logits' ranking: a positive temperature cannot change it; the raw ``macro_auroc`` ranks
    float32 probabilities, which tie where a saturated model rounds them to 0 or 1), and
    ``protocol``.
    """
    config = run.config
    names = tuple(dict.fromkeys(("validation",) + tuple(splits)))
    scores = {name: predict(run, state, run.data.split(name).signals) for name in names}
    logits = {name: predict(run, state, run.data.split(name).signals, logits=True) for name in names}
    thresholds = metrics.choose_thresholds(run.data.validation.labels, scores["validation"])
    temperature = calibration.fit_temperature(run.data.validation.labels, logits["validation"])
    head = run_head(run)
    offset = calibration.prior_offset(class_weights_for(head, config, run.data.train.labels), head)
    results = {}
    for name in splits:
        part = run.data.split(name)
        atomic.savez_compressed(
            run.workdir / f"predictions_{name}.npz",
            scores=scores[name], logits=logits[name], labels=part.labels, ecg_ids=part.ecg_ids,
            classes=np.asarray(run.data.classes), thresholds=thresholds,
            temperature=np.float64(temperature), logit_offset=offset,
        )
        results[name] = metrics.summarize(
            part.labels, scores[name], thresholds=thresholds, n_boot=config.bootstrap_samples,
            seed=config.seed, class_names=list(run.data.classes),
        )
        results[name]["calibration"] = calibration.calibration_summary(
            part.labels, logits[name], temperature, logit_offset=offset)
        # On logits / T (float64), not on sigmoids that may round to 0 or 1 and tie.
        results[name]["macro_auroc_scaled"] = metrics.macro_auroc(
            part.labels, logits[name] / temperature)
        results[name]["protocol"] = config.data.protocol
    return results


def saved_calibration(workdir: str | Path, split: str = "validation", *,
                      train_labels: np.ndarray | None = None) -> dict:
    """The calibration summary of a finished run's ``split`` recomputed from its
    ``predictions_{split}.npz`` without the model (for runs whose ``metrics.json`` predates
    a key): the same dict :func:`evaluate_state` writes.

    The prior offset is the one saved beside the logits; a file written before it was saved
    gets it from the training labels ``(N, K)``: ``train_labels`` if given (to load a task's
    data once for many runs), else read again with the run's data config.
    """
    saved = run_folder.read_calibrated_predictions(workdir, split)
    if "logit_offset" in saved:
        offset = saved["logit_offset"]
    else:
        config = run_folder.read_run_config(workdir)
        if train_labels is None:
            train_labels = prepare_task_data(config.data, seed=config.seed).train.labels
        labels = train_labels.shape[1]
        head = "softmax" if model_outputs(config.model.name, labels) != labels else "sigmoid"
        offset = calibration.prior_offset(class_weights_for(head, config, train_labels), head)
    return calibration.calibration_summary(saved["labels"], saved["logits"],
                                           float(saved["temperature"]), logit_offset=offset)


def run_calibration(workdir: str | Path, metrics: dict, split: str,
                    train_labels_cache: dict | None = None) -> dict:
    """A finished run's calibration summary of ``split``: the one in its ``metrics``, or, for
    a run evaluated before the ECE floor and the prior correction were reported, recomputed
    from its saved predictions (:func:`saved_calibration`). ``train_labels_cache`` keeps each data
    config's training labels for the next run of the same data; a run without saved logits
    keeps what its ``metrics`` has.
    """
    summary = metrics.get(split, {}).get("calibration", {})
    if "ece_floor" in summary and ("ece_prior_corrected" in summary or "prior_correction" in summary):
        return summary  # reported when it was evaluated (the correction, or why there is none)
    try:
        saved = run_folder.read_calibrated_predictions(workdir, split)
    except (FileNotFoundError, ValueError):
        return summary
    train_labels = None
    if "logit_offset" not in saved:
        config = run_folder.read_run_config(workdir)
        key = (json.dumps(dataclasses.asdict(config.data), sort_keys=True, default=str), config.seed)
        cache = {} if train_labels_cache is None else train_labels_cache
        if key not in cache:
            cache[key] = prepare_task_data(config.data, seed=config.seed).train.labels
        train_labels = cache[key]
    return saved_calibration(workdir, split, train_labels=train_labels)


def reliability_series(workdir: str | Path, metrics: dict, split: str,
                       train_labels_cache: dict | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A finished run's ``split`` as ``{name: (labels (N, K), probs (N, K))}`` for a reliability
    diagram: ``raw``, ``T-scaled`` (by the temperature fitted on validation) and, where the
    class weighting's offset is defined, ``prior-corrected``."""
    offset = run_calibration(workdir, metrics, split, train_labels_cache).get("logit_offset")
    saved = run_folder.read_calibrated_predictions(workdir, split)
    readings = calibration.calibrated_probabilities(saved["logits"], float(saved["temperature"]), offset)
    return {name: (saved["labels"], probs) for name, probs in readings.items()}


def restore_for_evaluation(run: Run) -> tuple[TrainState, dict]:
    """The best checkpoint (or the last one if validation never improved)."""
    target = run.steps.init_state()
    restored = run.checkpoints.restore_best(target) or run.checkpoints.restore_last(target)
    if restored is None:
        raise CheckpointError(f"run {run.workdir} has no checkpoint; train it first")
    return restored


def train_and_evaluate(config: TrainConfig, workdir: str | Path, *, devices=None,
                       allow_data_move: bool = False) -> dict:
    """Train ``config`` in ``workdir`` (resuming if possible), then evaluate the best checkpoint.

    ``devices``: the devices to shard batches over (default: all local devices).
    ``allow_data_move``: resume on the same data in another folder (:func:`setup_run`).
    Returns the dictionary written to ``metrics.json``.
    """
    maybe_initialize_distributed()
    run = setup_run(config, workdir, devices=devices, allow_data_move=allow_data_move)
    try:
        train(run)
        state, meta = restore_for_evaluation(run)
        results = evaluate_state(run, state)
    finally:
        run.checkpoints.close()
    summary = {
        "model": config.model.name,
        "task": run.data.train.task,
        "classes": list(run.data.classes),
        "best_epoch": meta["best_epoch"],
        "best_val_macro_auroc": meta["best_score"],
        # From the epoch log, not from ``meta``: that is the *best* checkpoint's, whose
        # epoch is the best one, not the last one run.
        "epochs_run": len(_read_history(Path(workdir) / "metrics.jsonl", config.epochs)),
        "stopped_early": _stopped_early(Path(workdir) / "metrics.jsonl", config),
        "protocol": config.data.protocol,
        **results,
    }
    # The done marker of the run (imn reproduce skips a run that has it): written atomically.
    atomic.write_json(Path(workdir) / "metrics.json", summary, default=float)
    return summary


def evaluate_workdir(workdir: str | Path, split: str = "test", *, data: str | None = None,
                     allow_data_move: bool = False) -> dict:
    """Re-evaluate a finished (or interrupted) run's best checkpoint on ``split``.

    ``data``: where the run's data lives now (KIND:DIR), if not where ``config.json`` says.
    """
    workdir = Path(workdir)
    config = run_folder.read_run_config(workdir)
    if data is not None:
        config = run_folder.config_with_data(config, data, workdir)
    run = setup_run(config, workdir, write_files=False, allow_data_move=allow_data_move)
    try:
        state, meta = restore_for_evaluation(run)
        results = evaluate_state(run, state, splits=(split,))
    finally:
        run.checkpoints.close()
    out = {"model": config.model.name, "split": split, "best_epoch": meta["best_epoch"], **results}
    atomic.write_json(workdir / f"metrics_{split}.json", out, default=float)
    return out
