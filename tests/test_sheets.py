"""Rows from spreadsheets: real .xlsx files written by openpyxl, read like a CSV would be."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from pipeline import sheets
from pipeline.api import plan_file
from pipeline.errors import RecipeError, RowError
from pipeline.rows import read_rows


def workbook(path: Path, sheets_: dict[str, list[list[Any]]]) -> Path:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets_.items():
        ws = book.create_sheet(name)
        for row in rows:
            ws.append(row)
    book.save(path)
    return path


def recipe(tmp: Path, rows: str, prompt: str = "{{ product }}") -> Path:
    path = tmp / "r.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        version: 1
        name: t
        rows: {rows}
        steps: [{{id: a, op: generate, prompt: "{prompt}"}}]
        """),
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        ("shoe", "shoe"),
        (3, "3"),
        (3.0, "3"),
        (2.5, "2.5"),
        (-0.0, "0"),
        (1e20, "1e+20"),
        (True, "TRUE"),
        (False, "FALSE"),
        (dt.datetime(2026, 3, 1), "2026-03-01"),
        (dt.datetime(2026, 3, 1, 14, 30), "2026-03-01 14:30:00"),
        (dt.date(2026, 3, 1), "2026-03-01"),
        (dt.time(9, 5), "09:05:00"),
        (dt.timedelta(hours=26, minutes=3), "26:03:00"),
    ],
)
def test_cell_text_is_what_a_csv_export_holds(value: Any, text: str):
    assert sheets.cell_text(value) == text


@pytest.mark.parametrize(("number", "letters"), [(1, "A"), (26, "Z"), (27, "AA"), (16384, "XFD")])
def test_column_letters(number: int, letters: str):
    assert sheets.column_letter(number) == letters


def test_xlsx_rows_plan_like_csv_rows(tmp_path: Path):
    workbook(
        tmp_path / "p.xlsx",
        {
            "Notes": [["ignored"]],
            "Products": [
                ["sku", "product", "price", "launch", "active"],
                ["A1", "shoe", 3.0, dt.date(2026, 3, 1), True],
                [],
                ["A2", "hat", 2.5, dt.datetime(2026, 3, 1, 14, 30), False],
            ],
        },
    )
    path = recipe(
        tmp_path,
        '{xlsx: p.xlsx, sheet: Products, key: "{{ sku }}"}',
        "{{ product }} at {{ price }} from {{ launch }} ({{ active }})",
    )
    p = plan_file(path)
    assert [(t.row_key, t.params["prompt"]) for t in p.tasks] == [
        ("A1", "shoe at 3 from 2026-03-01 (TRUE)"),
        ("A2", "hat at 2.5 from 2026-03-01 14:30:00 (FALSE)"),
    ]
    assert [r.line for r in p.rows] == [2, 4]  # the blank row 3 is skipped, lines stay true
    assert p.rows[1].where("price") == "p.xlsx:4 (sheet Products, column C price)"


def test_the_first_sheet_is_the_default_and_formulas_give_their_value(tmp_path: Path):
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "First"
    ws.append(["sku", "product"])
    ws.append(["A1", '=UPPER("x")'])  # never evaluated: openpyxl stored no value for it
    book.save(tmp_path / "p.xlsx")
    rows = read_rows({"xlsx": "p.xlsx"}, tmp_path, "r.yaml")
    assert [dict(r.values) for r in rows] == [{"sku": "A1", "product": ""}]
    assert rows[0].sheet == "First"


def test_header_may_start_below_blank_rows_and_trailing_blank_columns_are_dropped(tmp_path: Path):
    workbook(
        tmp_path / "p.xlsx",
        {"S": [[], [None, None], ["sku", "product", None, None], ["A1", "shoe", None, None]]},
    )
    rows = read_rows({"xlsx": "p.xlsx"}, tmp_path, "r.yaml")
    assert [(r.line, r.header_line, dict(r.values)) for r in rows] == [
        (4, 3, {"sku": "A1", "product": "shoe"})
    ]


def test_problems_name_file_row_sheet_and_column_letter(tmp_path: Path):
    workbook(tmp_path / "p.xlsx", {"S": [["sku", "sku", None, "note"], ["A1", "x", "y", "z", "beyond"]]})
    with pytest.raises(RowError) as info:
        read_rows({"xlsx": "p.xlsx"}, tmp_path, "r.yaml")
    assert [str(p) for p in info.value.problems] == [
        "p.xlsx:1: sheet 'S', column B: header 'sku' appears twice",
        "p.xlsx:1: sheet 'S', column C: header cell has no name",
        "p.xlsx:2: sheet 'S', column E: has a value beyond the header's last column D",
    ]


def test_good_rows_are_planned_beside_a_bad_one(tmp_path: Path):
    workbook(
        tmp_path / "p.xlsx", {"S": [["sku", "product"], ["A1", "shoe"], ["A2", "hat", "x"], ["A3", "sock"]]}
    )
    path = recipe(tmp_path, '{xlsx: p.xlsx, key: "{{ sku }}"}', "{{ prodct }}")
    with pytest.raises(RecipeError) as info:
        plan_file(path)
    assert [str(p).split(" — ")[0] for p in info.value.problems] == [
        "p.xlsx:3: sheet 'S', column C: has a value beyond the header's last column B",
        f"{path}:4:39: steps[0].prompt: undefined variable: 'prodct' is undefined (did you mean 'product'?)",
    ]
    assert info.value.problems[1].hint == "row p.xlsx:2 (sheet S); the same problem on 1 more row"


def test_cell_cap_counts_every_cell_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    workbook(tmp_path / "p.xlsx", {"S": [["a", "b", "c"]] + [["x", "y", "z"]] * 20})
    monkeypatch.setattr(sheets, "MAX_CELLS", 30)
    with pytest.raises(RowError, match=r"p\.xlsx:11: sheet 'S' has more than 30 cells"):
        read_rows({"xlsx": "p.xlsx"}, tmp_path, "r.yaml")


def test_missing_workbook_is_located_in_the_recipe(tmp_path: Path):
    path = recipe(tmp_path, "{xlsx: nope.xlsx}")
    with pytest.raises(RecipeError, match=r"r\.yaml:3:14: rows\.xlsx: xlsx file not found: "):
        plan_file(path)


def test_the_workbook_is_closed_after_a_failure(tmp_path: Path):
    """openpyxl leaves its file open when a member is broken; the reader closes it (no warning)."""
    (tmp_path / "p.xlsx").write_bytes(b"PK\x05\x06" + b"\x00" * 18)  # an empty zip
    with pytest.raises(RowError, match=r"unreadable \.xlsx file"):
        read_rows({"xlsx": "p.xlsx"}, tmp_path, "r.yaml")
