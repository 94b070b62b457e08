"""One output style: a result as a key/value list, rows as tables, nothing cut at 80 columns."""

from __future__ import annotations

import re

from mltk.output import _fmt, render

LONG_PATH = "/home/someone/projects/experiments/" + "deep/" * 20 + "run-20260101-120000"


def _columns(table_lines: list[str]) -> list[str]:
    """Each column's text read top to bottom (a box table: cells between │ characters)."""
    cols: list[list[str]] = []
    for line in table_lines:
        if "│" not in line:
            continue
        cells = line.split("│")[1:-1]
        cols += [[] for _ in range(len(cells) - len(cols))]
        for i, cell in enumerate(cells):
            cols[i].append(cell.strip())
    return ["".join(c) for c in cols]


def test_a_result_and_a_wide_table_lose_no_character_at_80_columns():
    rows = [
        {"model": f"model number {i} with a long descriptive name", "mse": 0.123456789 * i,
         "count": 1260.0 + i, "path": LONG_PATH + str(i), "note": None, "ok": i % 2 == 0,
         "extra": "x" * 30, "more": 12345.678}
        for i in range(1, 4)
    ]  # fmt: skip
    data = {"run": LONG_PATH, "accuracy": 0.964444, "steps": 1260.0, "missing": None,
            "ranks": [10, 10, 3], "results": rows}  # fmt: skip
    text = render(data, width=80)
    lines = text.splitlines()
    assert max(len(ln) for ln in lines if ln.strip() != LONG_PATH) <= 80
    # the key/value list: each value whole (a long one on its own line)
    assert f"  {LONG_PATH}" in lines and "accuracy  0.9644" in lines
    assert "steps     1260" in lines and "missing   -" in lines and "ranks     10, 10, 3" in lines
    # the table: every cell's characters, in order, in its column
    start = [ln.strip() for ln in lines].index("results")
    cols = _columns(lines[start + 1 :])
    header = ["model", "mse", "count", "path", "note", "ok", "extra", "more"]
    assert len(cols) == len(header)
    for j, key in enumerate(header):
        column = re.sub(r"\s", "", cols[j])
        assert column.startswith(key), (key, column[:40])
        pos = len(key)
        for row in rows:
            cell = re.sub(r"\s", "", _fmt(row[key]))
            found = column.find(cell, pos)
            assert found == pos or (found > pos and not column[pos:found].strip("-")), (key, cell)
            pos = found + len(cell)


def test_rows_too_wide_for_a_table_print_as_blocks():
    """Twelve columns cannot share 80: each row becomes a key/value block, every value whole."""
    rows = [
        {**{f"icr_concept_{k}_cross": 0.01 * k + i for k in range(12)}, "model": LONG_PATH}
        for i in range(2)
    ]
    lines = render({"steps": 20, "runs": rows}, width=80).splitlines()
    assert "│" not in "".join(lines) and "runs 1 of 2" in lines and "runs 2 of 2" in lines
    assert "  icr_concept_11_cross  0.11" in lines and "  icr_concept_11_cross  1.11" in lines
    assert f"    {LONG_PATH}" in lines and max(len(x) for x in lines if LONG_PATH not in x) <= 80


def test_numbers_print_as_people_read_them():
    assert _fmt(1260.0) == "1260" and _fmt(7.52701) == "7.527" and _fmt(0.000123456) == "0.0001235"
    assert _fmt(None) == "-" and _fmt(True) == "yes" and _fmt(12345.6) == "12346"
    assert _fmt(float("nan")) == "nan" and _fmt([1, 2.5]) == "1, 2.5"


def test_mappings_and_weighted_words_keep_their_names():
    assert _fmt({"label": "2", "probability": 0.98}) == "2: 0.98"
    assert _fmt({"yes": 0.9, "no": 0.0999}) == "yes 0.9, no 0.0999"
    assert _fmt([["not", 0.91], ["tea", 0.5]]) == "not 0.91, tea 0.5"
    assert _fmt([["a", "b"], ["c", "d"]]) == "a, b, c, d"  # not weighted words
