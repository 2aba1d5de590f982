"""Bring records of any source onto the project's fixed grid: 12 leads in ``LEADS`` order,
one sampling rate, one length, float32 mV; and give records without PTB-XL's ``strat_fold``
a stable fold.

Shared by the readers of sources whose records vary (CinC/CPSC 2018: 6-60 s at 257-1000 Hz;
MIMIC-IV-ECG: 10 s at 500 Hz), so that every reader returns an :class:`EcgDataset` the
training and explanation code can use unchanged.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import logging
import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

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
    or rejected (``pad=False``).

    Every change a record needs to fit the grid (resampling, a crop, padding) and every
    assumption a reader makes for it (:meth:`note`) is counted in ``adaptations`` (one grid
    per load), so the load can report them; ``strict=True`` makes each one an error naming
    the record instead.
    """

    sampling_rate: int = 100
    seconds: float = RECORD_SECONDS
    crop: str = "center"
    pad: bool = True
    strict: bool = False
    adaptations: collections.Counter = dataclasses.field(default_factory=collections.Counter,
                                                         compare=False, repr=False)

    def __post_init__(self) -> None:
        rate = self.sampling_rate
        if isinstance(rate, bool) or int(rate) != rate or rate <= 0:
            raise EcgDataError(f"sampling_rate must be a positive integer, got {rate!r}")
        object.__setattr__(self, "sampling_rate", int(rate))  # 100.0 -> 100: an int in datasets
        if self.seconds <= 0:
            raise ValueError(f"seconds must be positive, got {self.seconds!r}")
        if self.crop not in CROP_MODES:
            raise ValueError(f"crop must be one of {CROP_MODES}, got {self.crop!r}")

    @property
    def length(self) -> int:
        """Samples per conformed record, ``L``."""
        return round(self.sampling_rate * self.seconds)

    def note(self, adaptation: str, where: str) -> None:
        """Count one record adapted by ``adaptation`` (or, with ``strict``, refuse it)."""
        if self.strict:
            raise EcgDataError(f"{where}: {adaptation}; strict loading refuses adapted records")
        self.adaptations[adaptation] += 1

    def log_adaptations(self, what: str) -> None:
        """Say once per load how many records were adapted, and how."""
        if self.adaptations:
            logging.getLogger("imn").warning("%s: records adapted to %d Hz, %g s: %s", what,
                                             self.sampling_rate, self.seconds,
                                             "; ".join(f"{k} ({n})" for k, n in sorted(self.adaptations.items())))


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
    if not np.isclose(rate, grid.sampling_rate):
        grid.note(f"resampled from {rate:g} Hz", where)
    signal = resample(signal, rate, grid.sampling_rate)
    length = grid.length
    if len(signal) > length:
        grid.note(f"cropped ({grid.crop}) from longer records", where)
        start = (len(signal) - length) // 2 if grid.crop == "center" else 0
        signal = signal[start:start + length]
    elif len(signal) < length:
        if not grid.pad:
            raise EcgDataError(f"{where}: {len(signal) / grid.sampling_rate:.2f} s long; shorter "
                               f"than {grid.seconds} s and padding is off")
        grid.note("zero-padded at the end from shorter records", where)
        signal = np.pad(signal, ((0, length - len(signal)), (0, 0)))
    return signal.astype(np.float32)


# Physical units -> factor to mV (a header that gives none means mV, the WFDB default).
_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3}


def read_wfdb(record_path: str | os.PathLike, grid: Conform, where: str) -> np.ndarray:
    """One WFDB record (``.hea`` + its signal file, e.g. ``.dat`` or MATLAB v4 ``.mat``) on
    ``grid``: float32 ``(grid.length, 12)`` in mV, ``LEADS`` order, leads matched by the
    header's names and converted from the header's units.

    Raises ``EcgDataError`` starting with ``where`` for a missing or unreadable file (with the
    size mismatch when a 16-bit signal file is truncated), a missing or zero ADC gain, unknown
    units, a wrong shape, and everything :func:`conform_signal` checks.
    """
    import wfdb

    try:
        record = wfdb.rdrecord(os.fspath(record_path), return_res=64)
    except FileNotFoundError as err:
        raise EcgDataError(f"{where}: file missing: {err.filename or err}") from None
    except Exception as err:  # noqa: BLE001 (wfdb raises bare ValueErrors etc. on corrupt files)
        raise EcgDataError(f"{where}: wfdb cannot read it: {explain_wfdb_failure(record_path, err)}") \
            from None
    names = list(record.sig_name or [])
    problem = header_gain_problem(record_path, names)
    if problem:
        raise EcgDataError(f"{where}: {problem}")
    signal = record.p_signal
    if signal is None or signal.ndim != 2 or signal.shape[1] != len(names):
        shape = None if signal is None else signal.shape
        raise EcgDataError(f"{where}: signal has shape {shape} for {len(names)} header leads")
    units = [str(u or "mV").strip().lower() for u in (record.units or ["mV"] * len(names))]
    unknown = sorted({u for u in units if u not in _TO_MV})
    if unknown:
        raise EcgDataError(f"{where}: unknown physical units {unknown}; expected mV, uV or V")
    scale = np.asarray([_TO_MV[u] for u in units])
    return conform_signal(signal * scale, float(record.fs), names, grid, where)


def _header_lines(record_path: str | os.PathLike) -> list[str]:
    """The record line and signal lines of ``record_path.hea`` (comments and blanks left out)."""
    text = Path(f"{os.fspath(record_path)}.hea").read_text(errors="replace")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def header_gain_problem(record_path: str | os.PathLike, lead_names: Sequence[str]) -> str | None:
    """What is wrong with the ADC gains the header declares, or None. wfdb replaces a gain
    that is missing, 0 or not a number by its default of 200 without a word, which scales the
    signal wrongly, so the header's own fields are read here."""
    signal_lines = _header_lines(record_path)[1:1 + len(lead_names)]
    for name, line in zip(lead_names, signal_lines):
        fields = line.split()
        declared = fields[2].split("(")[0].split("/")[0] if len(fields) > 2 else ""
        try:
            gain = float(declared)
        except ValueError:
            gain = 0.0
        if not np.isfinite(gain) or gain == 0:
            shown = fields[2] if len(fields) > 2 else "no gain field"
            return f"lead {name} has no valid ADC gain ({shown!r}; wfdb would assume 200)"
    return None


def explain_wfdb_failure(record_path: str | os.PathLike, err: Exception) -> str:
    """A clearer reason than wfdb's ("cannot reshape array", "Samples were not loaded
    correctly") where one is found: a 16-bit signal file whose size does not match the
    header's length. Otherwise wfdb's own error."""
    import wfdb

    try:
        lines = _header_lines(record_path)
        if not lines:
            return f"header {os.fspath(record_path)}.hea is empty"
        declared = int(lines[0].split()[1]) if len(lines[0].split()) > 1 else 0
        if len(lines) - 1 < declared:
            return (f"header {os.fspath(record_path)}.hea declares {declared} signals but has "
                    f"{len(lines) - 1} signal line(s)")
    except Exception:  # noqa: BLE001, S110 (a header this broken: wfdb's error below)
        pass
    try:
        info = wfdb.rdheader(os.fspath(record_path))
        files = set(info.file_name or [])
        if len(files) == 1 and all(str(f).startswith("16") for f in info.fmt):
            data = Path(record_path).parent / files.pop()
            offset = int((info.byte_offset or [0])[0] or 0)
            expected = offset + 2 * info.n_sig * info.sig_len
            actual = data.stat().st_size
            if actual != expected:
                samples = (actual - offset) / (2 * info.n_sig)
                return (f"signal file {data} has {actual} bytes, expected {expected} "
                        f"(truncated?): it holds {samples:g} samples per lead, the header says "
                        f"{info.sig_len}")
    except Exception:  # noqa: BLE001, S110 (the original error is the one to report)
        pass
    return f"{type(err).__name__}: {err}"


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
