"""PhysioNet/CinC Challenge 2020/2021 12-lead ECGs: WFDB headers with SNOMED CT diagnoses.

Format (one record = two files, found recursively under the root, since the challenge ships
one subfolder per source):

* ``NAME.hea``: a WFDB header; its signal lines name the leads, gain and units (e.g.
  ``1000.0(0)/mV``), and its comment lines carry ``# Age: 59``, ``# Sex: Female`` and
  ``# Dx: 164934002,426783006`` (SNOMED CT codes, comma-separated).
* ``NAME.mat``: the samples, a MATLAB v4 matrix ``val`` of shape ``(12, n)``; ``wfdb``
  reads both with ``wfdb.rdrecord``.

Sources are told apart by the name's prefix: CPSC 2018 (``A0001``), CPSC-Extra (``Q0001``),
INCART (``I0001``), PTB (``S0001``), PTB-XL (``HR00001``), Georgia (``E00001``) and
Chapman-Shaoxing/Ningbo (``JS00001``). Records are 6 s to 30 min long at 257 to 1000 Hz;
every one is brought onto one grid (rate, length, ``LEADS`` order, mV) by
:func:`imn.data.conform.conform_signal`.

Labels (``task="scored"``, the default): the 30 SNOMED CT codes the Challenge 2021 scores,
with the four pairs it scores as one diagnosis merged, so 26 classes (see ``SCORED_CODES`` and
``EQUIVALENT_CODES``). A record's label columns are the classes of its scored codes; only
classes that occur among the records returned become columns, sorted alphabetically.

Unscored codes: every code outside the scored table (including codes unknown to the
challenge's tables) falls into one bucket, ``"other"``, which is *counted* (per code,
:func:`dx_counts`, and logged by :func:`load_cinc`) but is **not** a label column: "other"
lumps together ~100 unrelated findings (LVH, ST changes, left atrial enlargement, ...), so
as one class it would mean nothing clinically, and it would be positive for most
Chapman-Shaoxing/Ningbo records. A record whose codes are all unscored is kept, with an
all-zero label row, as the challenge itself scores such records (a negative for every
scored class); this differs from the PTB-XL reader, which drops records without a label of
the task. ``task="scored_other"`` is the same plus one last column, ``"other"``: 1 for a
record carrying any unscored code (for experiments that want the bucket as a class).

Identifiers: the format has no patient identifiers (``patient_ids`` is -1) and no folds;
``folds`` is :func:`imn.data.conform.stable_fold` of the record name, so the default splits
(1-8 / 9 / 10) work and a record keeps its fold when others are added. ``ecg_ids`` encode the
name reversibly as ``source code * 10**7 + number`` (``HR06000`` -> 50006000, see
``SOURCES``, :func:`record_id` and :func:`record_name`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import wfdb
from tqdm.auto import tqdm

from imn.data.conform import (
    Conform,
    check_on_error,
    multi_hot,
    read_wfdb,
    report_unreadable,
    stable_fold,
)
from imn.data.dataset import RECORD_SECONDS, EcgDataError, EcgDataset

logger = logging.getLogger(__name__)

TASKS: tuple[str, ...] = ("scored", "scored_other")
OTHER = "other"

# The 30 SNOMED CT codes scored in the PhysioNet/CinC Challenge 2021 and their abbreviations,
# from physionetchallenges/evaluation-2021, dx_mapping_scored.csv (commit 09de852; columns
# Dx, SNOMEDCTCode, Abbreviation). Its Notes column and weights.csv (commit e024f4e, rows such
# as "713427006|59118001") say which pairs are scored as the same diagnosis.
SCORED_CODES: dict[str, str] = {
    "164889003": "AF",      # atrial fibrillation
    "164890007": "AFL",     # atrial flutter
    "6374002": "BBB",       # bundle branch block
    "426627000": "Brady",   # bradycardia
    "733534002": "CLBBB",   # complete left bundle branch block
    "713427006": "CRBBB",   # complete right bundle branch block
    "270492004": "IAVB",    # 1st degree av block
    "713426002": "IRBBB",   # incomplete right bundle branch block
    "39732003": "LAD",      # left axis deviation
    "445118002": "LAnFB",   # left anterior fascicular block
    "164909002": "LBBB",    # left bundle branch block
    "251146004": "LQRSV",   # low qrs voltages
    "698252002": "NSIVCB",  # nonspecific intraventricular conduction disorder
    "426783006": "NSR",     # sinus rhythm
    "284470004": "PAC",     # premature atrial contraction
    "10370003": "PR",       # pacing rhythm
    "365413008": "PRWP",    # poor R wave progression
    "427172004": "PVC",     # premature ventricular contractions
    "164947007": "LPR",     # prolonged pr interval
    "111975006": "LQT",     # prolonged qt interval
    "164917005": "QAb",     # qwave abnormal
    "47665007": "RAD",      # right axis deviation
    "59118001": "RBBB",     # right bundle branch block
    "427393009": "SA",      # sinus arrhythmia
    "426177001": "SB",      # sinus bradycardia
    "427084000": "STach",   # sinus tachycardia
    "63593006": "SVPB",     # supraventricular premature beats
    "164934002": "TAb",     # t wave abnormal
    "59931005": "TInv",     # t wave inversion
    "17338001": "VPB",      # ventricular premature beats
}
# The challenge's equivalence pairs, code -> the code it is merged into. The merged class is
# named by the broader term (complete RBBB is an RBBB; SVPB and VPB are the challenge's other
# names for PAC and PVC), never "CRBBB|RBBB", since class names end up in file names.
EQUIVALENT_CODES: dict[str, str] = {
    "713427006": "59118001",   # CRBBB -> RBBB
    "733534002": "164909002",  # CLBBB -> LBBB
    "63593006": "284470004",   # SVPB -> PAC
    "17338001": "427172004",   # VPB -> PVC
}
# Scored code -> the label class it counts for (26 classes).
CLASS_OF_CODE: dict[str, str] = {
    code: SCORED_CODES[EQUIVALENT_CODES.get(code, code)] for code in SCORED_CODES
}
SCORED_CLASSES: tuple[str, ...] = tuple(sorted(set(CLASS_OF_CODE.values())))

# Name prefix -> (id block, digits in the number, source). Record names have a fixed number of
# digits per source (A0001, HR00001), so the integer id can be turned back into the name.
SOURCES: dict[str, tuple[int, int, str]] = {
    "A": (1, 4, "CPSC 2018"),
    "Q": (2, 4, "CPSC-Extra"),
    "I": (3, 4, "St Petersburg INCART"),
    "S": (4, 4, "PTB"),
    "HR": (5, 5, "PTB-XL"),
    "E": (6, 5, "Georgia"),
    "JS": (7, 5, "Chapman-Shaoxing/Ningbo"),
}
_ID_BLOCK = 10**7
_NAME = re.compile(r"^([A-Z]+)(\d+)$")
_UNKNOWN_VALUES = {"", "unknown", "nan", "none"}


# ======================================================================== identifiers
def record_id(name: str) -> int:
    """The int64 ``ecg_id`` of a record name: ``source code * 10**7 + number``.

    ``"HR06000"`` -> 50006000, ``"E07500"`` -> 60007500, ``"JS20000"`` -> 70020000.
    Raises ``EcgDataError`` for a name outside the challenge's naming scheme.
    """
    match = _NAME.match(name)
    if match is None or match.group(1) not in SOURCES:
        raise EcgDataError(
            f"record {name}: the name is not a PhysioNet/CinC Challenge record name "
            f"(prefix {', '.join(SOURCES)} and a number), so it has no integer id"
        )
    block, digits, _ = SOURCES[match.group(1)]
    if len(match.group(2)) != digits:
        raise EcgDataError(
            f"record {name}: {match.group(1)} records have {digits}-digit numbers, so this "
            f"name has no reversible integer id"
        )
    return block * _ID_BLOCK + int(match.group(2))


def record_name(ecg_id: int) -> str:
    """Inverse of :func:`record_id`: 50006000 -> ``"HR06000"``."""
    block, number = divmod(int(ecg_id), _ID_BLOCK)
    for prefix, (code, digits, _) in SOURCES.items():
        if code == block and number < 10**digits:
            return f"{prefix}{number:0{digits}d}"
    raise EcgDataError(f"ecg_id {ecg_id} is not a CinC record id (see imn.data.cinc.SOURCES)")


# ======================================================================== headers and labels
@dataclasses.dataclass(frozen=True)
class CincHeader:
    """What a record's header says. ``dx`` holds the SNOMED CT codes in header order."""

    name: str
    path: Path  # the record's path without extension
    age: float
    sex: int
    dx: tuple[str, ...]

    @property
    def scored(self) -> frozenset[str]:
        """The label classes of its scored codes (equivalent codes merged)."""
        return frozenset(CLASS_OF_CODE[c] for c in self.dx if c in CLASS_OF_CODE)

    @property
    def unscored(self) -> tuple[str, ...]:
        """Its codes outside the scored table: the ``"other"`` bucket."""
        return tuple(c for c in self.dx if c not in CLASS_OF_CODE)


def parse_comments(comments: Sequence[str], where: str) -> tuple[float, int, tuple[str, ...]]:
    """``(age, sex, dx codes)`` from a header's comment lines (``Age: 59`` etc.).

    Age is NaN where unknown; sex uses PTB-XL's coding (0 male, 1 female, -1 unknown).
    Raises ``EcgDataError`` naming ``where`` when the ``Dx`` line is missing or malformed,
    or age or sex cannot be read.
    """
    fields: dict[str, str] = {}
    for line in comments:
        key, sep, value = str(line).partition(":")
        if sep:
            fields[key.strip().lower()] = value.strip()
    if "dx" not in fields:
        raise EcgDataError(f"{where}: header has no '# Dx:' comment line (SNOMED CT codes)")
    codes = tuple(c.strip() for c in fields["dx"].split(",") if c.strip())
    bad = [c for c in codes if not c.isdigit()]
    if not codes or bad:
        raise EcgDataError(f"{where}: '# Dx: {fields['dx']}' is not a comma-separated list of "
                           f"SNOMED CT codes")

    age_text = fields.get("age", "")
    if age_text.lower() in _UNKNOWN_VALUES:
        age = float("nan")
    else:
        try:
            age = float(age_text)
        except ValueError:
            raise EcgDataError(f"{where}: cannot read '# Age: {age_text}'") from None
        if not np.isfinite(age) or age < 0:
            age = float("nan")

    sex_text = fields.get("sex", "").lower()
    if sex_text in ("male", "m"):
        sex = 0
    elif sex_text in ("female", "f"):
        sex = 1
    elif sex_text in _UNKNOWN_VALUES:
        sex = -1
    else:
        raise EcgDataError(f"{where}: cannot read '# Sex: {fields.get('sex')}'")
    return age, sex, codes


def read_header(path: str | os.PathLike) -> CincHeader:
    """Read one header (``path`` with or without ``.hea``) without its signal."""
    base = Path(path)
    if base.suffix == ".hea":
        base = base.with_suffix("")
    where = f"record {base.name} ({base}.hea)"
    try:
        header = wfdb.rdheader(str(base))
    except FileNotFoundError:
        raise EcgDataError(f"{where}: header file missing") from None
    except Exception as err:  # noqa: BLE001 (wfdb raises bare ValueErrors etc. on bad headers)
        raise EcgDataError(f"{where}: wfdb cannot parse the header: "
                           f"{type(err).__name__}: {err}") from None
    age, sex, dx = parse_comments(header.comments or [], where)
    return CincHeader(name=base.name, path=base, age=age, sex=sex, dx=dx)


def find_records(root: str | os.PathLike) -> list[Path]:
    """Every record (header path without extension) under ``root``, searched recursively,
    sorted by name. Raises ``EcgDataError`` if there is none, or a name occurs twice."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise EcgDataError(f"CinC root {root} does not exist or is not a folder")
    headers = sorted(root.rglob("*.hea"), key=lambda p: (p.stem, str(p)))
    if not headers:
        raise EcgDataError(f"no WFDB headers (*.hea) found under {root}")
    seen: dict[str, Path] = {}
    for header in headers:
        if header.stem in seen:
            raise EcgDataError(f"record {header.stem} occurs twice: {seen[header.stem]} and "
                               f"{header}; record names must be unique")
        seen[header.stem] = header
    return [h.with_suffix("") for h in headers]


@dataclasses.dataclass(frozen=True)
class DxCounts:
    """Diagnosis counts over a set of records (each record counts once per class/code).

    Attributes:
      records: records counted.
      scored: label class -> records carrying it (equivalent codes merged).
      other: unscored SNOMED CT code -> records carrying it (the "other" bucket).
      other_records: records carrying at least one unscored code.
      unlabelled: records without any scored code (an all-zero label row).
    """

    records: int
    scored: dict[str, int]
    other: dict[str, int]
    other_records: int
    unlabelled: int

    @classmethod
    def of(cls, headers: Sequence[CincHeader]) -> DxCounts:
        scored: Counter[str] = Counter()
        other: Counter[str] = Counter()
        for header in headers:
            scored.update(header.scored)
            other.update(set(header.unscored))
        return cls(
            records=len(headers),
            scored=dict(sorted(scored.items())),
            other=dict(other.most_common()),
            other_records=sum(1 for h in headers if h.unscored),
            unlabelled=sum(1 for h in headers if not h.scored),
        )

    def summary(self) -> str:
        top = ", ".join(f"{code} x{n}" for code, n in list(self.other.items())[:10])
        more = f", ... ({len(self.other)} codes)" if len(self.other) > 10 else ""
        return (f"{self.records} records; {self.other_records} carry unscored SNOMED CT codes "
                f"(the '{OTHER}' bucket): {top or 'none'}{more}; "
                f"{self.unlabelled} records have no scored code (all-zero labels)")


def dx_counts(root: str | os.PathLike) -> DxCounts:
    """Count scored classes and unscored ("other") codes over every record under ``root``,
    reading headers only. Raises ``EcgDataError`` for an unreadable header."""
    return DxCounts.of([read_header(p) for p in find_records(root)])


# ======================================================================== signals
def read_signal(header: CincHeader, grid: Conform) -> np.ndarray:
    """One record's samples on ``grid``: float32 ``(grid.length, 12)`` in mV, ``LEADS`` order.

    Raises ``EcgDataError`` naming the record for a missing or unreadable signal file, lead
    names other than the 12 standard leads, unknown units, NaN samples, a wrong shape
    (:func:`imn.data.conform.read_wfdb`).
    """
    return read_wfdb(header.path, grid, f"record {header.name} ({header.path}.hea)")


# ======================================================================== public entry point
def load_cinc(
    root: str | os.PathLike,
    task: str = "scored",
    sampling_rate: int = 100,
    *,
    seconds: float = RECORD_SECONDS,
    crop: str = "center",
    pad: bool = True,
    on_error: str = "raise",
    progress: bool = False,
    strict: bool = False,
) -> EcgDataset:
    """Load every PhysioNet/CinC Challenge 2020/2021 record under ``root``.

    Args:
      root: folder searched recursively for ``*.hea`` + ``*.mat`` records.
      task: ``"scored"``: multi-label over the challenge's scored classes (see the module
        docstring for the merged codes and the "other" bucket, counted but not a column);
        ``"scored_other"``: the same plus a last column ``"other"`` (any unscored code).
      sampling_rate: target rate in Hz; records are resampled to it.
      seconds: target length; ``L = sampling_rate * seconds`` samples.
      crop: ``"center"`` or ``"start"``: which part of a longer record is kept.
      pad: zero-pad shorter records at the end (``False``: such records are errors).
      on_error: ``"raise"``: an unreadable record raises ``EcgDataError`` naming every bad
        record; ``"skip"``: they are left out, logged, and their ids listed in
        ``dataset.skipped`` (-1 for a name without an integer id).
      progress: show a tqdm bar while records are read.
      strict: refuse any record that needs adapting (resampling, a crop, padding, an
        assumed rate or lead order) instead of counting it in ``dataset.adaptations``.

    Returns:
      An ``EcgDataset`` with float32 ``signals (N, L, 12)`` in mV in ``LEADS`` order, float32
      multi-hot ``labels (N, K)`` over the sorted scored classes that occur, ``ecg_ids``
      from :func:`record_id`, ``patient_ids`` -1, ``folds`` from ``stable_fold(name)``,
      ``age`` (NaN if unknown), ``sex`` (0 male, 1 female, -1 unknown), sorted by ecg_id.

    Raises:
      EcgDataError: no records, an unknown task, unreadable records (``on_error="raise"``).
    """
    if task not in TASKS:
        raise EcgDataError(f"unknown CinC task {task!r}; valid tasks: {', '.join(TASKS)}")
    check_on_error(on_error)
    grid = Conform(sampling_rate=sampling_rate, seconds=seconds, crop=crop, pad=pad, strict=strict)
    paths = find_records(root)

    headers: list[CincHeader] = []
    ids: list[int] = []
    signals = np.zeros((len(paths), grid.length, 12), dtype=np.float32)
    errors: dict[str, str] = {}
    for path in tqdm(paths, desc="CinC records", disable=not progress):
        try:
            try:
                ecg_id = record_id(path.name)
            except EcgDataError as err:
                raise EcgDataError(f"{err} ({path}.hea)") from None
            header = read_header(path)
            signals[len(headers)] = read_signal(header, grid)
        except EcgDataError as err:
            errors[path.name] = str(err)
            continue
        headers.append(header)
        ids.append(ecg_id)

    report_unreadable(list(errors.values()), f"CinC record(s) under {root}", on_error)
    grid.log_adaptations(f"CinC {root}")
    if not headers:
        raise EcgDataError(f"none of the {len(paths)} CinC records under {root} could be read")

    counts = DxCounts.of(headers)
    logger.info("CinC %s: %s", root, counts.summary())

    order = np.argsort(np.asarray(ids, dtype=np.int64), kind="stable")
    headers = [headers[i] for i in order]
    signals = signals[: len(order)][order]
    classes = tuple(sorted(counts.scored))
    if task == "scored_other" and counts.other_records:
        classes += (OTHER,)
    labels = multi_hot([h.scored | ({OTHER} if h.unscored else set()) for h in headers], classes)

    skipped = tuple(_id_or_minus_one(name) for name in errors) if on_error == "skip" else ()
    return EcgDataset(
        signals=signals,
        labels=labels,
        classes=classes,
        ecg_ids=np.asarray(ids, dtype=np.int64)[order],
        patient_ids=np.full(len(headers), -1, dtype=np.int64),
        folds=np.asarray([stable_fold(h.name) for h in headers], dtype=np.int64),
        age=np.asarray([h.age for h in headers], dtype=np.float32),
        sex=np.asarray([h.sex for h in headers], dtype=np.int8),
        sampling_rate=grid.sampling_rate,
        task=task,
        skipped=skipped,
        adaptations=dict(grid.adaptations),
    )


def _id_or_minus_one(name: str) -> int:
    try:
        return record_id(name)
    except EcgDataError:
        return -1
