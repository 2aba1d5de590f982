"""Raising the epoch cap of a run that was trained under a lower one, without retraining it.

A run trained with ``epochs=12`` that is wanted with ``epochs=40`` does not need its first 12
epochs again when nothing it did depended on the cap. (A lower cap is followed the same way
while the run has not yet run more epochs than it allows.) That holds for the ``step`` and
``constant`` learning-rate schedules (the learning rate at a step does not depend on the number
of epochs; cosine and one-cycle do), because each epoch's batch order depends on the seed and
the epoch only (``BatchLoader.epoch``), dropout on the seed and the step, and the last
checkpoint holds the optimiser state and the early-stopping counters. Continuing from the last
checkpoint is then the very computation a fresh run with the higher cap would have done, and a
test checks that it is (``tests/train/test_continuation.py``).

* A run that early stopping ended ends the same way under a higher cap, and a model that does
  not train in epochs (``epoch_free``) does not care: only their ``config.json`` changes
  (``"relabelled"``).
* A run that the old cap ended, or an unfinished one, continues (``"continues"``): everything
  computed from the old model (evaluation, predictions, explanations, attributions) is removed,
  so that nothing of the old model is reported as the new one's, and training resumes from
  ``checkpoints/last``.

Each is listed in the run's ``provenance.json``, under ``continued`` or ``relabelled``.
Anything else that differs from the run's recorded config is refused with the differences
named. The check (:func:`check_change`) reads only, so a caller can check many runs before
changing any (:func:`apply_change`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

from imn import atomic, provenance
from imn.errors import ConfigError
from imn.train import run_folder
from imn.train.config import TrainConfig

logger = logging.getLogger("imn")

# Schedules whose learning rate at a given step does not depend on ``epochs``.
CAP_FREE_SCHEDULES = ("step", "constant")

# Files computed from a run's trained model (by training's evaluation, ``imn evaluate``,
# ``imn explain`` and ``imn reproduce``); a continued run's model changes, so they go.
# ``metrics.jsonl`` (the history the run resumes from) does not match ``metrics*.json``.
_DERIVED_PATTERNS = ("metrics.json", "metrics_*.json", "predictions_*.npz", "attributions_*.npz",
                     "faithfulness_*", "localisation_*")


@dataclasses.dataclass(frozen=True)
class CapChange:
    """What following a new config means for one run folder (see the module docstring)."""

    workdir: Path
    config: TrainConfig
    action: str  # "same" | "relabelled" | "continues"
    from_epochs: int | None = None
    finished: bool = False  # whether the run had been evaluated (metrics.json) before
    reason: str = ""


def _differences(old: Any, new: Any, prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """Dotted keys whose values differ between two JSON trees, with both values."""
    if isinstance(old, dict) and isinstance(new, dict):
        found: dict[str, tuple[Any, Any]] = {}
        for key in sorted(set(old) | set(new)):
            found.update(_differences(old.get(key), new.get(key), f"{prefix}{key}."))
        return found
    return {} if old == new else {prefix.rstrip("."): (old, new)}


def config_differences(recorded: TrainConfig, config: TrainConfig) -> dict[str, tuple[Any, Any]]:
    """Settings (dotted keys) in which ``config`` differs from a run's ``recorded`` one, with
    both values. The data's folder is left out: it may move (``--allow-data-move``), and its
    identity is checked elsewhere (:mod:`imn.train.run_folder`)."""
    everything = _differences(json.loads(recorded.to_json()), json.loads(config.to_json()))
    return {key: pair for key, pair in everything.items() if key != "data.root"}


def describe_differences(differences: dict[str, tuple[Any, Any]]) -> str:
    return "; ".join(f"{key} {a!r} then, {b!r} now" for key, (a, b) in differences.items())


def check_change(workdir: str | Path, config: TrainConfig, *,
                 epoch_free: bool = False) -> CapChange:
    """How the run in ``workdir`` can follow ``config``; reads only.

    Raises :class:`ConfigError` naming the run and the differences when following it would
    not give what a fresh run with ``config`` gives.
    """
    workdir = Path(workdir)
    if not (workdir / "config.json").exists():
        return CapChange(workdir, config, "same")
    recorded = run_folder.read_run_config(workdir)
    differences = config_differences(recorded, config)
    if not differences:
        return CapChange(workdir, config, "same")
    reasons = []
    other = {key: pair for key, pair in differences.items() if key != "epochs"}
    if other:
        reasons.append(describe_differences(other))
    epochs_run = len(run_folder.read_history(workdir))
    if "epochs" in differences and config.epochs < epochs_run:
        reasons.append(f"it already ran {epochs_run} epochs, more than the new cap of "
                       f"{config.epochs}")
    if recorded.optim.schedule not in CAP_FREE_SCHEDULES and not epoch_free:
        reasons.append(f"its {recorded.optim.schedule!r} schedule depends on the epoch cap")
    if reasons:
        raise ConfigError(f"run {workdir} was trained with another config ({'; '.join(reasons)}); "
                          "retrain it in a new folder (or delete this one)")
    summary = workdir / "metrics.json"
    finished = summary.exists()
    if epoch_free:
        return CapChange(workdir, config, "relabelled", recorded.epochs, finished,
                         "it trains in no epochs")
    if finished and json.loads(summary.read_text()).get("stopped_early"):
        return CapChange(workdir, config, "relabelled", recorded.epochs, finished,
                         "early stopping ended it")
    if finished and not (workdir / "checkpoints" / "last").is_dir():
        raise ConfigError(f"run {workdir} hit its cap of {recorded.epochs} epochs and has no "
                          "checkpoints/last to continue from; retrain it in a new folder")
    reason = f"the cap of {recorded.epochs} epochs ended it" if finished else "it is unfinished"
    return CapChange(workdir, config, "continues", recorded.epochs, finished, reason)


def apply_change(change: CapChange) -> None:
    """Make the run folder follow ``change.config`` as :func:`check_change` decided."""
    if change.action == "same":
        return
    workdir = change.workdir
    if change.action == "continues":
        for pattern in _DERIVED_PATTERNS:
            for path in workdir.glob(pattern):
                path.unlink()
    record = run_folder.read_provenance(workdir)
    if record is not None:  # an unfinished run without one gets it when training starts
        key = "continued" if change.action == "continues" else "relabelled"
        record.setdefault(key, []).append({
            "from_epochs": change.from_epochs, "to_epochs": change.config.epochs,
            "finished_before": change.finished, "reason": change.reason,
            "created": provenance.now_utc(), "git": provenance.git_state(),
        })
        atomic.write_json(workdir / "provenance.json", record)
    atomic.write_text(workdir / "config.json", change.config.to_json())
    logger.info("%s: %s; %s (cap %d -> %d epochs)", workdir, change.reason,
                "it continues from its last checkpoint" if change.action == "continues"
                else "only the cap changes", change.from_epochs, change.config.epochs)


def follow_config(workdir: str | Path, config: TrainConfig, *, epoch_free: bool = False) -> str:
    """:func:`check_change` then :func:`apply_change`; returns the action taken."""
    change = check_change(workdir, config, epoch_free=epoch_free)
    apply_change(change)
    return change.action
