"""PTB-XL in PhysioNet's layout: records via ``wfdb``, benchmark labels, folds, and a cache.

The benchmark tasks follow Strodthoff et al. (2021), "Deep learning for ECG analysis:
benchmarks and insights from PTB-XL" (helme/ecg_ptbxl_benchmarking, ``utils.py``:
``compute_label_aggregations`` and ``select_data``). Likelihoods in ``scp_codes`` are
ignored: every statement a record lists counts.

==================  ======================================================================
task                labels of a record
==================  ======================================================================
``diagnostic``      its statements with ``diagnostic == 1`` in ``scp_statements.csv``
``subdiagnostic``   the ``diagnostic_subclass`` of those statements
``superdiagnostic`` the ``diagnostic_class`` of those statements (NORM, MI, STTC, CD, HYP)
``form``            its statements with ``form == 1``
``rhythm``          its statements with ``rhythm == 1``
``all``             all its statements
``norm_vs_X``       (X in MI, STTC, CD, HYP; the IMN paper's binary tasks) the record is
                    kept iff exactly one of NORM and X is among its diagnostic
                    superclasses (others may be present too); one class ``X``, label 1
                    iff X is present
==================  ======================================================================

Records without any label of the task are left out. Classes are sorted alphabetically (the
order of sklearn's ``MultiLabelBinarizer`` in the benchmark).

Cache: the first read at a sampling rate converts *every* record of the database (whatever
the task) into ``int16`` digital samples plus per-record, per-lead gain and baseline. PTB-XL
is stored as 16-bit samples (``fmt 16``), so this is lossless: the physical values are
recomputed with exactly the arithmetic ``wfdb`` uses, bit for bit, at half the size of
float32. Later reads memory-map the arrays and convert only the task's rows. The cache is
rebuilt when ``ptbxl_database.csv`` changes (size or modification time); after editing record
files in place, delete the folder given by :func:`cache_folder` or pass ``use_cache=False``.
"""

from __future__ import annotations

import ast
import dataclasses
import errno
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
import wfdb
from tqdm.auto import tqdm

from imn.data.cache_build import build_lock, no_space, remove_stale_partials, reserve
from imn.data.conform import explain_wfdb_failure, header_gain_problem, multi_hot
from imn.data.dataset import (
    LEADS,
    NUM_LEADS,
    RECORD_SECONDS,
    SUPPORTED_SAMPLING_RATES,
    EcgDataError,
    EcgDataset,
    canonical_lead_name,
)

logger = logging.getLogger(__name__)

MULTILABEL_TASKS: tuple[str, ...] = (
    "superdiagnostic", "subdiagnostic", "diagnostic", "form", "rhythm", "all",
)
# The IMN paper's binary tasks: task name -> the diagnostic superclass contrasted with NORM.
BINARY_TASKS: dict[str, str] = {
    "norm_vs_mi": "MI",
    "norm_vs_sttc": "STTC",
    "norm_vs_cd": "CD",
    "norm_vs_hyp": "HYP",
}
TASKS: tuple[str, ...] = MULTILABEL_TASKS + tuple(BINARY_TASKS)

DATABASE_CSV = "ptbxl_database.csv"
STATEMENTS_CSV = "scp_statements.csv"
# Column holding each record's path (relative to the root, without extension) per rate.
_FILENAME_COLUMN = {100: "filename_lr", 500: "filename_hr"}
_REQUIRED_COLUMNS = ("scp_codes", "strat_fold", "patient_id", "age", "sex")
# Bump when the cache layout changes so old caches are rebuilt rather than misread.
# 2: the key covers every record file read (size and mtime, or content hashes on request).
_CACHE_VERSION = 2
# How a cache is checked against the record files: 'stat' (size and mtime of every .hea and
# .dat, about 0.2 s for all 21,799 records) or 'sha256' (their contents, a full read).
CACHE_CHECKS = ("stat", "sha256")
# Records per task handed to a worker process; amortises inter-process transfer.
_CHUNK = 64
# Below this many records, starting worker processes costs more than it saves.
_MIN_RECORDS_FOR_PROCESSES = 256
# Rows converted to float32 at a time (bounds the float64 temporary to ~250 MB at 500 Hz).
_CONVERT_ROWS = 512


# ======================================================================== public entry point
def load_ptbxl(
    root: str | os.PathLike,
    task: str,
    sampling_rate: int = 100,
    *,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    on_error: str = "raise",
    progress: bool = False,
    min_count: int = 0,
    ecg_ids: Sequence[int] | None = None,
    workers: int | None = None,
    cache_check: str | None = None,
) -> EcgDataset:
    """Load PTB-XL (or a slice of it in the same layout) for one task.

    Args:
      root: folder holding ``ptbxl_database.csv``, ``scp_statements.csv``, ``records100/``
        and/or ``records500/``.
      task: one of ``TASKS``.
      sampling_rate: 100 (``L = 1000``) or 500 (``L = 5000``).
      cache_dir: base folder of the cache; default ``$IMN_CACHE_DIR`` or ``~/.cache/imn``.
        The cache of this database lives in a subfolder keyed by the absolute ``root`` and
        the rate, so a read-only ``root`` is fine.
      use_cache: read from / build the cache. ``False`` reads the task's records with wfdb.
      on_error: ``"raise"``: an unreadable record raises ``EcgDataError`` naming every bad
        record of the task; ``"skip"``: they are left out, listed in ``dataset.skipped`` and
        logged as a warning.
      progress: show a tqdm bar while records are read.
      min_count: drop classes carried by fewer records than this (multi-label tasks only;
        the benchmark keeps every class that occurs, i.e. ``min_count=0``). Counted over the
        records returned, after ``ecg_ids`` and skipped records are taken out.
      ecg_ids: only these records (e.g. a quick subset). Without a cache this reads only
        them and does not build one.
      workers: worker processes for a cold read (default 1; used from 256 records up).
        The read is CPU-bound header parsing inside wfdb (~7 ms a record, ~150 s for all
        21,799), so threads do not help but processes can on a many-core machine. Workers
        are spawned, so a calling script needs the ``if __name__ == "__main__":`` guard.
      cache_check: how the cache is matched to the record files (:data:`CACHE_CHECKS`):
        ``"stat"`` compares the size and modification time of every ``.hea``/``.dat`` read,
        so a repaired or replaced record rebuilds the cache; ``"sha256"`` compares their
        contents (a full read of the tree). Default ``$IMN_CACHE_CHECK``, else ``"stat"``.

    Returns:
      An ``EcgDataset`` with float32 ``signals (N, L, 12)`` in mV, leads in ``LEADS`` order,
      float32 multi-hot ``labels (N, K)``, ``classes``, ``ecg_ids``, ``patient_ids`` (-1 if
      unknown), ``folds`` (``strat_fold``), ``age`` (NaN if unknown; PTB-XL codes ages over
      89 as 300), ``sex`` (0 male, 1 female, -1 unknown), sorted by ``ecg_id``.

    Raises:
      EcgDataError: missing files, an unknown task or rate, unreadable records.
    """
    if task not in TASKS:
        raise EcgDataError(f"unknown PTB-XL task {task!r}; valid tasks: {', '.join(TASKS)}")
    if sampling_rate not in SUPPORTED_SAMPLING_RATES:
        raise EcgDataError(
            f"unsupported PTB-XL sampling rate {sampling_rate!r}; "
            f"choose one of {SUPPORTED_SAMPLING_RATES} Hz"
        )
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise EcgDataError(f"PTB-XL root {root} does not exist or is not a folder")

    database = read_database(root, sampling_rate)
    statements = read_statements(root)
    _check_record_folders(root, database[_FILENAME_COLUMN[sampling_rate]], sampling_rate)
    if ecg_ids is not None:
        wanted = np.unique(np.asarray(ecg_ids, dtype=np.int64))
        unknown = np.setdiff1d(wanted, database.index.to_numpy())
        if len(unknown):
            raise EcgDataError(
                f"ecg_ids not in {root / DATABASE_CSV}: {unknown[:20].tolist()}"
            )
        selection = database.loc[wanted]
    else:
        selection = database

    _check_statement_codes(selection["scp_codes"], statements, root)
    label_sets = task_label_sets(selection["scp_codes"], statements, task)
    if task in BINARY_TASKS:
        member = binary_task_members(selection["scp_codes"], statements, task)
    else:
        member = np.array([len(s) > 0 for s in label_sets], dtype=bool)
    candidates = selection.index.to_numpy()[member]

    if use_cache:
        table = _cached_signals(
            root, sampling_rate, database, cache_dir,
            build_if_missing=ecg_ids is None, progress=progress, workers=workers,
            cache_check=_cache_check(cache_check),
        )
    else:
        table = None
    if table is None:
        table = _read_signal_table(
            root, sampling_rate, database.loc[candidates], progress=progress, workers=workers,
        )

    bad = [int(i) for i in candidates if int(i) in table.errors]
    if bad:
        listing = "\n".join(f"  {table.errors[i]}" for i in bad[:20])
        more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
        note = f"\n(from the cache {table.cache_folder}; delete it or pass use_cache=False " \
               f"to re-read)" if table.cache_folder else ""
        if on_error == "raise":
            raise EcgDataError(
                f"{len(bad)} PTB-XL record(s) of task {task!r} at {sampling_rate} Hz could not "
                f"be read (on_error='skip' leaves them out):\n{listing}{more}{note}"
            )
        logger.warning(
            "skipping %d unreadable PTB-XL record(s):\n%s%s", len(bad), listing, more,
        )
    keep = member & ~np.isin(selection.index.to_numpy(), bad)
    kept_labels = [s for s, k in zip(label_sets, keep) if k]
    kept = selection[keep]

    if task in BINARY_TASKS:
        classes = (BINARY_TASKS[task],)
    else:
        classes = _frequent_classes(kept_labels, min_count)
        # Records whose only classes were dropped carry no label of the task any more.
        has_label = np.array([bool(s & set(classes)) for s in kept_labels], dtype=bool)
        kept = kept[has_label]
        kept_labels = [s for s, h in zip(kept_labels, has_label) if h]

    if not len(kept):
        raise EcgDataError(
            f"no readable record of {root} carries a label of task {task!r} at {sampling_rate} Hz"
            + (f" among the {len(selection)} ecg_ids asked for" if ecg_ids is not None else "")
            + (f" (min_count {min_count})" if task not in BINARY_TASKS else ""))
    labels = multi_hot(kept_labels, classes)
    rows = table.rows(kept.index.to_numpy())
    signals = table.physical(rows)
    return EcgDataset(
        signals=signals,
        labels=labels,
        classes=classes,
        ecg_ids=kept.index.to_numpy().astype(np.int64),
        patient_ids=_int_or(kept["patient_id"], -1, np.int64),
        folds=kept["strat_fold"].to_numpy().astype(np.int64),
        age=kept["age"].to_numpy(dtype=np.float32, na_value=np.nan),
        sex=_int_or(kept["sex"], -1, np.int8),
        sampling_rate=sampling_rate,
        task=task,
        skipped=tuple(bad) if on_error == "skip" else (),
    )


# ======================================================================== metadata and labels
def read_database(root: str | os.PathLike, sampling_rate: int = 100) -> pd.DataFrame:
    """``ptbxl_database.csv`` indexed by ``ecg_id`` (sorted), ``scp_codes`` parsed to dicts."""
    path = Path(root) / DATABASE_CSV
    if not path.is_file():
        raise EcgDataError(f"PTB-XL metadata file {path} is missing")
    try:
        frame = pd.read_csv(path, index_col="ecg_id")
    except (ValueError, pd.errors.ParserError) as err:
        raise EcgDataError(f"cannot parse {path}: {err}") from err
    needed = _REQUIRED_COLUMNS + (_FILENAME_COLUMN[sampling_rate],)
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise EcgDataError(f"{path} lacks the column(s) {missing}")
    frame = _numeric_columns(frame, path)
    if frame.index.has_duplicates:
        dups = frame.index[frame.index.duplicated()].unique()[:10].tolist()
        raise EcgDataError(f"{path} lists some ecg_id more than once: {dups}")
    if frame["strat_fold"].isna().any():
        ids = frame.index[frame["strat_fold"].isna()][:10].tolist()
        raise EcgDataError(f"{path}: strat_fold is missing for ecg_id {ids}")
    _check_values(frame, "strat_fold", lambda v: (v == np.round(v)) & (v >= 1) & (v <= 10),
                  "an integer 1-10", path)
    _check_values(frame, "sex", lambda v: v.isna() | v.isin([0, 1]), "0, 1 or empty", path)

    def parse(ecg_id: int, text: object) -> dict[str, float]:
        try:
            codes = ast.literal_eval(text) if isinstance(text, str) else None
        except (ValueError, SyntaxError):
            codes = None
        if not isinstance(codes, dict):
            raise EcgDataError(f"{path}: ecg_id {ecg_id} has unparsable scp_codes {text!r}")
        return codes

    frame = frame.sort_index()
    frame.index = frame.index.astype(np.int64)
    frame["scp_codes"] = [parse(i, t) for i, t in zip(frame.index, frame["scp_codes"])]
    return frame


def _numeric_columns(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """``ecg_id`` and the numeric metadata columns as numbers; a cell that is not a number
    (an empty cell is a missing value, allowed except in ``ecg_id``) is an error naming it."""
    ids = pd.to_numeric(pd.Series(frame.index, dtype=object), errors="coerce")
    if ids.isna().any() or (ids != np.round(ids)).any():
        bad = frame.index[(ids.isna() | (ids != np.round(ids))).to_numpy()][:10].tolist()
        raise EcgDataError(f"{path}: ecg_id must be an integer; found {bad}")
    frame = frame.copy()
    frame.index = pd.Index(ids.to_numpy(), name=frame.index.name)
    for column in ("strat_fold", "patient_id", "age", "sex"):
        values = pd.to_numeric(frame[column], errors="coerce")
        broken = values.isna() & frame[column].notna()
        if broken.any():
            examples = ", ".join(f"ecg_id {i}: {v!r}" for i, v in
                                 frame.loc[broken, column].head(5).items())
            raise EcgDataError(f"{path}: column {column} must be numeric; found {examples}")
        frame[column] = values
    return frame


def _check_values(frame: pd.DataFrame, column: str, valid, expected: str, path: Path) -> None:
    bad = frame.loc[~valid(frame[column]), column]
    if len(bad):
        examples = ", ".join(f"ecg_id {i}: {v}" for i, v in bad.head(5).items())
        raise EcgDataError(f"{path}: {column} must be {expected}; found {examples}"
                           + (f" and {len(bad) - 5} more" if len(bad) > 5 else ""))


def read_statements(root: str | os.PathLike) -> pd.DataFrame:
    """``scp_statements.csv`` indexed by statement code."""
    path = Path(root) / STATEMENTS_CSV
    if not path.is_file():
        raise EcgDataError(f"PTB-XL statement table {path} is missing")
    try:
        frame = pd.read_csv(path, index_col=0)
    except (ValueError, pd.errors.ParserError) as err:
        raise EcgDataError(f"cannot parse {path}: {err}") from err
    needed = ("diagnostic", "form", "rhythm", "diagnostic_class", "diagnostic_subclass")
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise EcgDataError(f"{path} lacks the column(s) {missing}")
    return frame


def _statement_maps(statements: pd.DataFrame) -> dict[str, dict[str, str]]:
    """Per multi-label task, statement code -> the class it counts as (absent: ignored)."""

    def flagged(column: str) -> pd.DataFrame:
        return statements[statements[column] == 1]

    diagnostic = flagged("diagnostic")

    def mapping(codes: Iterable[str], classes: Iterable[object]) -> dict[str, str]:
        # A statement whose class is blank counts for nothing (as in the benchmark).
        return {str(c): str(k) for c, k in zip(codes, classes) if isinstance(k, str) and k}

    return {
        "diagnostic": {str(c): str(c) for c in diagnostic.index},
        "subdiagnostic": mapping(diagnostic.index, diagnostic["diagnostic_subclass"]),
        "superdiagnostic": mapping(diagnostic.index, diagnostic["diagnostic_class"]),
        "form": {str(c): str(c) for c in flagged("form").index},
        "rhythm": {str(c): str(c) for c in flagged("rhythm").index},
    }


def task_label_sets(
    scp_codes: Iterable[dict[str, float]], statements: pd.DataFrame, task: str
) -> list[frozenset[str]]:
    """Each record's set of class names for ``task`` (before any ``min_count`` filter).

    For a binary task the set is ``{X}`` when X is among the record's superclasses, else
    empty; membership of the task is :func:`binary_task_members`.
    """
    if task not in TASKS:
        raise EcgDataError(f"unknown PTB-XL task {task!r}; valid tasks: {', '.join(TASKS)}")
    if task == "all":
        return [frozenset(codes) for codes in scp_codes]
    if task in BINARY_TASKS:
        target = BINARY_TASKS[task]
        supers = task_label_sets(scp_codes, statements, "superdiagnostic")
        return [frozenset({target}) & s for s in supers]
    mapping = _statement_maps(statements)[task]
    return [frozenset(mapping[c] for c in codes if c in mapping) for codes in scp_codes]


def binary_task_members(
    scp_codes: Iterable[dict[str, float]], statements: pd.DataFrame, task: str
) -> np.ndarray:
    """bool ``(N,)``: exactly one of NORM and X is among the record's diagnostic superclasses."""
    target = BINARY_TASKS[task]
    supers = task_label_sets(scp_codes, statements, "superdiagnostic")
    return np.array([("NORM" in s) != (target in s) for s in supers], dtype=bool)


def _check_record_folders(root: Path, filenames: pd.Series, sampling_rate: int) -> None:
    """The top folders the records of this rate live in (``records100/``, ``records500/``)
    must exist: a download of one rate only should say so, not list every record as missing."""
    tops = sorted({str(name).split("/")[0] for name in filenames.dropna()})
    absent = [top for top in tops if not (root / top).is_dir()]
    if absent:
        raise EcgDataError(f"no {', '.join(t + '/' for t in absent)} folder under {root}: the "
                           f"{sampling_rate} Hz records are not there (`imn data download ptb-xl --dest "
                           f"{root} --sampling-rate {sampling_rate}` fetches them)")


def _check_statement_codes(scp_codes: pd.Series, statements: pd.DataFrame, root: Path) -> None:
    """Every statement a record carries must be in ``scp_statements.csv``: an unknown one
    would be dropped from the diagnostic tasks and become a class of its own in ``all``."""
    known = set(map(str, statements.index))
    unknown = [(ecg_id, sorted(set(codes) - known)) for ecg_id, codes in scp_codes.items()
               if not set(codes) <= known]
    if unknown:
        listing = "; ".join(f"ecg_id {i}: {codes}" for i, codes in unknown[:5])
        more = f" and {len(unknown) - 5} more records" if len(unknown) > 5 else ""
        raise EcgDataError(f"{root / DATABASE_CSV}: statement(s) not in "
                           f"{root / STATEMENTS_CSV}: {listing}{more}")


def _frequent_classes(label_sets: Sequence[frozenset[str]], min_count: int) -> tuple[str, ...]:
    counts: dict[str, int] = {}
    for labels in label_sets:
        for name in labels:
            counts[name] = counts.get(name, 0) + 1
    return tuple(sorted(name for name, n in counts.items() if n >= max(min_count, 1)))


def _int_or(column: pd.Series, missing: int, dtype: type) -> np.ndarray:
    values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.where(np.isnan(values), missing, values).astype(dtype)


# ======================================================================== reading records
class _RecordError(Exception):
    """One unreadable record; the message names it and says what is wrong."""


def read_record(root: str | os.PathLike, relative_path: str, sampling_rate: int, ecg_id: int):
    """Read one record with wfdb and check it.

    Returns:
      ``(digital, gain, baseline)``: int16 ``(L, 12)`` samples, float64 ``(12,)`` ADC gain
      per lead and int64 ``(12,)`` baseline; ``(digital - baseline) / gain`` in float64 is
      wfdb's ``p_signal``.
    Raises:
      EcgDataError naming the ecg_id, the record path and the problem.
    """
    try:
        return _read_record(str(root), relative_path, sampling_rate, ecg_id)
    except _RecordError as err:
        raise EcgDataError(str(err)) from None


def _read_record(root: str, relative_path: str, sampling_rate: int, ecg_id: int):
    record_path = os.path.join(root, relative_path)
    where = f"ecg_id {ecg_id} ({record_path})"
    try:
        record = wfdb.rdrecord(record_path, physical=False, return_res=64)
    except FileNotFoundError as err:
        raise _RecordError(f"{where}: file missing: {err.filename or err}") from None
    except Exception as err:  # wfdb raises bare ValueErrors etc. on corrupt files
        raise _RecordError(f"{where}: wfdb cannot read it: {explain_wfdb_failure(record_path, err)}") \
            from None

    names = [canonical_lead_name(n) for n in (record.sig_name or [])]
    if tuple(names) != LEADS:
        raise _RecordError(
            f"{where}: header has {len(names)} leads {names}; expected the 12 leads {list(LEADS)}"
        )
    problem = header_gain_problem(record_path, names)
    if problem:
        raise _RecordError(f"{where}: {problem}")
    # A signal line without units means mV (the WFDB default, as in imn.data.conform).
    units = [str(u or "mV").strip() for u in (record.units or ["mV"] * NUM_LEADS)]
    if any(u != "mV" for u in units):
        raise _RecordError(f"{where}: header units {units}; expected mV for every lead")
    if not math.isclose(float(record.fs), sampling_rate):
        raise _RecordError(
            f"{where}: header sampling rate is {record.fs} Hz; expected {sampling_rate} Hz"
        )
    length = RECORD_SECONDS * sampling_rate
    digital = record.d_signal
    if record.sig_len != length or digital is None or digital.shape != (length, NUM_LEADS):
        shape = None if digital is None else digital.shape
        raise _RecordError(
            f"{where}: signal is {shape} (header sig_len {record.sig_len}); expected "
            f"({length}, {NUM_LEADS}) = {RECORD_SECONDS} s at {sampling_rate} Hz"
        )
    # wfdb's own conversion marks the format's invalid-sample value as NaN.
    physical = record.dac(return_res=64)
    if np.isnan(physical).any():
        sample, lead = np.argwhere(np.isnan(physical))[0]
        count = int(np.isnan(physical).sum())
        raise _RecordError(
            f"{where}: {count} invalid (NaN) samples, first at sample {sample} of lead "
            f"{LEADS[lead]}"
        )
    info = np.iinfo(np.int16)
    if digital.min() < info.min or digital.max() > info.max:
        raise _RecordError(f"{where}: digital samples exceed the 16-bit range (fmt {record.fmt})")
    gain = np.asarray(record.adc_gain, dtype=np.float64)
    if not np.all(np.isfinite(gain)) or np.any(gain == 0):
        raise _RecordError(f"{where}: invalid ADC gain {record.adc_gain}")
    baseline = np.asarray(record.baseline, dtype=np.int64)
    return digital.astype(np.int16), gain, baseline


def _read_chunk(root: str, jobs: Sequence[tuple[int, str]], sampling_rate: int):
    """Read several records (run in a worker process). Errors are returned, not raised."""
    length = RECORD_SECONDS * sampling_rate
    digital = np.zeros((len(jobs), length, NUM_LEADS), dtype=np.int16)
    gain = np.ones((len(jobs), NUM_LEADS), dtype=np.float64)
    baseline = np.zeros((len(jobs), NUM_LEADS), dtype=np.int64)
    errors: dict[int, str] = {}
    for row, (ecg_id, relative_path) in enumerate(jobs):
        try:
            digital[row], gain[row], baseline[row] = _read_record(
                root, relative_path, sampling_rate, ecg_id
            )
        except _RecordError as err:
            errors[ecg_id] = str(err)
    return digital, gain, baseline, errors


@dataclasses.dataclass
class _SignalTable:
    """Digital samples of many records, by row; ``errors`` maps ecg_id -> message."""

    ecg_ids: np.ndarray  # int64 (n,), sorted
    digital: np.ndarray  # int16 (n, L, 12), possibly memory-mapped
    gain: np.ndarray  # float64 (n, 12)
    baseline: np.ndarray  # int64 (n, 12)
    errors: dict[int, str]
    cache_folder: Path | None = None

    def rows(self, ecg_ids: np.ndarray) -> np.ndarray:
        rows = np.searchsorted(self.ecg_ids, ecg_ids)
        if len(ecg_ids) and (rows.max() >= len(self.ecg_ids) or
                             np.any(self.ecg_ids[rows] != ecg_ids)):
            raise EcgDataError("internal error: record missing from the signal table")
        return rows

    def physical(self, rows: np.ndarray) -> np.ndarray:
        """float32 ``(len(rows), L, 12)`` in mV, equal to ``float32(wfdb p_signal)``.

        The float64 arithmetic is wfdb's (``(d - baseline) / gain``), so the float32 cast
        gives bit-identical values. Converted in blocks: a memory-mapped table is only read
        for these rows and the float64 temporary stays small.
        """
        out = np.empty((len(rows),) + self.digital.shape[1:], dtype=np.float32)
        for start in range(0, len(rows), _CONVERT_ROWS):
            block = rows[start:start + _CONVERT_ROWS]
            values = self.digital[block].astype(np.float64)
            values -= self.baseline[block][:, None, :]
            values /= self.gain[block][:, None, :]
            out[start:start + len(block)] = values
        return out


def _resolve_workers(workers: int | None, n_records: int) -> int:
    if workers is None:
        return 1
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    # A pool costs seconds to start (each worker imports numpy, pandas and wfdb).
    return 1 if n_records < _MIN_RECORDS_FOR_PROCESSES else min(workers, -(-n_records // _CHUNK))


def _fill_table(
    root: Path,
    sampling_rate: int,
    records: pd.DataFrame,
    digital: np.ndarray,
    gain: np.ndarray,
    baseline: np.ndarray,
    *,
    progress: bool,
    workers: int | None,
) -> dict[int, str]:
    """Read ``records`` into the preallocated arrays (row i = i-th record). Returns errors."""
    column = _FILENAME_COLUMN[sampling_rate]
    jobs = [(int(i), str(p)) for i, p in zip(records.index, records[column])]
    chunks = [jobs[s:s + _CHUNK] for s in range(0, len(jobs), _CHUNK)]
    starts = range(0, len(jobs), _CHUNK)
    errors: dict[int, str] = {}
    bar = tqdm(total=len(jobs), desc=f"PTB-XL {sampling_rate} Hz", unit="rec",
               disable=not progress)

    def store(start: int, result) -> None:
        d, g, b, e = result
        digital[start:start + len(d)] = d
        gain[start:start + len(d)] = g
        baseline[start:start + len(d)] = b
        errors.update(e)
        bar.update(len(d))

    n_workers = _resolve_workers(workers, len(jobs))
    try:
        if n_workers == 1:
            for start, chunk in zip(starts, chunks):
                store(start, _read_chunk(str(root), chunk, sampling_rate))
        else:
            # spawn, not fork: the parent may already run JAX's threads.
            with ProcessPoolExecutor(n_workers, mp_context=get_context("spawn")) as pool:
                results = pool.map(
                    _read_chunk, [str(root)] * len(chunks), chunks,
                    [sampling_rate] * len(chunks),
                )
                for start, result in zip(starts, results):
                    store(start, result)
    finally:
        bar.close()
    return errors


def _read_signal_table(
    root: Path, sampling_rate: int, records: pd.DataFrame, *, progress: bool,
    workers: int | None,
) -> _SignalTable:
    """Read ``records`` with wfdb into memory (no cache)."""
    n, length = len(records), RECORD_SECONDS * sampling_rate
    digital = np.zeros((n, length, NUM_LEADS), dtype=np.int16)
    gain = np.ones((n, NUM_LEADS), dtype=np.float64)
    baseline = np.zeros((n, NUM_LEADS), dtype=np.int64)
    errors = _fill_table(root, sampling_rate, records, digital, gain, baseline,
                         progress=progress, workers=workers)
    return _SignalTable(records.index.to_numpy().astype(np.int64), digital, gain, baseline,
                        errors)


# ======================================================================== cache
def default_cache_dir() -> Path:
    """``$IMN_CACHE_DIR`` if set, else ``~/.cache/imn``."""
    env = os.environ.get("IMN_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "imn"


def cache_folder(root: str | os.PathLike, sampling_rate: int,
                 cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the cache of database ``root`` at ``sampling_rate`` lives."""
    absolute = str(Path(root).expanduser().resolve())
    key = hashlib.sha256(absolute.encode()).hexdigest()[:16]
    base = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return base / "ptbxl" / f"{key}-{sampling_rate}hz"


def _cache_check(check: str | None) -> str:
    check = check or os.environ.get("IMN_CACHE_CHECK") or "stat"
    if check not in CACHE_CHECKS:
        raise EcgDataError(f"unknown cache check {check!r} (IMN_CACHE_CHECK?); expected one of {CACHE_CHECKS}")
    return check


def record_files(root: Path, sampling_rate: int, database: pd.DataFrame) -> list[str]:
    """Relative paths of the ``.hea`` and ``.dat`` files of every record at ``sampling_rate``."""
    return [f"{relative}{ext}" for relative in database[_FILENAME_COLUMN[sampling_rate]]
            for ext in (".hea", ".dat")]


def _record_files_digest(root: Path, files: list[str], check: str) -> str:
    """One SHA-256 over every record file's (path, size, mtime) or, for 'sha256', content."""
    from imn.provenance import file_sha256

    digest = hashlib.sha256()
    for relative in files:
        path = root / relative
        try:
            stat = path.stat()
            entry = f"{relative} {stat.st_size} {stat.st_mtime_ns}" if check == "stat" \
                else f"{relative} {file_sha256(path)}"
        except OSError:
            entry = f"{relative} missing"  # an unreadable record is recorded in errors.json
        digest.update(entry.encode() + b"\n")
    return digest.hexdigest()


def source_fingerprint(root: str | os.PathLike, sampling_rate: int, database: pd.DataFrame | None = None,
                       check: str | None = None) -> dict[str, object]:
    """What a derived copy (the cache, a TFDS build) of ``root`` at ``sampling_rate`` was
    made from: ``ptbxl_database.csv``'s size and mtime and a digest of every record file
    (:func:`load_ptbxl`'s ``cache_check``). Any change to them makes the copy stale."""
    root = Path(root).expanduser()
    check = _cache_check(check)
    if database is None:
        database = read_database(root, sampling_rate)
    stat = (root / DATABASE_CSV).stat()
    files = record_files(root, sampling_rate, database)
    fingerprint = {
        "version": _CACHE_VERSION,
        "root": str(root.resolve()),
        "database_csv_size": stat.st_size,
        "database_csv_mtime_ns": stat.st_mtime_ns,
        "record_files_stat": _record_files_digest(root, files, "stat"),
    }
    if check == "sha256":
        fingerprint["record_files_sha256"] = _record_files_digest(root, files, "sha256")
    return fingerprint


def fingerprint_matches(stored: dict | None, current: dict) -> bool:
    """Whether a copy made from ``stored`` is current: every field of ``current`` agrees (a
    copy built with content hashes also serves the cheaper check, not the other way round)."""
    return bool(stored) and all(stored.get(key) == value for key, value in current.items())


def _open_cache(folder: Path, fingerprint: dict[str, object], sampling_rate: int,
                database: pd.DataFrame) -> _SignalTable | None:
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    if not fingerprint_matches(manifest.get("fingerprint"), fingerprint) \
            or manifest.get("sampling_rate") != sampling_rate:
        if manifest.get("fingerprint"):
            logger.info("the PTB-XL cache %s no longer matches %s (a record or the database "
                        "changed); rebuilding it", folder, fingerprint["root"])
        return None
    try:
        ecg_ids = np.load(folder / "ecg_ids.npy")
        digital = np.load(folder / "digital.npy", mmap_mode="r")
        gain = np.load(folder / "gain.npy")
        baseline = np.load(folder / "baseline.npy")
        errors = {int(k): v for k, v in json.loads((folder / "errors.json").read_text()).items()}
    except (OSError, ValueError) as err:
        logger.warning("ignoring unreadable PTB-XL cache %s: %s", folder, err)
        return None
    length = RECORD_SECONDS * sampling_rate
    per_lead = (len(ecg_ids), NUM_LEADS)
    if (digital.shape != (len(ecg_ids), length, NUM_LEADS) or digital.dtype != np.int16
            or gain.shape != per_lead or baseline.shape != per_lead
            or not np.array_equal(ecg_ids, database.index.to_numpy())):
        logger.warning("ignoring inconsistent PTB-XL cache %s", folder)
        return None
    # Every record read without error has a finite, non-zero gain per lead (checked when it
    # was read); anything else is a damaged cache, which would give inf / NaN signals.
    if not (np.isfinite(gain).all() and (gain != 0).all()):
        logger.warning("ignoring PTB-XL cache %s: its gain.npy holds zero or non-finite gains", folder)
        return None
    return _SignalTable(ecg_ids, digital, gain, baseline, errors, cache_folder=folder)


def _cached_signals(
    root: Path,
    sampling_rate: int,
    database: pd.DataFrame,
    cache_dir: str | os.PathLike | None,
    *,
    build_if_missing: bool,
    progress: bool,
    workers: int | None,
    cache_check: str = "stat",
) -> _SignalTable | None:
    """The memory-mapped cache of all records; built first if absent or stale."""
    folder = cache_folder(root, sampling_rate, cache_dir)
    fingerprint = source_fingerprint(root, sampling_rate, database, cache_check)
    table = _open_cache(folder, fingerprint, sampling_rate, database)
    if table is not None or not build_if_missing:
        return table
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(folder.parent, os.W_OK):
            raise PermissionError(f"{folder.parent} is not writable")
    except OSError as err:
        logger.warning("cannot write the PTB-XL cache under %s (%s); reading without it",
                       folder.parent, err)
        return None
    with build_lock(folder):
        # Another builder may have finished while this one waited for the lock.
        table = _open_cache(folder, fingerprint, sampling_rate, database)
        if table is not None:
            return table
        remove_stale_partials(folder)
        scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}.partial-", dir=folder.parent))
        scratch.chmod(0o755)  # mkdtemp's 0700 would survive the rename into place
        try:
            _build_cache(scratch, root, sampling_rate, database, fingerprint,
                         progress=progress, workers=workers)
            _replace_folder(scratch, folder)
        except BaseException as err:
            # A failed or interrupted build leaves nothing that a later load could mistake
            # for a cache (the folder only appears, complete, by the rename above).
            shutil.rmtree(scratch, ignore_errors=True)
            if isinstance(err, OSError) and err.errno == errno.ENOSPC:
                raise no_space(folder, _cache_bytes(len(database), sampling_rate)) from None
            raise
    table = _open_cache(folder, fingerprint, sampling_rate, database)
    if table is None:
        raise EcgDataError(f"the PTB-XL cache just written to {folder} cannot be read back")
    return table


def _cache_bytes(n_records: int, sampling_rate: int) -> int:
    """Size of the int16 signal array of a cache (the bulk of it; the header is tiny)."""
    return n_records * RECORD_SECONDS * sampling_rate * NUM_LEADS * 2 + 4096


def _build_cache(scratch: Path, root: Path, sampling_rate: int, database: pd.DataFrame,
                 fingerprint: dict[str, object], *, progress: bool, workers: int | None) -> None:
    n, length = len(database), RECORD_SECONDS * sampling_rate
    started = time.perf_counter()
    # Written in place on disk, so converting all 21,799 records never holds them in memory.
    digital = np.lib.format.open_memmap(
        scratch / "digital.npy", mode="w+", dtype=np.int16, shape=(n, length, NUM_LEADS)
    )
    reserve(scratch / "digital.npy", _cache_bytes(n, sampling_rate))
    gain = np.ones((n, NUM_LEADS), dtype=np.float64)
    baseline = np.zeros((n, NUM_LEADS), dtype=np.int64)
    errors = _fill_table(root, sampling_rate, database, digital, gain, baseline,
                         progress=progress, workers=workers)
    digital.flush()
    del digital
    np.save(scratch / "ecg_ids.npy", database.index.to_numpy().astype(np.int64))
    np.save(scratch / "gain.npy", gain)
    np.save(scratch / "baseline.npy", baseline)
    (scratch / "errors.json").write_text(json.dumps({str(k): v for k, v in errors.items()}))
    manifest = {
        "fingerprint": fingerprint,
        "sampling_rate": sampling_rate,
        "records": n,
        "unreadable": len(errors),
        "seconds_to_build": round(time.perf_counter() - started, 3),
        "layout": "digital int16 (N, L, 12) in LEADS order; physical = float32((digital - "
                  "baseline) / gain) computed in float64 (exactly wfdb's p_signal)",
    }
    (scratch / "manifest.json").write_text(json.dumps(manifest, indent=1))


def _replace_folder(new: Path, target: Path) -> None:
    """Move the finished ``new`` folder to ``target``, replacing a stale one."""
    stale = None
    if target.exists():
        stale = Path(tempfile.mkdtemp(prefix=f".{target.name}.stale-", dir=target.parent))
        os.replace(target, stale / "old")
    try:
        os.replace(new, target)
    except OSError:
        # Another process finished the same cache in between: keep theirs.
        if not (target / "manifest.json").is_file():
            raise
        shutil.rmtree(new, ignore_errors=True)
    if stale is not None:
        # Readers that memory-mapped the old files keep them alive until they close them.
        shutil.rmtree(stale, ignore_errors=True)


__all__ = [
    "BINARY_TASKS",
    "MULTILABEL_TASKS",
    "TASKS",
    "binary_task_members",
    "cache_folder",
    "default_cache_dir",
    "load_ptbxl",
    "read_database",
    "read_record",
    "read_statements",
    "record_files",
    "fingerprint_matches",
    "source_fingerprint",
    "task_label_sets",
]
