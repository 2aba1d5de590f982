"""Table cells: mean and CI formatting."""

from __future__ import annotations

from imn.report import format_cell, write_table


def test_cells_keep_three_decimals_and_show_tiny_values_in_scientific_notation():
    row = {"auroc": 0.81234, "auroc_ci_low": 0.7, "auroc_ci_high": 0.9,
           "infidelity": 5.9e-9, "infidelity_ci_low": 6.6e-12, "infidelity_ci_high": 1.5e-8,
           "n": 8.0, "sensitivity": float("nan"), "zero": 0.0, "zero_ci_low": 0.0, "zero_ci_high": 0.0}
    assert format_cell(row, "auroc") == "0.812 [0.700, 0.900]"
    # Three decimals would print every method's infidelity as 0.000.
    assert format_cell(row, "infidelity") == "5.90e-09 [6.60e-12, 1.50e-08]"
    assert format_cell(row, "n") == "8"
    assert format_cell(row, "sensitivity") == "n/a"
    assert format_cell(row, "zero") == "0.000 [0.000, 0.000]"


def test_a_pipe_in_a_header_or_cell_keeps_the_markdown_table_one_grid(tmp_path):
    """``|rho|`` in a header split the row into more cells than the delimiter row has, and
    GitHub then shows the whole table as plain text."""
    rows = [{"method": "a|b", "score": 0.5}]
    _, md_path = write_table(rows, tmp_path / "table",
                             [("method", "method"), ("score", "randomisation |mean \u03c1|")])
    lines = md_path.read_text().splitlines()
    grid = [line.replace("\\|", "") for line in lines if line.startswith("|")]
    assert len(grid) == 3
    assert {line.count("|") for line in grid} == {3}
    assert "randomisation \\|mean \u03c1\\|" in lines[0]
