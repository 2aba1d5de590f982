"""Bring records of any source onto the project's fixed grid: 12 leads in ``LEADS`` order,
one sampling rate, one length, float32 mV; and give records without PTB-XL's ``strat_fold``
a stable fold.

Shared by the readers of sources whose records vary (CinC/CPSC 2018: 6-60 s at 257-1000 Hz;
MIMIC-IV-ECG: 10 s at 500 Hz), so that every reader returns an :class:`EcgDataset` the
training and explanation code can use unchanged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from imn.data.dataset import (
    LEADS,
    NUM_LEADS,
    RECORD_SECONDS,
    EcgDataError,
    canonical_lead_name,
)

CROP_MODES = ("center", "start")
NUM_FOLDS = 10


@dataclasses.dataclass(frozen=True)
class Conform:
    """The target grid: ``sampling_rate`` Hz, ``seconds`` long; longer records are cropped
    (``crop="center"`` or ``"start"``), shorter ones zero-padded at the end (``pad=True``)
    or rejected (``pad=False``)."""

    sampling_rate: int = 100
    seconds: float = RECORD_SECONDS
    crop: str = "center"
    pad: bool = True

    def __post_init__(self) -> None:
        if self.sampling_rate <= 0 or self.seconds <= 0:
            raise ValueError(f"sampling_rate and seconds must be positive, got {self}")
        if self.crop not in CROP_MODES:
            raise ValueError(f"crop must be one of {CROP_MODES}, got {self.crop!r}")

    @property
    def length(self) -> int:
        """Samples per conformed record, ``L``."""
        return round(self.sampling_rate * self.seconds)


def lead_order(names: Sequence[str], where: str) -> np.ndarray:
    """Column index of each lead of ``LEADS`` in a record whose header names ``names``.

    Raises ``EcgDataError`` naming ``where`` when the header's leads are not exactly the 12
    standard leads (any order and case, e.g. ``AVR``).
    """
    canonical = [canonical_lead_name(str(name)) for name in names]
    if sorted(canonical) != sorted(LEADS):
        missing = [lead for lead in LEADS if lead not in canonical]
        extra = [name for name in canonical if name not in LEADS]
        raise EcgDataError(
            f"{where}: header lead names {list(names)} are not the 12 standard leads "
            f"(missing {missing}, unexpected {extra})"
        )
    return np.asarray([canonical.index(lead) for lead in LEADS])


def resample(signal: np.ndarray, rate: float, target_rate: int) -> np.ndarray:
    """``(n, C)`` at ``rate`` Hz -> ``(round(n * target / rate), C)`` at ``target_rate``, by
    polyphase filtering (scipy's ``resample_poly``, anti-aliased); unchanged if equal."""
    if np.isclose(rate, target_rate):
        return signal
    from scipy.signal import resample_poly

    ratio = Fraction(target_rate) / Fraction(rate).limit_denominator(1000)
    return resample_poly(signal, ratio.numerator, ratio.denominator, axis=0)


def conform_signal(signal: np.ndarray, rate: float, lead_names: Sequence[str], grid: Conform,
                   where: str) -> np.ndarray:
    """One record ``(n, 12)`` in mV at ``rate`` Hz with columns named ``lead_names`` -> float32
    ``(grid.length, 12)`` in ``LEADS`` order at ``grid.sampling_rate``.

    Raises ``EcgDataError`` naming ``where`` for a wrong shape, unknown leads, NaN or
    infinite samples, a non-positive rate, or (with ``pad=False``) a record too short.
    """
    signal = np.asarray(signal, np.float64)
    if signal.ndim != 2 or signal.shape[1] != NUM_LEADS:
        raise EcgDataError(f"{where}: signal has shape {signal.shape}; expected (samples, {NUM_LEADS})")
    if not rate or rate <= 0:
        raise EcgDataError(f"{where}: invalid sampling rate {rate!r}")
    bad = ~np.isfinite(signal)
    if bad.any():
        sample, column = np.argwhere(bad)[0]
        raise EcgDataError(f"{where}: {int(bad.sum())} NaN or infinite samples, first at sample "
                           f"{sample} of lead {lead_names[column]}")
    signal = signal[:, lead_order(lead_names, where)]
    signal = resample(signal, rate, grid.sampling_rate)
    length = grid.length
    if len(signal) > length:
        start = (len(signal) - length) // 2 if grid.crop == "center" else 0
        signal = signal[start:start + length]
    elif len(signal) < length:
        if not grid.pad:
            raise EcgDataError(f"{where}: {len(signal) / grid.sampling_rate:.2f} s long; shorter "
                               f"than {grid.seconds} s and padding is off")
        signal = np.pad(signal, ((0, length - len(signal)), (0, 0)))
    return signal.astype(np.float32)


def stable_fold(key: str | int, folds: int = NUM_FOLDS) -> int:
    """Fold ``1..folds`` of a record or patient, from a hash of ``key``: the same on every
    machine and run (unlike Python's ``hash``), and unchanged when other records are added.
    Hash the patient identifier where there is one, so that a patient's records share a fold."""
    digest = hashlib.sha256(str(key).encode()).digest()
    return int.from_bytes(digest[:8], "big") % folds + 1


def check_on_error(on_error: str) -> None:
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")


def unreadable_listing(messages: Sequence[str], limit: int = 20) -> str:
    """The first ``limit`` error messages, one indented line each, and how many more."""
    listing = "\n".join(f"  {message}" for message in messages[:limit])
    more = f"\n  ... and {len(messages) - limit} more" if len(messages) > limit else ""
    return listing + more


def report_unreadable(messages: Sequence[str], what: str, on_error: str) -> None:
    """Raise one ``EcgDataError`` naming every unreadable record (``on_error="raise"``) or
    log them as a warning (``"skip"``). ``what``: e.g. ``"CinC record(s) under /data"``."""
    if not messages:
        return
    listing = unreadable_listing(list(messages))
    if on_error == "raise":
        raise EcgDataError(f"{len(messages)} {what} could not be read (on_error='skip' leaves "
                           f"them out):\n{listing}")
    logging.getLogger(__name__).warning("skipping %d unreadable %s:\n%s", len(messages), what, listing)


def multi_hot(label_sets: Sequence[frozenset[str] | set[str]], classes: Sequence[str]) -> np.ndarray:
    """float32 ``(N, K)``: 1 where record ``n`` carries class ``classes[k]``; names outside
    ``classes`` are ignored."""
    column = {name: k for k, name in enumerate(classes)}
    labels = np.zeros((len(label_sets), len(classes)), dtype=np.float32)
    for row, names in enumerate(label_sets):
        for name in names:
            if name in column:
                labels[row, column[name]] = 1.0
    return labels
