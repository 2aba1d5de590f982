"""``extract_features``: the clinical feature table of many 12-lead ECGs, cached on disk.

Per record: band-pass, one NeuroKit2 delineation on one fiducial lead
(:mod:`imn.features.delineate`), the interval features from its fiducial points; then per
block of records, all per-lead measurements at once (:mod:`imn.features.measure`).

A record whose delineation fails (no R peaks, NeuroKit2 raised, or no beat with a plausible
QRS) keeps its row: every feature is NaN, ``failed[i]`` is True and ``failure_reasons[i]``
says why; the count is logged. Tree models take the NaNs as they are; the other models of
:mod:`baselines.tabular` impute them with training-split medians.

Cache: keyed by the SHA-256 of the float32 signals plus the rate, the options and
``FEATURES_VERSION``, in ``<cache_dir>/features/<key>.npz`` (``cache_dir`` defaults to the
signal cache's base, ``$IMN_CACHE_DIR`` or ``~/.cache/imn``). The same ECGs give the same key
whichever reader produced them, so PTB-XL, synthetic and UK Biobank records all share it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from imn.data.dataset import LEADS, NUM_LEADS, EcgDataError, EcgDataset
from imn.data.ptbxl import default_cache_dir
from imn.features.delineate import (
    DEFAULT_FIDUCIAL_LEADS,
    FIDUCIAL_LEADS,
    FIDUCIALS,
    DelineationError,
    bandpass,
    delineate_best,
)
from imn.features.measure import (
    EXTREME_FEATURES,
    FEATURE_NAMES,
    GLOBAL_FEATURES,
    LEAD_FEATURES,
    global_features,
    lead_features,
)

logger = logging.getLogger(__name__)

# Bump when a feature's definition changes so stale caches are not read.
FEATURES_VERSION = 3  # 2: QRS bounds screened (onsets in the P wave), baseline window;
# 3: the beat that sets each max / min feature is kept (extreme_beats)
# Records measured together: bounds the (beats, W, 12) gather blocks to ~100 MB at 500 Hz.
_BLOCK = 128
# Records per delineation task (a worker process's unit of work; also the progress step).
_DELINEATE_CHUNK = 16


@dataclasses.dataclass
class FeatureTable:
    """Clinical features of ``N`` records.

    Attributes:
      values: float32 ``(N, F)``; columns ``names`` (``12 * len(LEAD_FEATURES)`` per-lead
        columns in ``LEADS`` order, then the ``global_*`` columns). NaN = not measurable.
      names: the ``F`` column names, ``<lead>_<feature>`` / ``global_<feature>``.
      failed: bool ``(N,)``, rows whose delineation failed (all NaN).
      failure_reasons: row -> why it failed.
      fiducials: float32 ``(N, B_max, len(FIDUCIALS))`` global fiducial points in samples
        (NaN padded): where each beat's waves are, for mapping features back onto the ECG.
      sampling_rate: Hz of the signals the points refer to.
      signal_length: samples per record (L).
      fiducial_leads: str ``(N,)``, the lead each record was delineated on ("" if failed).
      extreme_beats: int16 ``(N, 12, len(EXTREME_FEATURES))``, the beat (row of
        ``fiducials[i]``) that sets each per-lead max / min feature, -1 where it is NaN;
        None for a table built without it (its maps spread those features over every beat).
    """

    values: np.ndarray
    names: tuple[str, ...]
    failed: np.ndarray
    failure_reasons: dict[int, str]
    fiducials: np.ndarray
    sampling_rate: int
    signal_length: int
    fiducial_leads: np.ndarray
    extreme_beats: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.values)

    @property
    def n_failed(self) -> int:
        return int(self.failed.sum())

    def column(self, name: str) -> np.ndarray:
        """One feature ``(N,)`` by name."""
        try:
            return self.values[:, self.names.index(name)]
        except ValueError:
            raise KeyError(f"no feature {name!r}; names look like 'V2_ST60_mean' or "
                           f"'global_QRS_dur'") from None

    def per_lead(self) -> np.ndarray:
        """The per-lead block ``(N, 12, len(LEAD_FEATURES))``."""
        n_lead = NUM_LEADS * len(LEAD_FEATURES)
        return self.values[:, :n_lead].reshape(len(self), NUM_LEADS, len(LEAD_FEATURES))

    def subset(self, index) -> FeatureTable:
        index = np.asarray(index)
        rows = np.arange(len(self))[index]
        reasons = {new: self.failure_reasons[old] for new, old in enumerate(rows)
                   if old in self.failure_reasons}
        return dataclasses.replace(self, values=self.values[rows], failed=self.failed[rows],
                                   failure_reasons=reasons, fiducials=self.fiducials[rows],
                                   fiducial_leads=self.fiducial_leads[rows],
                                   extreme_beats=None if self.extreme_beats is None
                                   else self.extreme_beats[rows])


def _delineate_rows(signals: np.ndarray, rate: int, leads: tuple[str, ...]):
    """``(fiducials or None, lead used, failure reason or None)`` per record of a chunk."""
    out = []
    for record in bandpass(signals, rate):
        try:
            fid, lead = delineate_best(record, rate, leads)
            out.append((fid, lead, None))
        except DelineationError as err:
            out.append((None, "", str(err)))
    return out


def _delineate_all(signals: np.ndarray, rate: int, leads: tuple[str, ...], workers: int):
    """Yield ``(rows, results)`` chunk by chunk, in order."""
    n = len(signals)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    chunk = _DELINEATE_CHUNK
    starts = range(0, n, chunk)
    if workers == 1 or n <= chunk:
        for start in starts:
            yield range(start, min(start + chunk, n)), _delineate_rows(signals[start:start + chunk], rate, leads)
        return
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    # spawn, not fork: the parent may already run JAX's threads.
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(_delineate_rows, np.ascontiguousarray(signals[s:s + chunk]), rate, leads)
                   for s in starts]
        for start, future in zip(starts, futures):
            yield range(start, min(start + chunk, n)), future.result()


def _cache_key(signals: np.ndarray, sampling_rate: int, fiducial_leads: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps({"version": FEATURES_VERSION, "rate": sampling_rate,
                              "leads": fiducial_leads, "shape": signals.shape}).encode())
    digest.update(memoryview(np.ascontiguousarray(signals, np.float32)).cast("B"))
    return digest.hexdigest()[:24]


def _cache_path(key: str, cache_dir: str | os.PathLike | None) -> Path:
    base = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return base / "features" / f"{key}.npz"


def _save(path: Path, table: FeatureTable) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, scratch = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npz", dir=path.parent)
        os.close(handle)
        np.savez(scratch, values=table.values, names=np.asarray(table.names),
                 failed=table.failed, fiducials=table.fiducials,
                 reasons=json.dumps({str(k): v for k, v in table.failure_reasons.items()}),
                 sampling_rate=table.sampling_rate, signal_length=table.signal_length,
                 fiducial_leads=table.fiducial_leads.astype(str),
                 **({} if table.extreme_beats is None else {"extreme_beats": table.extreme_beats}))
        os.replace(scratch, path)  # appears complete or not at all
    except OSError as err:
        logger.warning("cannot write the feature cache %s: %s", path, err)


def _load(path: Path) -> FeatureTable | None:
    try:
        with np.load(path) as data:
            table = FeatureTable(
                values=data["values"], names=tuple(str(n) for n in data["names"]),
                failed=data["failed"], fiducials=data["fiducials"],
                failure_reasons={int(k): v for k, v in json.loads(str(data["reasons"])).items()},
                sampling_rate=int(data["sampling_rate"]), signal_length=int(data["signal_length"]),
                fiducial_leads=data["fiducial_leads"],
                extreme_beats=data["extreme_beats"] if "extreme_beats" in data.files else None,
            )
    except (OSError, ValueError, KeyError) as err:
        logger.warning("ignoring unreadable feature cache %s: %s", path, err)
        return None
    if table.names != FEATURE_NAMES:
        logger.warning("ignoring feature cache %s with other columns", path)
        return None
    return table


def extract_features(
    signals: np.ndarray,
    sampling_rate: int,
    *,
    fiducial_leads: tuple[str, ...] = DEFAULT_FIDUCIAL_LEADS,
    progress: bool = True,
    use_cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
    record_names: list[str] | None = None,
    workers: int = 1,
) -> FeatureTable:
    """Clinical features of ECGs ``(N, L, 12)`` in mV (leads in ``LEADS`` order), any rate.

    Args:
      signals: raw (not normalised) signals in mV; amplitudes and areas keep their units.
      sampling_rate: Hz (e.g. 100 or 500; intervals come out in ms either way).
      fiducial_leads: the leads to delineate on, in order of preference: the first whose
        delineation gives a plausible QRS in at least half the beats is kept (else the one
        with most such beats). Lead names or ``"pca"`` (first principal component).
      progress: show a tqdm bar (records/s, ETA, failures so far).
      use_cache / cache_dir: see the module docstring.
      record_names: names for the failure log (default ``row <i>``).
      workers: processes for the delineation (NeuroKit2 is single-threaded Python, ~all of
        the time); started with ``spawn``, so a calling script needs the
        ``if __name__ == "__main__":`` guard. Results do not depend on it.
    """
    signals = np.asarray(signals)
    if signals.ndim != 3 or signals.shape[2] != NUM_LEADS:
        raise EcgDataError(f"signals must be (N, L, {NUM_LEADS}) in LEADS order; got {signals.shape}")
    fiducial_leads = tuple(fiducial_leads)
    unknown = [lead for lead in fiducial_leads if lead not in FIDUCIAL_LEADS]
    if unknown or not fiducial_leads:
        raise ValueError(f"fiducial_leads must be a non-empty sequence of {FIDUCIAL_LEADS}; "
                         f"got {fiducial_leads!r}")
    if not np.all(np.isfinite(signals)):
        row = int(np.argwhere(~np.isfinite(signals))[0][0])
        raise EcgDataError(f"signals hold NaN/inf values (first in row {row})")
    n, length, _ = signals.shape
    path = None
    if use_cache:
        path = _cache_path(_cache_key(signals, sampling_rate, fiducial_leads), cache_dir)
        if path.exists():
            cached = _load(path)
            if cached is not None and len(cached) == n:
                logger.info("clinical features of %d records read from %s", n, path)
                return cached

    started = time.perf_counter()
    n_global = len(GLOBAL_FEATURES)
    per_lead = np.full((n, NUM_LEADS, len(LEAD_FEATURES)), np.nan, np.float32)
    extreme_beats = np.full((n, NUM_LEADS, len(EXTREME_FEATURES)), -1, np.int16)
    global_values = np.full((n, n_global), np.nan, np.float32)
    tables: list[np.ndarray | None] = [None] * n
    lead_used = np.full(n, "", dtype=object)
    reasons: dict[int, str] = {}
    bar = tqdm(total=n, desc=f"clinical features {sampling_rate} Hz", unit="rec",
               disable=not progress)
    try:
        # Pass 1: delineation (NeuroKit2, per record; ~all the time), in worker processes
        # if asked. Pass 2: measurements, vectorised over a block of records at a time.
        for rows, results in _delineate_all(signals, sampling_rate, fiducial_leads, workers):
            for row, (fid, lead, reason) in zip(rows, results):
                tables[row], lead_used[row] = fid, lead
                if reason is not None:
                    reasons[row] = reason
                else:
                    global_values[row] = global_features(fid, sampling_rate)
            bar.update(len(rows))
            if reasons:
                bar.set_postfix(failed=len(reasons), refresh=False)
        for start in range(0, n, _BLOCK):
            filtered = bandpass(signals[start:start + _BLOCK], sampling_rate)
            block = slice(start, start + len(filtered))
            per_lead[block], extreme_beats[block] = lead_features(
                filtered, tables[block], sampling_rate, with_extreme_beats=True)
    finally:
        bar.close()

    max_beats = max([len(t) for t in tables if t is not None], default=0)
    fiducials = np.full((n, max_beats, len(FIDUCIALS)), np.nan, np.float32)
    for row, table in enumerate(tables):
        if table is not None:
            fiducials[row, :len(table)] = table
    failed = np.zeros(n, bool)
    failed[list(reasons)] = True
    values = np.concatenate([per_lead.reshape(n, -1), global_values], axis=1)
    result = FeatureTable(values=values, names=FEATURE_NAMES, failed=failed,
                          failure_reasons=reasons, fiducials=fiducials,
                          sampling_rate=sampling_rate, signal_length=length,
                          fiducial_leads=lead_used.astype(str), extreme_beats=extreme_beats)
    seconds = time.perf_counter() - started
    logger.info("clinical features of %d records at %d Hz in %.1f s (%.1f ms/record)",
                n, sampling_rate, seconds, 1000 * seconds / max(n, 1))
    if reasons:
        names = record_names or [f"row {i}" for i in range(n)]
        listing = "; ".join(f"{names[i]}: {why}" for i, why in list(reasons.items())[:10])
        logger.warning("delineation failed for %d of %d records (their features are NaN): %s%s",
                       len(reasons), n, listing, " ..." if len(reasons) > 10 else "")
    if path is not None:
        _save(path, result)
    return result


def dataset_features(dataset: EcgDataset, **kwargs) -> FeatureTable:
    """:func:`extract_features` of an :class:`EcgDataset` (failures named by ecg_id)."""
    names = [f"ecg_id {i}" for i in dataset.ecg_ids]
    return extract_features(dataset.signals, dataset.sampling_rate, record_names=names, **kwargs)


__all__ = ["FEATURES_VERSION", "FeatureTable", "dataset_features", "extract_features", "LEADS"]
