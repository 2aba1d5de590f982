"""Signal normalisation: per-record z-score (the IMN paper) or a train-set scaler (the benchmark).

Both work on channels-last arrays ``(..., L, 12)`` and return float32.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from imn.data.dataset import NUM_LEADS, EcgDataset

# Flat leads (a disconnected electrode) have zero variance; the floor keeps them at zero
# instead of dividing by zero.
_STD_FLOOR = 1e-6


def zscore_per_record(signals: np.ndarray, eps: float = _STD_FLOOR) -> np.ndarray:
    """Per-record, per-lead z-score: each lead of each ECG gets mean 0 and std 1.

    Args:
      signals: ``(..., L, 12)``.
    Returns:
      float32 array of the same shape.
    """
    signals = np.asarray(signals, dtype=np.float32)
    mean = signals.mean(axis=-2, keepdims=True)
    std = signals.std(axis=-2, keepdims=True)
    return (signals - mean) / np.maximum(std, eps)


@dataclasses.dataclass(frozen=True)
class StandardScaler:
    """Per-lead mean and std over all training samples (the PTB-XL benchmark's scaler).

    Fit on the training split only; apply the same statistics to validation and test.
    """

    mean: np.ndarray  # (12,)
    std: np.ndarray  # (12,)

    @classmethod
    def fit(cls, signals: np.ndarray, chunk: int = 1024) -> StandardScaler:
        """Statistics of ``signals`` ``(N, L, 12)``, in float64 chunks (bounded memory)."""
        if signals.ndim != 3 or signals.shape[-1] != NUM_LEADS:
            raise ValueError(f"expected (N, L, {NUM_LEADS}) signals, got {signals.shape}")
        total = np.zeros(NUM_LEADS)
        total_sq = np.zeros(NUM_LEADS)
        count = 0
        for start in range(0, len(signals), chunk):
            block = np.asarray(signals[start : start + chunk], dtype=np.float64)
            total += block.sum(axis=(0, 1))
            total_sq += np.square(block).sum(axis=(0, 1))
            count += block.shape[0] * block.shape[1]
        if count == 0:
            raise ValueError("cannot fit a StandardScaler on zero records")
        mean = total / count
        var = np.maximum(total_sq / count - mean**2, 0.0)
        return cls(mean=mean.astype(np.float32), std=np.sqrt(var).astype(np.float32))

    @classmethod
    def fit_dataset(cls, train: EcgDataset) -> StandardScaler:
        return cls.fit(train.signals)

    def transform(self, signals: np.ndarray) -> np.ndarray:
        signals = np.asarray(signals, dtype=np.float32)
        return (signals - self.mean) / np.maximum(self.std, _STD_FLOOR)

    def to_json(self) -> str:
        return json.dumps({"mean": self.mean.tolist(), "std": self.std.tolist()})

    @classmethod
    def from_json(cls, text: str) -> StandardScaler:
        data = json.loads(text)
        return cls(mean=np.asarray(data["mean"], np.float32), std=np.asarray(data["std"], np.float32))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> StandardScaler:
        return cls.from_json(Path(path).read_text())


NORMALIZATIONS = ("none", "zscore", "standard")


def normalize_splits(
    train: np.ndarray, others: list[np.ndarray], method: str
) -> tuple[np.ndarray, list[np.ndarray], StandardScaler | None]:
    """Normalise a training array and further arrays the same way.

    ``method``: 'none', 'zscore' (per record) or 'standard' (scaler fitted on ``train`` only).
    Returns the normalised train array, the normalised others and the fitted scaler (if any).
    """
    if method == "none":
        return np.asarray(train, np.float32), [np.asarray(o, np.float32) for o in others], None
    if method == "zscore":
        return zscore_per_record(train), [zscore_per_record(o) for o in others], None
    if method == "standard":
        scaler = StandardScaler.fit(train)
        return scaler.transform(train), [scaler.transform(o) for o in others], scaler
    raise ValueError(f"unknown normalisation {method!r}; expected one of {NORMALIZATIONS}")
