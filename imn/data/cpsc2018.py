"""The China Physiological Signal Challenge 2018 (CPSC 2018) training set, original format.

Format: one MATLAB file per record, ``A0001.mat`` ... ``A6877.mat`` (the download splits them
over ``TrainingSet1..3/``; they are found recursively), each holding a struct ``ECG`` with
fields ``sex`` (``'Male'``/``'Female'``), ``age`` and ``data``: float ``(12, n)`` in mV at
500 Hz, 6-60 s long, leads in the order I, II, III, aVR, aVL, aVF, V1-V6 (``CPSC_LEADS``; the
order the PhysioNet/CinC Challenge 2020 headers give for the same records, e.g. ``A0001.hea``
in the challenge's data description). Records are brought onto one grid (rate, length) by
:func:`imn.data.conform.conform_signal`.

Labels come from ``REFERENCE.csv`` (columns ``Recording, First_label, Second_label,
Third_label``; the second and third may be empty), whose numbers 1-9 stand for the nine
classes in ``CPSC_CLASSES``: 1 Normal, 2 AF (atrial fibrillation), 3 I-AVB (first-degree
atrioventricular block), 4 LBBB, 5 RBBB, 6 PAC (premature atrial contraction), 7 PVC
(premature ventricular contraction), 8 STD (ST-segment depression), 9 STE (ST-segment
elevation); source: the challenge description (Liu F. et al., "An open access database for
evaluating the algorithms of electrocardiogram rhythm and morphology abnormality detection",
J. Med. Imaging Health Inform. 8(7):1368-1373, 2018, table 1; http://www.icbeb.org/Challenge.html).
Classes that occur become label columns, sorted alphabetically (as in the PTB-XL reader).

The labels file sits beside the data in the download but is a separate argument here, so a
read-only data folder can be paired with any labels file. A ``.mat`` file without a row in it
is an unreadable record (``on_error``); rows without a ``.mat`` file are only counted and
logged, since a partial download (one ``TrainingSet``) with the full labels file is normal.

Identifiers: ``ecg_ids`` are the record numbers (``A1980`` -> 1980; name = ``f"A{id:04d}"``),
``patient_ids`` -1 (none published), ``folds`` = :func:`imn.data.conform.stable_fold` of the
record name (the same fold the CinC reader gives the same record).
"""

from __future__ import annotations

import csv
import logging
import os
import re
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from imn.data.conform import (
    Conform,
    check_on_error,
    conform_signal,
    multi_hot,
    report_unreadable,
    stable_fold,
)
from imn.data.dataset import LEADS, NUM_LEADS, RECORD_SECONDS, EcgDataError, EcgDataset

logger = logging.getLogger(__name__)

# Label number (1-9) in REFERENCE.csv -> class name; see the module docstring for the source.
CPSC_CLASSES: dict[int, str] = {
    1: "Normal", 2: "AF", 3: "I-AVB", 4: "LBBB", 5: "RBBB", 6: "PAC", 7: "PVC", 8: "STD", 9: "STE",
}
CPSC_LEADS: tuple[str, ...] = LEADS
SAMPLING_RATE = 500
REFERENCE_CSV = "REFERENCE.csv"
_REFERENCE_COLUMNS = ("Recording", "First_label", "Second_label", "Third_label")
_NAME = re.compile(r"^A(\d{4})$")


def record_id(name: str) -> int:
    """``"A1980"`` -> 1980. Raises ``EcgDataError`` for a name that is not ``A`` + 4 digits."""
    match = _NAME.match(name)
    if match is None:
        raise EcgDataError(f"record {name!r}: not a CPSC 2018 record name (A + 4 digits)")
    return int(match.group(1))


def record_name(ecg_id: int) -> str:
    """Inverse of :func:`record_id`: 1980 -> ``"A1980"``."""
    return f"A{int(ecg_id):04d}"


def read_reference(path: str | os.PathLike) -> dict[str, frozenset[str]]:
    """``REFERENCE.csv`` -> record name -> its set of class names.

    Raises ``EcgDataError`` naming the file and row for a missing file or column, a label
    number outside 1-9, a row without any label, or a record listed twice.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise EcgDataError(f"CPSC 2018 labels file {path} is missing")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise EcgDataError(f"{path} is empty") from None
        missing = [c for c in _REFERENCE_COLUMNS[:2] if c not in header]
        if missing:
            raise EcgDataError(f"{path} lacks the column(s) {missing}; expected "
                               f"{', '.join(_REFERENCE_COLUMNS)}")
        name_col = header.index("Recording")
        label_cols = [header.index(c) for c in _REFERENCE_COLUMNS[1:] if c in header]
        labels: dict[str, frozenset[str]] = {}
        for line, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue
            where = f"{path} line {line}"
            name = row[name_col].strip() if name_col < len(row) else ""
            if not name:
                raise EcgDataError(f"{where}: no recording name")
            if name in labels:
                raise EcgDataError(f"{where}: record {name} is listed twice")
            names = set()
            for col in label_cols:
                cell = row[col].strip() if col < len(row) else ""
                if not cell:
                    continue
                try:
                    number = int(float(cell))
                except ValueError:
                    number = -1
                if number not in CPSC_CLASSES:
                    raise EcgDataError(f"{where}: record {name} has label {cell!r}; CPSC 2018 "
                                       f"labels are the numbers 1-9")
                names.add(CPSC_CLASSES[number])
            if not names:
                raise EcgDataError(f"{where}: record {name} has no label")
            labels[name] = frozenset(names)
    return labels


def read_mat(path: str | os.PathLike) -> tuple[np.ndarray, float, int]:
    """One ``A*.mat`` file -> ``(data (n, 12) float64 mV, age, sex)``.

    Age is NaN where missing or negative; sex 0 male, 1 female, -1 unknown. Raises
    ``EcgDataError`` naming the record for a missing or unreadable file, a file without the
    ``ECG`` struct or its fields, or data that is not ``(12, n)``.
    """
    from scipy.io import loadmat  # keep scipy off the import path of the package

    path = Path(path)
    where = f"record {path.stem} ({path})"
    if not path.is_file():
        raise EcgDataError(f"{where}: file missing")
    try:
        content = loadmat(str(path), squeeze_me=False)
    except Exception as err:  # noqa: BLE001 (scipy raises ValueError, TypeError, ... on bad files)
        raise EcgDataError(f"{where}: scipy cannot read it: {type(err).__name__}: {err}") \
            from None
    ecg = content.get("ECG")
    names = getattr(getattr(ecg, "dtype", None), "names", None) or ()
    missing = [f for f in ("sex", "age", "data") if f not in names]
    if ecg is None or missing:
        raise EcgDataError(f"{where}: no MATLAB struct 'ECG' with fields sex, age, data "
                           f"(missing {missing or ['ECG']})")
    record = ecg.reshape(-1)[0]
    try:
        data = np.asarray(record["data"], dtype=np.float64)
    except (TypeError, ValueError):
        raise EcgDataError(f"{where}: ECG.data is not numeric") from None
    if data.ndim != 2 or data.shape[0] != NUM_LEADS:
        raise EcgDataError(f"{where}: ECG.data has shape {data.shape}; expected "
                           f"({NUM_LEADS}, samples)")
    return data.T, _age(record["age"]), _sex(record["sex"], where)


def _age(value: object) -> float:
    try:
        age = float(np.asarray(value, dtype=np.float64).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        return float("nan")
    return age if np.isfinite(age) and age >= 0 else float("nan")


def _sex(value: object, where: str) -> int:
    array = np.asarray(value).reshape(-1)
    text = str(array[0]).strip().lower() if array.size else ""
    if text in ("male", "m"):
        return 0
    if text in ("female", "f"):
        return 1
    if text in ("", "unknown", "nan"):
        return -1
    raise EcgDataError(f"{where}: cannot read ECG.sex {text!r}")


def load_cpsc2018(
    root: str | os.PathLike,
    sampling_rate: int = 100,
    *,
    reference: str | os.PathLike | None = None,
    seconds: float = RECORD_SECONDS,
    crop: str = "center",
    pad: bool = True,
    on_error: str = "raise",
    progress: bool = False,
    strict: bool = False,
) -> EcgDataset:
    """Load every CPSC 2018 record (``A*.mat``) under ``root`` with its labels.

    Args:
      root: folder searched recursively for ``A*.mat``.
      sampling_rate: target rate in Hz (the data are at 500 Hz and resampled).
      reference: the labels file; default ``root / "REFERENCE.csv"``.
      seconds: target length; ``L = sampling_rate * seconds`` samples.
      crop: ``"center"`` or ``"start"``: which part of a longer record is kept.
      pad: zero-pad shorter records at the end (``False``: such records are errors).
      on_error: ``"raise"``: an unreadable record (or one without a labels row) raises
        ``EcgDataError`` naming every bad record; ``"skip"``: they are left out, logged,
        and listed in ``dataset.skipped``.
      progress: show a tqdm bar while records are read.
      strict: refuse any record that needs adapting (resampling, a crop, padding, an
        assumed rate or lead order: a CPSC
        ``.mat`` file states neither, so strict loading refuses every CPSC record) instead of counting it in ``dataset.adaptations``.

    Returns:
      An ``EcgDataset`` with float32 ``signals (N, L, 12)`` in mV in ``LEADS`` order, float32
      multi-hot ``labels (N, K)`` over the sorted classes that occur, ``ecg_ids`` (record
      numbers), ``patient_ids`` -1, ``folds`` from ``stable_fold(name)``, ``age`` (NaN if
      unknown), ``sex`` (0 male, 1 female, -1 unknown), sorted by ecg_id.

    Raises:
      EcgDataError: no records, a missing or malformed labels file, unreadable records.
    """
    check_on_error(on_error)
    grid = Conform(sampling_rate=sampling_rate, seconds=seconds, crop=crop, pad=pad, strict=strict)
    root = Path(root).expanduser()
    if not root.is_dir():
        raise EcgDataError(f"CPSC 2018 root {root} does not exist or is not a folder")
    reference = Path(reference) if reference is not None else root / REFERENCE_CSV
    labels_of = read_reference(reference)

    files: dict[str, Path] = {}
    for path in sorted(root.rglob("*.mat")):
        if path.stem in files:
            raise EcgDataError(f"record {path.stem} occurs twice: {files[path.stem]} and "
                               f"{path}; record names must be unique")
        files[path.stem] = path
    if not files:
        raise EcgDataError(f"no CPSC 2018 records (*.mat) found under {root}")
    absent = sorted(set(labels_of) - set(files))
    if absent:
        logger.info("%d record(s) listed in %s have no .mat file under %s (e.g. %s)",
                    len(absent), reference, root, ", ".join(absent[:5]))

    rows: list[tuple[int, str, float, int]] = []
    signals = np.zeros((len(files), grid.length, NUM_LEADS), dtype=np.float32)
    errors: dict[str, str] = {}
    for name, path in tqdm(files.items(), desc="CPSC 2018 records", disable=not progress):
        where = f"record {name} ({path})"
        try:
            ecg_id = record_id(name)
            if name not in labels_of:
                raise EcgDataError(f"{where}: no row in {reference}")
            data, age, sex = read_mat(path)
            grid.note(f"assumed {SAMPLING_RATE} Hz and leads {', '.join(CPSC_LEADS)} (a CPSC "
                      ".mat file states neither)", where)
            signals[len(rows)] = conform_signal(data, SAMPLING_RATE, CPSC_LEADS, grid, where)
        except EcgDataError as err:
            errors[name] = str(err)
            continue
        rows.append((ecg_id, name, age, sex))

    report_unreadable(list(errors.values()), f"CPSC 2018 record(s) under {root}", on_error)
    grid.log_adaptations(f"CPSC 2018 {root}")
    if not rows:
        raise EcgDataError(f"none of the {len(files)} CPSC 2018 records under {root} could be read")

    order = np.argsort([r[0] for r in rows], kind="stable")
    rows = [rows[i] for i in order]
    signals = signals[: len(order)][order]
    classes = tuple(sorted(set().union(*(labels_of[name] for _, name, _, _ in rows))))
    labels = multi_hot([labels_of[name] for _, name, _, _ in rows], classes)

    skipped = tuple(_id_or_minus_one(name) for name in errors) if on_error == "skip" else ()
    return EcgDataset(
        signals=signals,
        labels=labels,
        classes=classes,
        ecg_ids=np.asarray([r[0] for r in rows], dtype=np.int64),
        patient_ids=np.full(len(rows), -1, dtype=np.int64),
        folds=np.asarray([stable_fold(r[1]) for r in rows], dtype=np.int64),
        age=np.asarray([r[2] for r in rows], dtype=np.float32),
        sex=np.asarray([r[3] for r in rows], dtype=np.int8),
        sampling_rate=grid.sampling_rate,
        task="cpsc2018",
        skipped=skipped,
        adaptations=dict(grid.adaptations),
    )


def _id_or_minus_one(name: str) -> int:
    try:
        return record_id(name)
    except EcgDataError:
        return -1
