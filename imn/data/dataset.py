"""The in-memory ECG dataset shared by every reader, the synthetic generator and the pipeline.

Arrays are channels-last: ``signals`` is ``(N, L, 12)`` with leads in the order of ``LEADS``.
Signals stay in physical units (mV); normalisation is a separate, explicit step
(:mod:`imn.data.normalize`) so that a cache never holds normalised data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from imn.errors import UserError

# Standard clinical order. Keep it: IMN's 3-wide kernel over the lead axis mixes neighbours.
LEADS: tuple[str, ...] = (
    "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6",
)
NUM_LEADS = len(LEADS)
SUPPORTED_SAMPLING_RATES: tuple[int, ...] = (100, 500)
RECORD_SECONDS = 10


class EcgDataError(UserError):
    """Bad input: a missing file, a corrupt record, a wrong shape, an unknown task.

    The message always names the file or record and what is wrong with it.
    """


def canonical_lead_name(name: str) -> str:
    """Map header spellings (``AVR``, ``avr``, ``aVR``) onto the names in ``LEADS``."""
    stripped = name.strip()
    for lead in LEADS:
        if stripped.lower() == lead.lower():
            return lead
    return stripped


@dataclasses.dataclass(frozen=True)
class Splits:
    """Which ``strat_fold`` values form each split (PTB-XL: 1-8 / 9 / 10)."""

    train: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8)
    validation: tuple[int, ...] = (9,)
    test: tuple[int, ...] = (10,)

    def folds(self, split: str) -> tuple[int, ...]:
        if split not in ("train", "validation", "test"):
            raise ValueError(f"unknown split {split!r}; expected 'train', 'validation' or 'test'")
        return getattr(self, split)

    def __post_init__(self) -> None:
        seen: dict[int, str] = {}
        for split in ("train", "validation", "test"):
            for fold in getattr(self, split):
                if fold in seen:
                    raise ValueError(f"fold {fold} is in both {seen[fold]!r} and {split!r}")
                seen[fold] = split


DEFAULT_SPLITS = Splits()


@dataclasses.dataclass(frozen=True, eq=False)
class EcgDataset:
    """A labelled set of fixed-length 12-lead ECGs.

    Attributes:
      signals: float32 ``(N, L, 12)``, physical units (mV), leads in ``LEADS`` order.
      labels: float32 ``(N, K)`` multi-hot (for a binary task ``K = 1``).
      classes: the ``K`` class names, in label-column order.
      ecg_ids: int64 ``(N,)`` record identifiers.
      patient_ids: int64 ``(N,)``; -1 where unknown.
      folds: int64 ``(N,)`` stratified fold (PTB-XL ``strat_fold``).
      age: float32 ``(N,)``; NaN where unknown.
      sex: int8 ``(N,)``; PTB-XL coding 0 male, 1 female, -1 unknown.
      sampling_rate: samples per second (100 or 500 for PTB-XL).
      task: the task the labels belong to.
      evidence: optional bool ``(N, K, L, 12)``; where each present class's evidence lies
        (synthetic data only).
      skipped: ecg_ids of records left out because they were unreadable (``on_error="skip"``).
    """

    signals: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    ecg_ids: np.ndarray
    patient_ids: np.ndarray
    folds: np.ndarray
    age: np.ndarray
    sex: np.ndarray
    sampling_rate: int
    task: str = ""
    evidence: np.ndarray | None = None
    skipped: tuple[int, ...] = ()
    # How many records a reader adapted to the grid, by adaptation (imn.data.conform.Conform).
    adaptations: dict[str, int] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.signals)
        if self.signals.ndim != 3 or self.signals.shape[2] != NUM_LEADS:
            raise EcgDataError(
                f"signals must have shape (N, L, {NUM_LEADS}); got {self.signals.shape}"
            )
        if self.labels.shape != (n, len(self.classes)):
            raise EcgDataError(
                f"labels must have shape ({n}, {len(self.classes)}); got {self.labels.shape}"
            )
        for name in ("ecg_ids", "patient_ids", "folds", "age", "sex"):
            if len(getattr(self, name)) != n:
                raise EcgDataError(f"{name} has {len(getattr(self, name))} entries, expected {n}")
        if self.evidence is not None:
            expected = (n, len(self.classes), self.signals.shape[1], NUM_LEADS)
            if self.evidence.shape != expected:
                raise EcgDataError(f"evidence must have shape {expected}; got {self.evidence.shape}")

    # ------------------------------------------------------------------ basic properties
    def __len__(self) -> int:
        return len(self.signals)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def length(self) -> int:
        """Samples per record, ``L``."""
        return self.signals.shape[1]

    # ------------------------------------------------------------------ selection
    def subset(self, index: np.ndarray | Sequence[int]) -> EcgDataset:
        """Rows ``index`` (integer positions or a boolean mask) as a new dataset.

        ``signals`` of a memory-mapped dataset are only read for the selected rows.
        """
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        return dataclasses.replace(
            self,
            signals=np.asarray(self.signals[index]),
            labels=self.labels[index],
            ecg_ids=self.ecg_ids[index],
            patient_ids=self.patient_ids[index],
            folds=self.folds[index],
            age=self.age[index],
            sex=self.sex[index],
            evidence=None if self.evidence is None else np.asarray(self.evidence[index]),
        )

    def split(self, name: str, splits: Splits = DEFAULT_SPLITS) -> EcgDataset:
        """The records whose fold belongs to split ``name`` ('train', 'validation', 'test')."""
        return self.subset(np.isin(self.folds, splits.folds(name)))

    def label_counts(self) -> dict[str, int]:
        """Number of records carrying each class."""
        counts = self.labels.sum(axis=0).astype(int)
        return {name: int(c) for name, c in zip(self.classes, counts)}

    def summary(self) -> str:
        """A few human-readable lines: size, rate, classes and counts per split."""
        lines = [
            f"task {self.task or '?'}: {len(self)} records x {self.length} samples x "
            f"{NUM_LEADS} leads at {self.sampling_rate} Hz, {self.num_classes} "
            f"class{'' if self.num_classes == 1 else 'es'}",
        ]
        width = max([len(c) for c in self.classes] + [5])
        header = f"  {'class':<{width}} " + " ".join(f"{s:>10}" for s in ("train", "validation", "test", "all"))
        lines.append(header)
        parts = {s: self.split(s) for s in ("train", "validation", "test")}
        for k, name in enumerate(self.classes):
            cells = [int(parts[s].labels[:, k].sum()) for s in ("train", "validation", "test")]
            cells.append(int(self.labels[:, k].sum()))
            lines.append(f"  {name:<{width}} " + " ".join(f"{c:>10d}" for c in cells))
        sizes = [len(parts[s]) for s in ("train", "validation", "test")] + [len(self)]
        lines.append(f"  {'records':<{width}} " + " ".join(f"{c:>10d}" for c in sizes))
        if self.skipped:
            lines.append(f"  skipped {len(self.skipped)} unreadable records: {list(self.skipped)}")
        for adaptation, count in sorted(self.adaptations.items()):
            lines.append(f"  adapted {count} record{'' if count == 1 else 's'}: {adaptation}")
        return "\n".join(lines)
