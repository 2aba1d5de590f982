"""Writing result tables: CSV with every column, Markdown with ``mean [low, high]`` cells."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

CI_SUFFIXES = ("_ci_low", "_ci_high")


# A perturbation curve that moves less than this (in probability) over its whole length is
# flat: a saturated output, whose AUC cannot rank attributions (tables and figures agree).
FLAT_TOLERANCE = 0.01


def curves_are_flat(curves: Any, tolerance: float = FLAT_TOLERANCE) -> bool:
    """True when every row of ``curves (n, steps + 1)`` stays within ``tolerance`` of its
    range (``max - min < tolerance`` on every ECG)."""
    import numpy as np

    curves = np.atleast_2d(np.asarray(curves, dtype=np.float64))
    return bool(curves.size) and float(np.max(np.ptp(curves, axis=1))) < tolerance


# Suffix of a row key holding a footnote marker for a cell: row["deletion_auc_note"] = "a".
NOTE_SUFFIX = "_note"
# Suffix of a row key holding on how many of the row's ``n`` items a metric was defined
# (finite); a cell whose count falls short of ``n`` says so: "0.42 [0.30, 0.51] (41 of 50)".
DEFINED_SUFFIX = "_n_defined"


def _number(value: float, fmt: str | None = None) -> str:
    """``fmt`` ('.3f' or '.2e') when given; else three decimals, or three significant digits
    for magnitudes below 0.001 (infidelity of a saturated model is of order 1e-8: three
    decimals would print every method as 0)."""
    if fmt is not None:
        return format(value, fmt)
    if value != 0.0 and abs(value) < 1e-3:
        return f"{value:.2e}"
    return f"{value:.3f}"


def column_format(rows: list[dict[str, Any]], key: str) -> str:
    """One number format for a whole column: '.2e' when some finite non-zero value of the
    column (cells printed n/a left out; CI bounds too, a bound near 0 is no reason to print
    a correlation in scientific notation) would print as 0.000 with three decimals, else
    '.3f'."""
    values = [abs(row[key]) for row in rows if not row.get(key + NOTE_SUFFIX)
              and isinstance(row.get(key), float) and math.isfinite(row[key]) and row[key] != 0.0]
    return ".2e" if values and min(values) < 5e-4 else ".3f"


def format_cell(row: dict[str, Any], key: str, fmt: str | None = None) -> str:
    """``mean [low, high]`` when the row has CI bounds for ``key``, else the plain value;
    ``n/a`` plus the marker when the row has a note for ``key`` (a degenerate value)."""
    value = row.get(key)
    note = row.get(key + NOTE_SUFFIX)
    if note:
        return f"n/a ({note})"
    if isinstance(value, float) and value.is_integer() and key + CI_SUFFIXES[0] not in row:
        return str(int(value))
    if isinstance(value, float):
        text = "n/a" if math.isnan(value) else _number(value, fmt)
        low, high = row.get(key + CI_SUFFIXES[0]), row.get(key + CI_SUFFIXES[1])
        if isinstance(low, float) and isinstance(high, float) and not math.isnan(value):
            text += f" [{_number(low, fmt)}, {_number(high, fmt)}]"
        defined, total = row.get(key + DEFINED_SUFFIX), row.get("n")
        if not math.isnan(value) and defined is not None and total is not None and defined < total:
            text += f" ({int(defined)} of {int(total)})"
        return text
    return "" if value is None else str(value)


def markdown_cell(text: str) -> str:
    """``text`` safe inside a Markdown table cell: a bare ``|`` (as in ``|rho|``) would end
    the cell, so that row has more cells than the delimiter row and GitHub renders no table."""
    return str(text).replace("|", "\\|")


def write_table(rows: list[dict[str, Any]], stem: str | Path,
                columns: list[tuple[str, str]] | None = None, *, caption: str | None = None,
                footnotes: dict[str, str] | None = None,
                one_format_per_column: bool = False) -> list[Path]:
    """Write ``stem.csv`` (every key of every row) and ``stem.md`` (``columns``: (key,
    header) pairs; default every key that is not a CI bound). Returns both paths.

    ``caption``: a line above the Markdown table; ``footnotes``: marker -> text, listed
    under it (cells refer to them through ``row[key + NOTE_SUFFIX]``);
    ``one_format_per_column``: every number of a column in the format of ``column_format``.
    """
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    keys = list(dict.fromkeys(key for row in rows for key in row))
    csv_path, md_path = stem.with_suffix(".csv"), stem.with_suffix(".md")
    with open(csv_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    if columns is None:
        columns = [(key, key) for key in keys if not key.endswith(CI_SUFFIXES)]
    formats = {key: column_format(rows, key) if one_format_per_column else None
               for key, _ in columns}
    lines = [caption, ""] if caption else []
    lines += ["| " + " | ".join(markdown_cell(header) for _, header in columns) + " |",
              "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(markdown_cell(format_cell(row, key, formats[key])) for key, _ in columns)
              + " |" for row in rows]
    if footnotes:
        lines += [""] + [f"({marker}) {text}" for marker, text in footnotes.items()]
    md_path.write_text("\n".join(lines) + "\n")
    return [csv_path, md_path]
