"""Rows from a spreadsheet: `rows: {xlsx: file, sheet: name}`, read with openpyxl.

The workbook is opened read-only with cached values (formulas are never evaluated),
the zip's declared sizes and the number of cells are capped before and while reading,
and every value becomes the text a CSV export would hold, so a recipe behaves the
same whichever of the two the rows came from. Problems are located like CSV ones:
`products.xlsx:4: sheet 'Products', column C: ...`.
"""

from __future__ import annotations

import datetime as dt
import difflib
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .errors import Problem, RowError

MAX_UNPACKED = 256 * 1024 * 1024  # bytes inside the zip, as its directory declares them
MAX_MEMBERS = 10_000
MAX_CELLS = 2_000_000  # cells read, empty ones included
MAX_COLUMNS = 1_000  # a row reaching column XFD would be 16,384 cells
MAX_ROWS = 1_048_576  # Excel's own limit
_OLE = b"\xd0\xcf\x11\xe0"  # an old .xls, or any password-protected workbook


class PartlyRead(RowError):
    """Some rows of the sheet are unusable; the others are kept, to plan with them."""

    def __init__(
        self, problems: list[Problem], top: int, header: list[str], records: list[tuple[int, list[str]]]
    ):
        super().__init__(problems)
        self.sheet = ""
        self.top, self.header, self.records = top, header, records


def column_letter(number: int) -> str:
    """1 -> 'A', 27 -> 'AA'."""
    out = ""
    while number > 0:
        number, rest = divmod(number - 1, 26)
        out = chr(65 + rest) + out
    return out


def cell_text(value: Any) -> str:
    """A cell's value as the text a CSV export holds: 3.0 -> '3', a date -> '2026-03-01'."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="seconds" if not value.microsecond else "auto")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        hours, rest = divmod(int(value.total_seconds()), 3600)
        return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
    return str(value)


def read_xlsx(
    path: Path, shown: str, sheet: str | None, max_cell: int, recipe_file: str
) -> tuple[str, int, list[str], list[tuple[int, list[str]]]]:
    """(sheet name, header row, header, [(row, cells)]) of one worksheet; RowError if unusable."""
    _check_container(path, shown)
    import openpyxl  # imported here: only spreadsheet recipes pay for it

    with open(path, "rb") as handle:  # ours to close, whatever openpyxl does on a failure
        try:
            book = openpyxl.load_workbook(handle, read_only=True, data_only=True, keep_links=False)
        except Exception as exc:  # a hostile zip can fail inside openpyxl in many ways
            raise RowError(
                [Problem(f"unreadable .xlsx file: {type(exc).__name__}: {exc}"[:300], file=shown)]
            ) from exc
        return _read_book(book, shown, sheet, max_cell, recipe_file)


def _read_book(
    book: Any, shown: str, sheet: str | None, max_cell: int, recipe_file: str
) -> tuple[str, int, list[str], list[tuple[int, list[str]]]]:
    try:
        name = _sheet_name(book.sheetnames, sheet, shown, recipe_file)
        ws = book[name]
        if not hasattr(ws, "iter_rows"):
            raise RowError(
                [
                    Problem(
                        f"sheet {name!r} is a chart sheet, not a worksheet",
                        file=recipe_file,
                        path="rows.sheet",
                    )
                ]
            )
        ws.reset_dimensions()  # never trust the declared size: it may claim a million rows
        top, header, records = _read(_rows(ws, shown, name), shown, name, max_cell)
    except PartlyRead as exc:
        exc.sheet = name
        raise
    except RowError:
        raise
    except Exception as exc:
        raise RowError(
            [Problem(f"unreadable .xlsx file: {type(exc).__name__}: {exc}"[:300], file=shown)]
        ) from exc
    finally:
        book.close()
    return name, top, header, records


def _check_container(path: Path, shown: str) -> None:
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic == _OLE:
        raise RowError(
            [
                Problem(
                    "is an old .xls or a password-protected workbook",
                    file=shown,
                    hint="save it as .xlsx without a password",
                )
            ]
        )
    if not zipfile.is_zipfile(path):
        raise RowError([Problem("is not an .xlsx file (not a zip archive)", file=shown)])
    try:
        with zipfile.ZipFile(path) as z:
            members = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise RowError([Problem(f"is not a readable .xlsx file: {exc}", file=shown)]) from exc
    if len(members) > MAX_MEMBERS:
        raise RowError(
            [Problem(f"holds {len(members):,} files; an .xlsx is limited to {MAX_MEMBERS:,}", file=shown)]
        )
    unpacked = sum(m.file_size for m in members)
    if unpacked > MAX_UNPACKED:
        raise RowError(
            [
                Problem(
                    f"unpacks to {unpacked:,} bytes; the limit is {MAX_UNPACKED:,} (a zip bomb?)", file=shown
                )
            ]
        )


def _sheet_name(names: Sequence[str], wanted: str | None, shown: str, recipe_file: str) -> str:
    if wanted is None:
        if not names:
            raise RowError([Problem("has no sheets", file=shown)])
        return names[0]
    if wanted in names:
        return wanted
    close = difflib.get_close_matches(wanted, names, n=1)
    hint = f"did you mean {close[0]!r}?" if close else "sheets: " + ", ".join(map(repr, names))
    raise RowError(
        [Problem(f"{shown} has no sheet {wanted!r}", file=recipe_file, path="rows.sheet", hint=hint)]
    )


def _rows(ws: Any, shown: str, name: str) -> Iterator[tuple[int, tuple[Any, ...]]]:
    """(row number, values) of every row, counting cells against the caps."""
    cells = 0
    for number, values in enumerate(ws.iter_rows(values_only=True), 1):
        if len(values) > MAX_COLUMNS:
            raise RowError(
                [
                    Problem(
                        f"a row wider than {MAX_COLUMNS:,} columns",
                        file=shown,
                        line=number,
                        path=f"sheet {name!r}, column {column_letter(len(values))}",
                    )
                ]
            )
        cells += len(values)
        if cells > MAX_CELLS or number > MAX_ROWS:
            raise RowError(
                [
                    Problem(
                        f"sheet {name!r} has more than {MAX_CELLS:,} cells"
                        if cells > MAX_CELLS
                        else f"sheet {name!r} has more than {MAX_ROWS:,} rows",
                        file=shown,
                        line=number,
                    )
                ]
            )
        yield number, values


def _read(
    rows: Iterator[tuple[int, tuple[Any, ...]]], shown: str, name: str, max_cell: int
) -> tuple[int, list[str], list[tuple[int, list[str]]]]:
    problems: list[Problem] = []
    header: list[str] | None = None
    top = 1
    records: list[tuple[int, list[str]]] = []
    for number, values in rows:
        texts = [cell_text(v) for v in values]
        while texts and texts[-1] == "":
            texts.pop()  # formatting often stretches a row past its last value
        for col, text in enumerate(texts, 1):
            if len(text) > max_cell:
                problems.append(_at(shown, name, number, col, f"cell is longer than {max_cell:,} characters"))
                texts[col - 1] = ""
        if not texts:
            continue
        if header is None:
            header, top = [t.strip() for t in texts], number
            problems += _header_problems(header, shown, name, number)
            continue
        if len(texts) > len(header):
            problems.append(
                _at(
                    shown,
                    name,
                    number,
                    len(texts),
                    f"has a value beyond the header's last column {column_letter(len(header))}",
                )
            )
            continue
        records.append((number, texts + [""] * (len(header) - len(texts))))
    if header is None:
        problems.append(Problem(f"sheet {name!r} is empty: a header row is needed", file=shown))
    if problems:
        raise PartlyRead(problems, top, header or [], records)
    return top, header or [], records


def _header_problems(header: list[str], shown: str, name: str, number: int) -> list[Problem]:
    problems = []
    seen: set[str] = set()
    for col, text in enumerate(header, 1):
        if not text:
            problems.append(_at(shown, name, number, col, "header cell has no name"))
        elif text in seen:
            problems.append(_at(shown, name, number, col, f"header {text!r} appears twice"))
        seen.add(text)
    return problems


def _at(shown: str, sheet: str, row: int, col: int, message: str) -> Problem:
    return Problem(message, file=shown, line=row, path=f"sheet {sheet!r}, column {column_letter(col)}")
