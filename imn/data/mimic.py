"""MIMIC-IV-ECG (PhysioNet, v1.0) in PhysioNet's layout: records via ``wfdb``, labels from the
machine report statements, patient-disjoint folds.

Layout (PhysioNet project page https://physionet.org/content/mimic-iv-ecg/1.0/, doi
10.13026/4nqg-sb35: ~800,000 diagnostic 12-lead ECGs of ~160,000 patients, 10 s at 500 Hz)::

    record_list.csv           subject_id, study_id, file_name, ecg_time, path
    machine_measurements.csv  subject_id, study_id, cart_id, ecg_time, report_0 ... report_17,
                              bandwidth, filtering, rr_interval, p_onset, ..., qrs_axis, t_axis
    files/p1000/p10000032/s40689238/40689238.{hea,dat}

A record's ``path`` (``files/p<first 4 digits of subject_id>/p<subject_id>/s<study_id>/
<study_id>``, without extension) is relative to the root. ``report_0`` ... ``report_17`` hold
the ECG cart's free-text statements, one per column ("Sinus rhythm", "Left axis deviation",
"Abnormal ECG"); unused columns are empty. Both tables have one row per ``study_id``. The
headers list the leads as ``I, II, III, aVR, aVF, aVL, V1..V6`` (aVF before aVL, unlike
``LEADS``; ECG-XPLAIM's ``load_helpers.py`` swaps PTB-XL's aVL/aVF to match it); the reader
reorders by each header's names, so any order is read correctly.
Age and sex are not in these two tables (they are in MIMIC-IV's ``hosp/patients``), so
``age`` is NaN and ``sex`` -1 for every record.

Labels
------
The classes follow ECG-XPLAIM (Pantelidis et al., 2025, "ECG-XPLAIM: ... explainable
arrhythmia detection from 12-lead ECG", github.com/ppantele/ECG-XPLAIM, ``src/initial_setup.py``
``labels_mimic_iv`` and ``load_helpers.metadata_extract_save``). ECG-XPLAIM joins
``report_0..report_17`` with spaces, lower-cases the text and labels a class when any of its
keyword stems occurs as a substring (e.g. afib: ``afib``, ``atrial fib``; rbbb: ``rbbb``,
``right b``; pac: ``pac``, ...). Plain substrings over-match: ``pac`` matches "paced",
``right b`` matches "incomplete right bundle branch block", ``pace`` matches "wandering atrial
pacemaker", and negated or hedged statements count as findings. (Its stem ``longed PR`` is
upper case, so it never matches the lower-cased text.) Two rule sets are offered:

* ``task="xplaim"``: ECG-XPLAIM's 25 classes and rules exactly as published
  (:data:`XPLAIM_KEYWORDS`, :func:`xplaim_labels`), for comparison with that work.
* ``task="rhythm"`` (default) and ``task="rhythm_norm"``: our own, stricter table
  (:data:`KEYWORD_TABLE`, :func:`report_labels`) for ECG-XPLAIM's rhythm, conduction and
  pacing classes (its infarct-location classes are left out: their phrasing is too varied
  for a conservative keyword table), plus, in ``rhythm_norm``, a ``norm`` class.

The stricter table (:func:`report_labels`) works on :func:`report_text`: the non-empty
statements, lower-cased, joined by ``"; "``. Text is split into clauses at ``;`` ``,`` and
sentence ends, so each statement is at least one clause. A class is present when one of its
regular expressions (whole words; e.g. ``\\bpacs?\\b`` does not match "paced") matches in some
clause where it is

* not negated: no negation cue before it in the clause ("no", "not", "without", "no evidence
  of", "negative for", "absence of", "ruled out") and none after it ("no longer present",
  "not present", "not seen", "resolved", "absent", "ruled out");
* and, if hedged, ``uncertain="positive"`` was asked for. Hedges: before it "possible",
  "possibly", "probable", "probably", "cannot rule out", "cannot exclude", "consider",
  "suggests", "suggestive of", "questionable", "borderline", "may be", "rule out"; after it
  "cannot be
  excluded", "cannot be ruled out", "not excluded", "is possible", "suspected". The default,
  ``uncertain="negative"``, counts hedged statements as absent (conservative).

A cue's scope ends at the end of its clause or at "but", "however", "although". One affirmed
match suffices ("no afib; atrial fibrillation" is afib). ``norm`` is present when "normal ecg"
or "ecg within normal limits" is affirmed (not "otherwise normal ecg"), the report says neither
"abnormal ecg" nor "borderline ecg", and no other class of :data:`KEYWORD_TABLE` is present.

Records carrying no class are kept (all-zero label rows are negatives for every class); the
classes of a task are fixed (the table's order), whatever occurs in the records read.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from imn.data.conform import (
    Conform,
    check_on_error,
    multi_hot,
    read_wfdb,
    report_unreadable,
    stable_fold,
)
from imn.data.dataset import NUM_LEADS, RECORD_SECONDS, EcgDataError, EcgDataset

logger = logging.getLogger(__name__)

RECORD_LIST_CSV = "record_list.csv"
MEASUREMENTS_CSV = "machine_measurements.csv"
NUM_REPORT_COLUMNS = 18
REPORT_COLUMNS: tuple[str, ...] = tuple(f"report_{i}" for i in range(NUM_REPORT_COLUMNS))
# The header order of MIMIC-IV-ECG records (aVF before aVL); informative only: the reader
# reorders by each header's own lead names.
MIMIC_LEAD_ORDER: tuple[str, ...] = (
    "I", "II", "III", "aVR", "aVF", "aVL", "V1", "V2", "V3", "V4", "V5", "V6",
)
UNCERTAIN_POLICIES = ("negative", "positive")


# ======================================================================== keyword tables
@dataclasses.dataclass(frozen=True)
class LabelRule:
    """One class of :data:`KEYWORD_TABLE`: ``patterns`` are regular expressions matched
    against a lower-cased clause; ``description`` says what the class means."""

    description: str
    patterns: tuple[str, ...]


_AV = r"(?:a-?v |atrioventricular |heart )?"
# Class name -> rule. Names follow ECG-XPLAIM's MIMIC-IV labels.
KEYWORD_TABLE: dict[str, LabelRule] = {
    "afib": LabelRule("atrial fibrillation", (r"\batrial fibrillation\b", r"\ba-?fib\b")),
    "aflu": LabelRule("atrial flutter", (r"\batrial flutter\b", r"\ba-?flutter\b")),
    "bradsr": LabelRule("sinus bradycardia", (r"\bsinus bradycardia\b",)),
    "tachsr": LabelRule("sinus tachycardia", (r"\bsinus tachycardia\b",)),
    "svt": LabelRule(
        "supraventricular tachycardia",
        (r"\bsupraventricular tachycardia\b", r"\bp?svt\b"),
    ),
    # \b keeps "supraventricular tachycardia" out.
    "vt": LabelRule("ventricular tachycardia", (r"\bventricular tachycardia\b",)),
    "pac": LabelRule(
        "premature atrial / supraventricular complexes",
        (
            r"\bpacs?\b",
            r"\b(?:premature atrial|atrial premature) (?:contraction|complex|beat|depolarization)",
            (r"\b(?:premature supraventricular|supraventricular premature) "
             r"(?:contraction|complex|beat)"),
            r"\b(?:atrial|supraventricular) extrasystole",
        ),
    ),
    "pvc": LabelRule(
        "premature ventricular complexes",
        (
            r"\bpvcs?\b",
            (r"\b(?:premature ventricular|ventricular premature) "
             r"(?:contraction|complex|beat|depolarization)"),
            r"\bventricular extrasystole",
        ),
    ),
    "avb1": LabelRule(
        "first-degree AV block or prolonged PR interval",
        (rf"\b(?:1st|first)[- ]degree {_AV}block\b", r"\bprolonged pr\b"),
    ),
    "avb2": LabelRule(
        "second-degree AV block (Mobitz I / Wenckebach, Mobitz II, 2:1)",
        (rf"\b(?:2nd|second)[- ]degree {_AV}block\b", r"\bmobitz\b", r"\bwenckebach\b",
         rf"\b2:1 {_AV}block\b"),
    ),
    "avb3": LabelRule(
        "third-degree (complete) AV block",
        # \b before "complete" keeps "incomplete" out.
        (rf"\b(?:3rd|third)[- ]degree {_AV}block\b",
         r"\bcomplete (?:a-?v |atrioventricular |heart )block\b"),
    ),
    "rbbb": LabelRule(
        "complete right bundle branch block (incomplete RBBB is not counted)",
        (r"(?<!incomplete )\b(?:right bundle branch block|rbbb)\b",),
    ),
    "lbbb": LabelRule(
        "complete left bundle branch block (incomplete LBBB is not counted)",
        (r"(?<!incomplete )\b(?:left bundle branch block|lbbb)\b",),
    ),
    "lafb": LabelRule(
        "left anterior fascicular block",
        (r"\bleft anterior (?:fascicular block|hemiblock)\b", r"\blafb\b"),
    ),
    "lpfb": LabelRule(
        "left posterior fascicular block",
        (r"\bleft posterior (?:fascicular block|hemiblock)\b", r"\blpfb\b"),
    ),
    "wpw": LabelRule(
        "Wolff-Parkinson-White / ventricular pre-excitation",
        (r"\bwpw\b", r"\bwolff[- ]parkinson[- ]white\b", r"\bpre-?excitation\b"),
    ),
    "lqt": LabelRule(
        "prolonged QT interval",
        (r"\b(?:prolonged|long) qtc?\b", r"\bqtc? (?:interval )?prolongation\b"),
    ),
    "pace": LabelRule(
        "electronic pacing (not a wandering or ectopic atrial pacemaker)",
        (r"\bpaced\b", r"\bpacing\b",
         r"(?<!wandering atrial )(?<!wandering )(?<!ectopic atrial )(?<!ectopic )\bpacemaker\b"),
    ),
}
NORM_CLASS = "norm"
NORM_RULE = LabelRule(
    "normal ECG: affirmed 'normal ecg' / 'ecg within normal limits', no 'abnormal ecg' or "
    "'borderline ecg', and no other class of the table",
    (r"(?<!otherwise )\bnormal ecg\b", r"\becg within normal limits\b"),
)
# Report-wide vetoes of ``norm`` (matched anywhere, hedged or not).
_NOT_NORMAL = re.compile(r"\b(?:abnormal|borderline) ecg\b")

_NEGATION_BEFORE = (
    r"\bno\b", r"\bnot\b", r"\bwithout\b", r"\bnegative for\b", r"\babsence of\b",
    r"\bruled out\b",
)
_NEGATION_AFTER = (
    r"\bno longer\b", r"\bnot (?:present|seen)\b", r"\bresolved\b", r"\babsent\b",
    r"\bruled out\b",
)
_HEDGE_BEFORE = (
    r"\bpossibl[ey]\b", r"\bprobabl[ey]\b", r"\bcan(?:not|'t|no) (?:rule out|exclude)\b",
    r"\bconsider\b", r"\bsuggest(?:s|ive of)?\b", r"\bquestionable\b", r"\bborderline\b",
    r"\bmay be\b", r"\brule out\b",
)
_HEDGE_AFTER = (
    r"\bcannot be (?:excluded|ruled out)\b", r"\bnot excluded\b", r"\bis possible\b",
    r"\bsuspected\b",
)
# A negation cue inside a hedge ("cannot be ruled out") is part of the hedge and does not count.
_CLAUSE_SPLIT = re.compile(r"[;,\n]|\.(?:\s|$)")
_SCOPE_END = re.compile(r"\b(?:but|however|although)\b")


def _compile(patterns: Iterable[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns))


_COMPILED = {name: _compile(rule.patterns) for name, rule in KEYWORD_TABLE.items()}
_COMPILED_NORM = _compile(NORM_RULE.patterns)
_NEG_BEFORE, _NEG_AFTER = _compile(_NEGATION_BEFORE), _compile(_NEGATION_AFTER)
_HEDGE_BEFORE_RE, _HEDGE_AFTER_RE = _compile(_HEDGE_BEFORE), _compile(_HEDGE_AFTER)

# ECG-XPLAIM's MIMIC-IV keyword stems, verbatim (github.com/ppantele/ECG-XPLAIM,
# src/initial_setup.py): a class is present when any stem is a substring of
# " " + " ".join(str(report_i) for i in 0..17).lower() + " ".
XPLAIM_KEYWORDS: dict[str, tuple[str, ...]] = {
    "afib": ("afib", "atrial fib"),
    "aflu": ("flut",),
    "afifl": ("afib", "atrial fib", "flut"),
    "rbbb": ("rbbb", "right b"),
    "lbbb": ("lbbb", "left b"),
    "lafb": ("lafb", "left ant"),
    "lpfb": ("lpfb", "left post"),
    "pvc": ("pvc", "premature vent", "ventricular premat"),
    "pac": ("pac", "premature atr", "atrial premat", "supraventricular extra"),
    "ami": ("anterior st e", "anteroseptal st e", "anterolateral st e", "ant/septal st e",
            "anterior inf", "infarct anter", "anteroseptal inf", "anterolateral inf"),
    "imi": ("inferior st e", "inferior and lateral st e", "inferior and septal st e",
            "inferior inf", "infarct infer", "inferolateral inf"),
    "smi": ("septal st e", "septal inf", "infarct septal"),
    "lmi": ("lateral st e", "lateral inf", "infarct later"),
    "avb1": ("st deg", "longed PR"),
    "avb2i": ("mobitz i ", "wenck"),
    "avb2ii": ("mobitz ii",),
    "avb2": ("nd deg",),
    "avb3": ("rd deg", "complete a-", "complete av"),
    "bradsr": ("sinus brad",),
    "svt": ("supraventricular tach",),
    "vt": (" ventricular tach",),
    "tachsr": ("sinus tach",),
    "lqt": ("long qt", "longed qt"),
    "wpw": ("wpw", "wolf"),
    "pace": ("paci", "pace"),
}

TASK_CLASSES: dict[str, tuple[str, ...]] = {
    "rhythm": tuple(KEYWORD_TABLE),
    "rhythm_norm": tuple(KEYWORD_TABLE) + (NORM_CLASS,),
    "xplaim": tuple(XPLAIM_KEYWORDS),
}
TASKS: tuple[str, ...] = tuple(TASK_CLASSES)


# ======================================================================== report labels
def report_text(statements: Iterable[object]) -> str:
    """The report of one ECG as :func:`report_labels` reads it: the non-empty statements
    (``report_0..report_17``; NaN and blanks skipped), stripped, lower-cased, joined by
    ``"; "`` so that no statement runs into the next."""
    parts = []
    for statement in statements:
        if statement is None or (isinstance(statement, float) and math.isnan(statement)):
            continue
        text = str(statement).strip()
        if text:
            parts.append(text.lower())
    return "; ".join(parts)


def _clauses(text: str) -> list[str]:
    return [c.strip() for c in _CLAUSE_SPLIT.split(text.lower()) if c.strip()]


def _status(clause: str, start: int, end: int) -> str:
    """'affirmed', 'hedged' or 'negated' for the match ``clause[start:end]``."""
    before = clause[:start]
    # A cue's scope ends at "but", "however", "although": only text after the last one counts.
    ends = list(_SCOPE_END.finditer(before))
    if ends:
        before = before[ends[-1].end():]
    after = clause[end:]
    stop = _SCOPE_END.search(after)
    if stop:
        after = after[:stop.start()]
    hedge_before = list(_HEDGE_BEFORE_RE.finditer(before))
    # Negation cues that lie inside a hedge ("cannot rule out") are part of the hedge.
    hedge_spans = [(m.start(), m.end()) for m in hedge_before]
    negated_before = any(
        not any(s <= m.start() < e for s, e in hedge_spans) for m in _NEG_BEFORE.finditer(before)
    )
    hedge_after = list(_HEDGE_AFTER_RE.finditer(after))
    hedge_after_spans = [(m.start(), m.end()) for m in hedge_after]
    negated_after = any(
        not any(s <= m.start() < e for s, e in hedge_after_spans)
        for m in _NEG_AFTER.finditer(after)
    )
    if negated_before or negated_after:
        return "negated"
    if hedge_before or hedge_after:
        return "hedged"
    return "affirmed"


def _present(pattern: re.Pattern[str], clauses: Sequence[str], uncertain: str) -> bool:
    for clause in clauses:
        for match in pattern.finditer(clause):
            status = _status(clause, match.start(), match.end())
            if status == "affirmed" or (status == "hedged" and uncertain == "positive"):
                return True
    return False


def report_labels(text: str, *, uncertain: str = "negative") -> frozenset[str]:
    """Classes of :data:`KEYWORD_TABLE` (and ``norm``) that report ``text`` affirms.

    Args:
      text: a report, e.g. :func:`report_text` of ``report_0..report_17`` (any case).
      uncertain: ``"negative"`` (default): hedged findings ("possible", "probable", "cannot
        rule out", ...) count as absent; ``"positive"``: they count as present. Negated
        findings ("no evidence of", "no longer present", ...) are always absent.

    Returns:
      The class names, a subset of ``KEYWORD_TABLE`` keys plus ``"norm"``.
    """
    if uncertain not in UNCERTAIN_POLICIES:
        raise ValueError(f"uncertain must be one of {UNCERTAIN_POLICIES}, got {uncertain!r}")
    clauses = _clauses(text)
    found = {name for name, pattern in _COMPILED.items() if _present(pattern, clauses, uncertain)}
    if (not found and not _NOT_NORMAL.search(text.lower())
            and _present(_COMPILED_NORM, clauses, uncertain)):
        found.add(NORM_CLASS)
    return frozenset(found)


def xplaim_text(statements: Iterable[object]) -> str:
    """The report as ECG-XPLAIM builds it: ``str()`` of every one of the 18 statements (NaN
    becomes ``"nan"``), joined by spaces, lower-cased, padded with a space at each end."""
    return " " + " ".join(str(s) for s in statements).lower() + " "


def xplaim_labels(text: str) -> frozenset[str]:
    """ECG-XPLAIM's classes for ``text`` (see :func:`xplaim_text`): plain substring matching
    of :data:`XPLAIM_KEYWORDS`, no negation handling."""
    return frozenset(
        name for name, stems in XPLAIM_KEYWORDS.items() if any(s in text for s in stems)
    )


# ======================================================================== metadata
def _read_csv(path: Path, what: str, usecols=None) -> pd.DataFrame:
    if not path.is_file():
        raise EcgDataError(f"MIMIC-IV-ECG {what} {path} is missing")
    try:
        return pd.read_csv(path, usecols=usecols, dtype={c: str for c in REPORT_COLUMNS},
                           low_memory=False)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise EcgDataError(f"cannot parse {path}: {err}") from err


def _check_ids(frame: pd.DataFrame, path: Path, columns: Sequence[str]) -> pd.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise EcgDataError(f"{path} lacks the column(s) {missing}")
    for column in ("subject_id", "study_id"):
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() | (values != values.round())
        if bad.any():
            rows = (np.flatnonzero(bad.to_numpy())[:10] + 2).tolist()  # +2: header, 1-based
            raise EcgDataError(f"{path}: {column} is missing or not an integer on line(s) {rows}")
        frame[column] = values.astype(np.int64)
    if frame["study_id"].duplicated().any():
        dups = frame["study_id"][frame["study_id"].duplicated()].unique()[:10].tolist()
        raise EcgDataError(f"{path} lists some study_id more than once: {dups}")
    return frame


def read_record_list(root: str | os.PathLike) -> pd.DataFrame:
    """``record_list.csv`` indexed by ``study_id`` (int64, sorted), with ``subject_id`` and
    ``path``."""
    path = Path(root) / RECORD_LIST_CSV
    frame = _read_csv(path, "record list")
    frame = _check_ids(frame, path, ("subject_id", "study_id", "path"))
    if frame["path"].isna().any():
        ids = frame["study_id"][frame["path"].isna()][:10].tolist()
        raise EcgDataError(f"{path}: path is empty for study_id {ids}")
    return frame.set_index("study_id").sort_index()


def read_measurements(root: str | os.PathLike) -> pd.DataFrame:
    """``subject_id`` and ``report_0..report_17`` of ``machine_measurements.csv``, indexed by
    ``study_id`` (the numeric measurement columns are not read). Report columns absent from
    the file are taken as empty."""
    path = Path(root) / MEASUREMENTS_CSV
    wanted = {"subject_id", "study_id", *REPORT_COLUMNS}
    frame = _read_csv(path, "measurement table", usecols=lambda c: c in wanted)
    frame = _check_ids(frame, path, ("subject_id", "study_id"))
    if not any(c in frame.columns for c in REPORT_COLUMNS):
        raise EcgDataError(f"{path} has none of the report columns report_0..report_17")
    for column in REPORT_COLUMNS:
        if column not in frame.columns:
            frame[column] = np.nan
    return frame.set_index("study_id")[["subject_id", *REPORT_COLUMNS]]


def task_labels(reports: pd.DataFrame, task: str, *, uncertain: str = "negative"
                ) -> list[frozenset[str]]:
    """Each row's classes for ``task`` from its ``report_0..report_17`` columns."""
    if task not in TASKS:
        raise EcgDataError(f"unknown MIMIC-IV-ECG task {task!r}; valid tasks: {', '.join(TASKS)}")
    rows = reports[list(REPORT_COLUMNS)].itertuples(index=False, name=None)
    if task == "xplaim":
        return [xplaim_labels(xplaim_text(row)) for row in rows]
    classes = set(TASK_CLASSES[task])
    return [report_labels(report_text(row), uncertain=uncertain) & classes for row in rows]


# ======================================================================== signals
def read_signal(root: str | os.PathLike, relative_path: str, study_id: int, grid: Conform
                ) -> np.ndarray:
    """One record on ``grid``: float32 ``(grid.length, 12)`` in mV, leads in ``LEADS`` order.

    Raises:
      EcgDataError naming the study_id, the record path and the problem (missing file,
      unreadable or corrupt header/signal, lead names other than the 12 standard leads,
      unknown units, NaN samples, wrong shape; see :func:`imn.data.conform.read_wfdb`).
    """
    record_path = os.path.join(os.fspath(root), relative_path)
    return read_wfdb(record_path, grid, f"MIMIC-IV-ECG study_id {study_id} ({record_path})")


# ======================================================================== public entry point
def load_mimic(
    root: str | os.PathLike,
    task: str = "rhythm",
    sampling_rate: int = 100,
    *,
    seconds: float = RECORD_SECONDS,
    crop: str = "center",
    pad: bool = True,
    on_error: str = "raise",
    progress: bool = False,
    max_records: int | None = None,
    uncertain: str = "negative",
    strict: bool = False,
) -> EcgDataset:
    """Load MIMIC-IV-ECG (or a slice in the same layout) for one task.

    Args:
      root: folder holding ``record_list.csv``, ``machine_measurements.csv`` and ``files/``.
      task: one of ``TASKS``: ``"rhythm"`` (the classes of :data:`KEYWORD_TABLE`),
        ``"rhythm_norm"`` (those plus ``norm``) or ``"xplaim"`` (ECG-XPLAIM's rules).
      sampling_rate: target rate in Hz (records are 500 Hz; 100 gives ``L = 1000``).
      seconds, crop, pad: the target length and how longer / shorter records are fitted
        (:class:`imn.data.conform.Conform`); MIMIC records are 10 s already.
      strict: refuse any record that needs adapting (resampling, a crop, padding) instead
        of counting it in ``dataset.adaptations``.
      on_error: ``"raise"``: the first unreadable record (or one missing from
        ``machine_measurements.csv``) raises ``EcgDataError`` naming it; ``"skip"``: such
        records are left out, listed in ``dataset.skipped`` and logged as a warning.
      progress: show a tqdm bar while records are read.
      max_records: only the first this many records in ``study_id`` order (study ids are
        unrelated to patients or time, so this is a spread-out sample).
      uncertain: how hedged statements count (:func:`report_labels`); ignored by ``xplaim``.

    Returns:
      An ``EcgDataset`` with float32 ``signals (N, L, 12)`` in mV, leads in ``LEADS`` order,
      float32 multi-hot ``labels (N, K)`` (``K = len(TASK_CLASSES[task])``, fixed order),
      ``ecg_ids`` = ``study_id``, ``patient_ids`` = ``subject_id``, ``folds`` =
      ``stable_fold(subject_id)`` in 1..10 (a patient's records share a fold), ``age`` NaN and
      ``sex`` -1 (not in these tables), sorted by ``study_id``.

    Raises:
      EcgDataError: missing or malformed tables, an unknown task, unreadable records.

    Memory: all of MIMIC-IV-ECG is ~800k x L x 12 float32 (38 GB at 100 Hz); use
    ``max_records`` for subsets.
    """
    if task not in TASKS:
        raise EcgDataError(f"unknown MIMIC-IV-ECG task {task!r}; valid tasks: {', '.join(TASKS)}")
    check_on_error(on_error)
    if uncertain not in UNCERTAIN_POLICIES:
        raise ValueError(f"uncertain must be one of {UNCERTAIN_POLICIES}, got {uncertain!r}")
    if max_records is not None and max_records < 0:
        raise ValueError(f"max_records must be >= 0, got {max_records}")
    grid = Conform(sampling_rate=sampling_rate, seconds=seconds, crop=crop, pad=pad, strict=strict)
    root = Path(root).expanduser()
    if not root.is_dir():
        raise EcgDataError(f"MIMIC-IV-ECG root {root} does not exist or is not a folder")

    records = read_record_list(root)
    if max_records is not None:
        records = records.iloc[:max_records]
    measurements = read_measurements(root)

    errors: dict[int, str] = {}
    known = records.index.isin(measurements.index)
    for study_id in records.index[~known]:
        errors[int(study_id)] = (f"MIMIC-IV-ECG study_id {study_id}: listed in {RECORD_LIST_CSV} "
                                 f"but missing from {MEASUREMENTS_CSV} (no report to label it)")
    reports = measurements.reindex(records.index)
    other_subject = known & (reports["subject_id"].to_numpy() != records["subject_id"].to_numpy())
    for study_id in records.index[other_subject]:
        errors[int(study_id)] = (
            f"MIMIC-IV-ECG study_id {study_id}: subject_id {records.at[study_id, 'subject_id']} "
            f"in {RECORD_LIST_CSV} but {int(reports.at[study_id, 'subject_id'])} in "
            f"{MEASUREMENTS_CSV}")
    if errors and on_error == "raise":
        _raise_first(errors)

    classes = TASK_CLASSES[task]
    signals = np.zeros((len(records), grid.length, NUM_LEADS), dtype=np.float32)
    kept = np.zeros(len(records), dtype=bool)
    filled = 0  # rows of ``signals`` in use: kept records are packed to the front, in order
    bar = tqdm(total=len(records), desc=f"MIMIC-IV-ECG {grid.sampling_rate} Hz", unit="rec",
               disable=not progress)
    try:
        for row, (study_id, relative_path) in enumerate(zip(records.index, records["path"])):
            bar.update(1)
            if int(study_id) in errors:
                continue
            try:
                signals[filled] = read_signal(root, str(relative_path), int(study_id), grid)
            except EcgDataError as err:
                if on_error == "raise":
                    raise EcgDataError(f"{err}\n(on_error='skip' leaves unreadable records "
                                       f"out)") from None
                errors[int(study_id)] = str(err)
                continue
            kept[row] = True
            filled += 1
    finally:
        bar.close()
    report_unreadable(list(errors.values()), "MIMIC-IV-ECG record(s)", "skip")
    grid.log_adaptations(f"MIMIC-IV-ECG {root}")

    kept_records = records[kept]
    label_sets = task_labels(reports[kept], task, uncertain=uncertain)
    subjects = kept_records["subject_id"].to_numpy(dtype=np.int64)
    n = len(kept_records)
    return EcgDataset(
        # A view, not a copy: skipping records never needs memory for a second array.
        signals=signals[:filled],
        labels=multi_hot(label_sets, classes),
        classes=classes,
        ecg_ids=kept_records.index.to_numpy().astype(np.int64),
        patient_ids=subjects,
        folds=np.asarray([stable_fold(int(s)) for s in subjects], dtype=np.int64),
        age=np.full(n, np.nan, dtype=np.float32),
        sex=np.full(n, -1, dtype=np.int8),
        sampling_rate=grid.sampling_rate,
        task=task,
        skipped=tuple(sorted(errors)),
        adaptations=dict(grid.adaptations),
    )


def _raise_first(errors: Mapping[int, str]) -> None:
    first = next(iter(errors.values()))
    more = f" (and {len(errors) - 1} more such record(s))" if len(errors) > 1 else ""
    raise EcgDataError(f"{first}{more}\n(on_error='skip' leaves such records out)")


__all__ = [
    "KEYWORD_TABLE",
    "MIMIC_LEAD_ORDER",
    "NORM_CLASS",
    "REPORT_COLUMNS",
    "TASKS",
    "TASK_CLASSES",
    "XPLAIM_KEYWORDS",
    "LabelRule",
    "load_mimic",
    "read_measurements",
    "read_record_list",
    "read_signal",
    "report_labels",
    "report_text",
    "task_labels",
    "xplaim_labels",
    "xplaim_text",
]
