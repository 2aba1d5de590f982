"""Turn a :class:`~imn.train.config.DataConfig` into normalised train/validation/test splits."""

from __future__ import annotations

import dataclasses

import numpy as np

from imn import provenance
from imn.data.dataset import EcgDataError, EcgDataset, Splits
from imn.data.normalize import StandardScaler, zscore_per_record
from imn.data.sources import SYNTHETIC_TASK
from imn.train.config import DataConfig

__all__ = ["SYNTHETIC_TASK", "TaskData", "load_dataset", "prepare_task_data"]


@dataclasses.dataclass
class TaskData:
    """The three splits of one task, normalised, plus what is needed to describe them."""

    train: EcgDataset
    validation: EcgDataset
    test: EcgDataset
    classes: tuple[str, ...]
    sampling_rate: int
    scaler: StandardScaler | None
    identity: dict

    def split(self, name: str) -> EcgDataset:
        if name not in ("train", "validation", "test"):
            raise ValueError(f"unknown split {name!r}; expected train, validation or test")
        return getattr(self, name)


def load_dataset(config: DataConfig, seed: int = 0) -> tuple[EcgDataset, dict]:
    """The whole (unsplit, unnormalised) dataset of ``config`` and its provenance record."""
    from imn.data.sources import label_file, load_source

    source, root = config.resolved_source()
    dataset = load_source(source, root, config.task, config.sampling_rate, progress=True,
                          synthetic_n=config.synthetic_n, seed=seed,
                          synthetic_level=config.synthetic_level)
    identity = provenance.data_identity(
        source, root, len(dataset), label_file(source, root, config.task, config.sampling_rate))
    if source == "synthetic" and root is None:
        identity["synthetic_seed"] = seed
        identity["synthetic_level"] = config.synthetic_level
    return dataset, identity


def _cap(dataset: EcgDataset, limit: int | None) -> EcgDataset:
    return dataset if limit is None or len(dataset) <= limit else dataset.subset(np.arange(limit))


PROTOCOLS = ("separate", "merged_9_10")
PROTOCOL_LABELS = {"separate": "val 9 / test 10",
                   "merged_9_10": "folds 9+10 merged (select = report, authors' protocol)"}


def evaluation_splits(config: DataConfig) -> Splits:
    """The fold splits of ``config.protocol``: "separate" uses the configured folds;
    "merged_9_10" puts the validation and test folds together in the validation split
    (the test split is then the same records, see :func:`prepare_task_data`)."""
    if config.protocol not in PROTOCOLS:
        raise ValueError(f"unknown data.protocol {config.protocol!r}; expected one of {PROTOCOLS}")
    if config.protocol == "merged_9_10":
        return Splits(config.train_folds, tuple(config.validation_folds) + tuple(config.test_folds), ())
    return Splits(config.train_folds, config.validation_folds, config.test_folds)


def prepare_task_data(config: DataConfig, seed: int = 0) -> TaskData:
    """Load, split by fold and normalise.

    Under ``protocol="merged_9_10"`` the test split *is* the validation split (folds 9 + 10
    merged, as in the authors' code): the checkpoint is selected and reported on the same
    records, which flatters the reported number.

    The benchmark's standard scaler is fitted on the training split only; the per-record
    z-score needs no fitting. Signals become float32 arrays in memory (normalised data is
    never written to the cache).
    """
    dataset, identity = load_dataset(config, seed)
    splits = evaluation_splits(config)
    names = ("train", "validation") if config.protocol == "merged_9_10" else ("train", "validation", "test")
    parts = {name: _cap(dataset.split(name, splits), config.max_records) for name in names}
    for name, part in parts.items():
        if len(part) == 0:
            raise EcgDataError(
                f"the {name} split (folds {splits.folds(name)}) of task {dataset.task!r} is empty"
            )
    scaler = None
    if config.normalization == "zscore":
        transform = zscore_per_record
    elif config.normalization == "standard":
        scaler = StandardScaler.fit(parts["train"].signals)
        transform = scaler.transform
    elif config.normalization == "none":
        def transform(signals):
            return np.asarray(signals, np.float32)
    else:
        raise ValueError(f"unknown normalization {config.normalization!r}; expected zscore, standard or none")
    parts = {name: dataclasses.replace(part, signals=transform(part.signals)) for name, part in parts.items()}
    if config.protocol == "merged_9_10":
        parts["test"] = parts["validation"]
    identity["records_per_split"] = {name: len(part) for name, part in parts.items()}
    identity["classes"] = list(dataset.classes)
    return TaskData(
        train=parts["train"],
        validation=parts["validation"],
        test=parts["test"],
        classes=dataset.classes,
        sampling_rate=dataset.sampling_rate,
        scaler=scaler,
        identity=identity,
    )
