"""Writing result tables: CSV with every column, Markdown with ``mean [low, high]`` cells."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

CI_SUFFIXES = ("_ci_low", "_ci_high")


def _number(value: float) -> str:
    """Three decimals, or three significant digits for magnitudes below 0.001 (infidelity of
    a saturated model is of order 1e-8: three decimals would print every method as 0)."""
    if value != 0.0 and abs(value) < 1e-3:
        return f"{value:.2e}"
    return f"{value:.3f}"


def format_cell(row: dict[str, Any], key: str) -> str:
    """``mean [low, high]`` when the row has CI bounds for ``key``, else the plain value."""
    value = row.get(key)
    if isinstance(value, float) and value.is_integer() and key + CI_SUFFIXES[0] not in row:
        return str(int(value))
    if isinstance(value, float):
        text = "n/a" if math.isnan(value) else _number(value)
        low, high = row.get(key + CI_SUFFIXES[0]), row.get(key + CI_SUFFIXES[1])
        if isinstance(low, float) and isinstance(high, float) and not math.isnan(value):
            text += f" [{_number(low)}, {_number(high)}]"
        return text
    return "" if value is None else str(value)


def write_table(rows: list[dict[str, Any]], stem: str | Path,
                columns: list[tuple[str, str]] | None = None) -> list[Path]:
    """Write ``stem.csv`` (every key of every row) and ``stem.md`` (``columns``: (key,
    header) pairs; default every key that is not a CI bound). Returns both paths."""
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
    lines = ["| " + " | ".join(header for _, header in columns) + " |",
             "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(format_cell(row, key) for key, _ in columns) + " |" for row in rows]
    md_path.write_text("\n".join(lines) + "\n")
    return [csv_path, md_path]
