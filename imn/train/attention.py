"""xECGNet's two training stages: ABN's two-branch loss, then the attention-map regulariser.

Stage 1 (Fukui et al.'s attention branch network): the loss is the perception branch's BCE
plus ``branch_weight`` times the attention branch's own BCE (same class weights, same mask).

Stage 2 (Yoo et al.'s fine-tuning): start from the stage-1 run's best checkpoint and add

    gamma * mean over records of  sum_t |heatmap[t] - attention[t]|

where ``heatmap`` is fixed per training record before fine-tuning: the stage-1 model's class
activation map (Grad-CAM on the attended features, which for xECGNet's global-average-pool +
dense head is exactly CAM) of each of the record's true labels, each scaled to maximum 1, and
averaged over those labels -- "the averaged response maps of the ground-truth labels", at the
attention map's resolution. As in the authors' code the maps are per record (a beat-level
finding sits at different times in different records, so an average over records would say
nothing about where); they are computed on the training split only, from training labels, so
no validation or test label reaches training. A record without any label gets a zero map.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from baselines.gradcam import gradcam_low_resolution
from imn import atomic
from imn.errors import ConfigError, RunFolderError
from imn.explain.model_fns import split_eval

logger = logging.getLogger("imn")

TARGETS_FILE = "attention_targets.npz"


def has_attention_branch(model: Any) -> bool:
    return callable(getattr(model, "branches", None)) and callable(getattr(model, "attention_map", None))


def abn_auxiliary(branch_weight: float, gamma: float = 0.0, targets: Any = None) -> Callable:
    """The ``LossSpec.auxiliary`` of xECGNet's training step.

    Args:
      branch_weight: weight of the attention branch's BCE (ABN: 1).
      gamma: weight of the attention regulariser (stage 2; 0 in stage 1).
      targets: ``(N_train, T')`` heatmaps indexed by the training loader's ``batch["index"]``
        (stage 2), or None.
    Returns:
      ``auxiliary(model, x, batch, task_loss) -> (perception logits (B, K), extra loss ())``.
    """
    targets = None if targets is None else jnp.asarray(targets, jnp.float32)

    def auxiliary(model, x, batch, task_loss):
        out = model.branches(x)
        extra = branch_weight * task_loss(out.attention_logits, batch["y"], batch["mask"])
        if targets is not None and gamma:
            heatmap = targets[jnp.maximum(batch["index"], 0)]  # padded rows (-1) are masked
            distance = jnp.abs(heatmap - out.attention.astype(jnp.float32)).sum(axis=1)
            mask = batch["mask"]
            extra = extra + gamma * jnp.sum(distance * mask) / jnp.maximum(jnp.sum(mask), 1.0)
        return out.logits, extra

    return auxiliary


def label_heatmaps(model: nnx.Module, signals: np.ndarray, labels: np.ndarray, *,
                   chunk_size: int = 64) -> np.ndarray:
    """Per-record heatmaps ``(N, T')``: the mean over the record's true labels of each label's
    max-normalised class activation map (Grad-CAM on ``model.features``).

    Args:
      model: an xECGNet (any model with ``features``/``head``), run in evaluation mode.
      signals: ``(N, L, leads)`` training records as the model reads them.
      labels: ``(N, K)`` 0/1 training labels.
    """
    labels = np.asarray(labels, np.float32)
    if labels.ndim != 2 or len(labels) != len(signals):
        raise ValueError(f"labels must be (N, K) for {len(signals)} records, got {labels.shape}")
    graphdef, state = split_eval(model)  # an evaluation view; the caller's model is unchanged
    num_classes = labels.shape[1]

    @jax.jit
    def chunk_maps(state, x, y):
        m = nnx.merge(graphdef, state)

        def one_class(k):
            target = jnp.full((x.shape[0],), k, jnp.int32)
            cam = gradcam_low_resolution(
                m.features, lambda a, t: jnp.take_along_axis(m.head(a), t[:, None], 1)[:, 0], x, target)
            peak = cam.max(axis=1, keepdims=True)
            return jnp.where(peak > 0, cam / jnp.where(peak > 0, peak, 1.0), 0.0)  # (n, T')

        cams = jax.lax.map(one_class, jnp.arange(num_classes))  # (K, n, T')
        weights = y / jnp.maximum(y.sum(axis=1, keepdims=True), 1.0)  # mean over true labels
        return jnp.einsum("knt,nk->nt", cams, weights)

    maps = []
    for start in range(0, len(signals), chunk_size):
        x = jnp.asarray(np.asarray(signals[start:start + chunk_size], np.float32))
        maps.append(np.asarray(chunk_maps(state, x, jnp.asarray(labels[start:start + chunk_size]))))
    return np.concatenate(maps, axis=0)


def stage_one_state(config, num_labels: int, input_length: int, *, allow_data_move: bool = False):
    """The best checkpoint of the stage-1 run in ``config.attention.init_from``, restored into
    an evaluation-mode model: ``(model, run folder)``. Checks that it is an xECGNet run of the
    same data settings (task, folds, rate, normalisation, protocol), classes and input length. The stage-1 run is read on this run's data (its folder, as
    the caller checked it); ``allow_data_move`` accepts that folder for a stage-1 run recorded
    elsewhere."""
    from imn.train.config import TrainConfig
    from imn.train.steps import merge_eval_model
    from imn.train.trainer import restore_for_evaluation, setup_run

    source = config.attention.init_from
    if not source:
        raise ConfigError("attention.stage=2 fine-tunes a stage-1 run: set attention.init_from to "
                         "its run folder (e.g. --set attention.init_from=runs/xecgnet)")
    folder = Path(source)
    if not (folder / "config.json").is_file():
        raise RunFolderError(f"attention.init_from={source!r}: {folder / 'config.json'} not found; "
                                "train the stage-1 run first")
    stage_one = TrainConfig.from_json((folder / "config.json").read_text())
    if stage_one.model.name != config.model.name or stage_one.attention.stage != 1:
        raise ConfigError(f"attention.init_from={source!r} is a {stage_one.model.name!r} run of stage "
                         f"{stage_one.attention.stage}; fine-tuning needs a stage-1 {config.model.name!r} run")
    stage_one = dataclasses.replace(stage_one, data=dataclasses.replace(
        stage_one.data, source=config.data.source, root=config.data.root))
    # The same task, folds, rate and normalisation: a stage-1 run on other folds could have
    # trained on this run's validation or test records, one on another binary task (the same
    # class count) would seed it silently.
    differing = [field.name for field in dataclasses.fields(config.data)
                 if getattr(stage_one.data, field.name) != getattr(config.data, field.name)]
    if differing:
        described = "; ".join(f"data.{name}: {getattr(stage_one.data, name)!r} there, "
                              f"{getattr(config.data, name)!r} here" for name in differing)
        raise ConfigError(f"attention.init_from={source!r} was trained on other data settings "
                          f"({described}); fine-tune a stage-1 run of the same data")
    run = setup_run(stage_one, folder, write_files=False, allow_data_move=allow_data_move)
    try:
        if len(run.data.classes) != num_labels:
            raise RunFolderError(f"{folder} was trained on {len(run.data.classes)} classes, this run has {num_labels}")
        state, _ = restore_for_evaluation(run)
        model = merge_eval_model(run.steps, state)
    finally:
        run.checkpoints.close()
    trained_length = run.train_loader.example_shape[0]
    if trained_length != input_length:
        raise RunFolderError(f"{folder} was trained on inputs of {trained_length} samples, this run uses {input_length}")
    return model, folder


def prepare_finetuning(model: nnx.Module, config, data, input_length: int, workdir: Path,
                       crop: int | None, *, allow_data_move: bool = False) -> np.ndarray:
    """Stage 2 set-up: load the stage-1 parameters into ``model`` and return the training
    heatmaps ``(N_train, T')``, computed once and kept in ``workdir/attention_targets.npz``."""
    if crop is not None:
        raise ConfigError("xECGNet's fine-tuning ties a heatmap to each whole training record; "
                         "it cannot train on random crops (unset data.crop_seconds)")
    stage_one, folder = stage_one_state(config, len(data.classes), input_length,
                                        allow_data_move=allow_data_move)
    # The fine-tuned run starts from the stage-1 parameters and running statistics.
    nnx.update(model, nnx.state(stage_one, nnx.Param), nnx.state(stage_one, nnx.BatchStat))
    path = Path(workdir) / TARGETS_FILE
    ids = np.asarray(data.train.ecg_ids)
    if path.exists():
        stored = np.load(path, allow_pickle=False)
        if np.array_equal(stored["ecg_ids"], ids.astype(stored["ecg_ids"].dtype)):
            return stored["heatmaps"]
        logger.info("%s belongs to other training records; computing the heatmaps again", path)
    logger.info("computing xECGNet's fine-tuning heatmaps on %d training records from %s",
                len(ids), folder)
    heatmaps = label_heatmaps(stage_one, data.train.signals, data.train.labels)
    # The run folder is created here at the earliest: everything before was validation.
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.savez_compressed(path, heatmaps=heatmaps, ecg_ids=ids, source=str(folder))
    return heatmaps


__all__ = ["TARGETS_FILE", "abn_auxiliary", "has_attention_branch", "label_heatmaps",
           "prepare_finetuning", "stage_one_state"]
