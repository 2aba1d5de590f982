"""What a run folder promises about itself, checked whenever it is opened again.

A run folder records its format version and the data it was trained on in
``provenance.json`` (``run_format``; ``data``: kind, folder, label-file SHA-256, class list,
record counts). Resuming, evaluating, explaining and reproducing a run compare that record
with the data they are about to use and refuse a mismatch with an error naming both: a run
trained on one PTB-XL folder is never evaluated on another, or on synthetic data because
``IMN_PTBXL`` was unset, without a word. A deliberate move of the data to another folder is
allowed with ``allow_data_move`` (``--allow-data-move``); its contents must still match.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from imn.errors import ConfigError, RunFolderError
from imn.train.config import TrainConfig

# Version of the run-folder layout written by this code. Folders from before the version was
# recorded read as 0 and are still read; a newer one is refused rather than half-understood.
RUN_FORMAT = 1

# Identity fields that must match exactly; 'root' may differ when the move is allowed.
_CONTENT_FIELDS = ("source", "label_file_sha256", "records", "classes", "records_per_split",
                   "synthetic_seed", "synthetic_level")


def read_provenance(workdir: str | Path) -> dict[str, Any] | None:
    path = Path(workdir) / "provenance.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise RunFolderError(f"{path} is not valid JSON ({error})") from None


def read_history(workdir: str | Path) -> list[dict[str, Any]]:
    """The run's ``metrics.jsonl``, one dict per epoch (``[]`` before the first epoch ends)."""
    path = Path(workdir) / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_metrics(workdir: str | Path) -> dict[str, Any] | None:
    """The run's ``metrics.json`` (validation and test summaries), ``None`` until training and
    evaluation have finished: its presence is a run's done marker."""
    path = Path(workdir) / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else None


def read_calibrated_predictions(workdir: str | Path, split: str) -> dict[str, Any]:
    """The run's ``predictions_{split}.npz`` as a dict of arrays, with the ``logits`` and
    ``temperature`` that calibration needs (files from before calibration lack them: an error
    says to evaluate the run again)."""
    import numpy as np

    path = Path(workdir) / f"predictions_{split}.npz"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; evaluate the run first")
    with np.load(path) as saved:
        arrays = {key: saved[key] for key in saved.files}
    if "logits" not in arrays or "temperature" not in arrays:
        raise ValueError(f"{path} has no logits/temperature (written before calibration was "
                         "reported); re-run `imn evaluate` on the run")
    return arrays


def read_run_config(workdir: str | Path) -> TrainConfig:
    """The ``TrainConfig`` of an existing run folder, with errors that name the folder."""
    workdir = Path(workdir)
    path = workdir / "config.json"
    if not workdir.is_dir():
        raise RunFolderError(f"run folder {workdir} does not exist")
    if not path.is_file():
        raise RunFolderError(f"{workdir} is not a run folder: it has no config.json (made by imn train)")
    record = read_provenance(workdir) or {}
    found = int(record.get("run_format", 0))
    if found > RUN_FORMAT:
        raise RunFolderError(f"{workdir} has run format {found}, newer than this imn reads "
                             f"({RUN_FORMAT}); update imn")
    try:
        return TrainConfig.from_json(path.read_text())
    except json.JSONDecodeError as error:
        raise RunFolderError(f"{path} is not valid JSON ({error})") from None
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def config_with_data(config: TrainConfig, spec: str, workdir: Path) -> TrainConfig:
    """``config`` reading its data from ``spec`` (KIND:DIR): the same kind of data as it was
    trained on, in another folder (e.g. a run trained on a GPU machine, explained here)."""
    from imn.data.dataset import EcgDataError
    from imn.data.sources import parse_data_spec

    kind, root = parse_data_spec(spec)
    trained = config.data.source if config.data.source != "auto" else None
    if trained is not None and kind != trained:
        raise EcgDataError(f"{workdir} was trained on {trained} data; --data {spec!r} is {kind} data")
    return dataclasses.replace(config, data=dataclasses.replace(config.data, source=kind, root=root))


def _resolved(root: str | None) -> str | None:
    return str(Path(root).resolve()) if root else None


def _describe(identity: dict[str, Any]) -> str:
    where = identity.get("root") or "generated"
    return f"{identity.get('source')} data at {where}"


def check_data_identity(workdir: str | Path, recorded: dict[str, Any], current: dict[str, Any],
                        *, allow_data_move: bool = False) -> None:
    """Refuse ``current`` data for a run trained on ``recorded`` data (both as written by
    :func:`imn.provenance.data_identity`, plus classes and split sizes). Fields an older run
    folder did not record are not compared."""
    differences = []
    for field in _CONTENT_FIELDS:
        if field in recorded and field in current and recorded[field] != current[field]:
            differences.append(f"{field} {recorded[field]!r} then, {current[field]!r} now")
    moved = _resolved(recorded.get("root")) != _resolved(current.get("root"))
    if moved and not allow_data_move:
        differences.append(f"folder {recorded.get('root')} then, {current.get('root')} now "
                           "(pass --allow-data-move if the same data was moved there)")
    if differences:
        raise RunFolderError(
            f"run {workdir} was trained on {_describe(recorded)}, but this command reads "
            f"{_describe(current)}: " + "; ".join(differences)
        )


def recorded_identity(workdir: str | Path) -> dict[str, Any] | None:
    """The data identity a run folder recorded at training, with its class list."""
    record = read_provenance(workdir)
    if not record or not record.get("data"):
        return None
    identity = dict(record["data"])
    classes = identity.get("classes") or record.get("model", {}).get("classes")
    if classes is not None:
        identity["classes"] = list(classes)
    return identity


def check_recorded_source(workdir: str | Path, config: TrainConfig, *, allow_data_move: bool = False) -> None:
    """The cheap part of :func:`check_data_identity`, without loading any data: the kind and
    folder ``config`` points at against those the run recorded (for a finished run that is
    skipped rather than reopened)."""
    recorded = recorded_identity(workdir)
    if recorded is None:
        return
    kind, root = config.data.resolved_source()
    current = {"source": kind, "root": str(Path(root).absolute()) if root else None}
    check_data_identity(workdir, recorded, current, allow_data_move=allow_data_move)
