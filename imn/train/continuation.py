"""Raising the epoch cap of a run that was trained under a lower one, without retraining it.

A run trained with ``epochs=12`` that is wanted with ``epochs=40`` does not need its first 12
epochs again when nothing it did depended on the cap. That holds for the ``step`` and
``constant`` learning-rate schedules (the learning rate at a step does not depend on the number
of epochs; cosine and one-cycle do), because each epoch's batch order depends on the seed and
the epoch only (``BatchLoader.epoch``) and the last checkpoint holds the optimiser state,
the random state and the early-stopping counters. Continuing from the last checkpoint is then
the very computation a fresh run with the higher cap would have done, and a test checks that
it is (``tests/train/test_continuation.py``).

* A run that early stopping ended before the old cap ends the same way under the new one: only
  its ``config.json`` changes.
* A run that the old cap ended continues: its evaluation (``metrics.json``, predictions) and
  everything computed from the old model (explanations, attributions) are removed, so that
  nothing of the old model is reported as the new one's; training resumes from
  ``checkpoints/last``. ``provenance.json`` lists each continuation under ``continued``.

Anything else that differs from the run's recorded config is refused with the differences named.
"""

from __future__ import annotations

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

# Files computed from a run's trained model; a continued run's model changes, so they go.
_DERIVED_FILES = ("metrics.json", "predictions_validation.npz", "predictions_test.npz",
                  "faithfulness_settings.json", "faithfulness_test.json", "faithfulness_test.csv",
                  "faithfulness_test.md", "faithfulness_curves_test.npz", "localisation_test.csv",
                  "localisation_test.md", "attributions_test.npz")


def _differences(old: Any, new: Any, prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """Dotted keys whose values differ between two JSON trees, with both values."""
    if isinstance(old, dict) and isinstance(new, dict):
        found: dict[str, tuple[Any, Any]] = {}
        for key in sorted(set(old) | set(new)):
            found.update(_differences(old.get(key), new.get(key), f"{prefix}{key}."))
        return found
    return {} if old == new else {prefix.rstrip("."): (old, new)}


def _ended_early(workdir: Path) -> bool:
    """Whether early stopping ended the finished run in ``workdir`` (before its cap)."""
    return bool(json.loads((workdir / "metrics.json").read_text()).get("stopped_early"))


def follow_config(workdir: str | Path, config: TrainConfig, *, epoch_free: bool = False) -> str:
    """Make the run in ``workdir`` follow ``config`` if it differs from the recorded config by
    a higher epoch cap only, under a cap-free schedule. Returns what happened: ``"same"``
    (nothing differs or no run yet), ``"relabelled"`` (the run ended early, or its model does
    not train in epochs: ``epoch_free``, the feature route's trees and logistic regression;
    only the cap in ``config.json`` changed) or ``"continues"`` (an unfinished run, or one the
    old cap ended: derived files removed; train it to resume).

    Raises :class:`ConfigError` naming the differences when continuing would not be exact.
    """
    workdir = Path(workdir)
    if not (workdir / "config.json").exists():
        return "same"
    recorded = run_folder.read_run_config(workdir)
    old, new = json.loads(recorded.to_json()), json.loads(config.to_json())
    # The data's folder may move (--allow-data-move); its identity is checked elsewhere
    # (imn.train.run_folder), so only what the training did is compared here.
    differences = {key: pair for key, pair in _differences(old, new).items() if key != "data.root"}
    if not differences:
        return "same"
    reasons = []
    other = {key: pair for key, pair in differences.items() if key != "epochs"}
    if other:
        reasons.append("; ".join(f"{key} {a!r} then, {b!r} now" for key, (a, b) in other.items()))
    if "epochs" in differences and config.epochs < recorded.epochs:
        reasons.append(f"the epoch cap went down ({recorded.epochs} -> {config.epochs})")
    if recorded.optim.schedule not in CAP_FREE_SCHEDULES and not epoch_free:
        reasons.append(f"its {recorded.optim.schedule!r} schedule depends on the epoch cap")
    if reasons:
        raise ConfigError(f"run {workdir} was trained with another config ({'; '.join(reasons)}); "
                          "retrain it in a new folder (or delete this one)")
    finished = (workdir / "metrics.json").exists()
    if epoch_free or (finished and _ended_early(workdir)):
        atomic.write_text(workdir / "config.json", config.to_json())
        logger.info("%s: %s; only the cap changes (%d -> %d epochs)", workdir,
                    "trains in no epochs" if epoch_free else "early stopping ended it before the old cap",
                    recorded.epochs, config.epochs)
        return "relabelled"
    if finished and not (workdir / "checkpoints" / "last").is_dir():
        raise ConfigError(f"run {workdir} hit its cap of {recorded.epochs} epochs and has no "
                          "checkpoints/last to continue from; retrain it in a new folder")
    for name in _DERIVED_FILES:
        (workdir / name).unlink(missing_ok=True)
    record = run_folder.read_provenance(workdir) or {}
    now = provenance.collect()
    record.setdefault("continued", []).append({
        "from_epochs": recorded.epochs, "to_epochs": config.epochs, "finished_before": finished,
        "created": now.get("created"), "git": now.get("git"),
    })
    atomic.write_json(workdir / "provenance.json", record)
    atomic.write_text(workdir / "config.json", config.to_json())
    logger.info("%s: hit its cap of %d epochs; continues from its last checkpoint to at most %d",
                workdir, recorded.epochs, config.epochs)
    return "continues"
