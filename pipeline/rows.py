"""Row sources: CSV, JSON Lines, a spreadsheet, or an inline list, each row with its line.

Files are read line by line with a cap on each line, so a hostile file (a 50 MB cell,
a NUL byte, JSON nested a million deep) is refused with its line number instead of
filling memory or crashing.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from . import sheets, yamlsource
from .errors import Problem, RowError

MAX_FILE_BYTES = 128 * 1024 * 1024
MAX_CELL = 1024 * 1024  # characters in one CSV cell
MAX_LINE = 4 * MAX_CELL  # characters in one physical line of a CSV or JSON Lines file


@dataclass(frozen=True)
class Row:
    """One input row: its values, and where it came from for error messages."""

    index: int
    values: Mapping[str, Any] = field(repr=False)
    source: str
    line: int | None = None
    sheet: str | None = None  # the worksheet, for rows from a spreadsheet
    header_line: int | None = None  # where the column names are, for a CSV or a spreadsheet

    def where(self, column: str | None = None) -> str:
        """'data.csv:12 (column product)' for messages; 'recipe.yaml (row 3)' without a line.

        A spreadsheet row adds its sheet and the column's letter:
        'products.xlsx:12 (sheet Products, column B product)'.
        """
        text = self.source + (f":{self.line}" if self.line else f" (row {self.index + 1})")
        if self.sheet is not None:
            letter = ""
            if column is not None and column in self.values:
                letter = sheets.column_letter(list(self.values).index(column) + 1) + " "
            return text + f" (sheet {self.sheet}" + (f", column {letter}{column})" if column else ")")
        return text + (f" (column {column})" if column else "")


def read_rows(
    spec: Any, base_dir: Path, recipe_file: str, doc: yamlsource.Located | None = None
) -> list[Row]:
    """Read the rows named by a recipe's `rows:` section; raises RowError with every problem.

    With the recipe's `doc`, problems in the recipe itself (a missing file, an unknown
    sheet) carry their line and column.
    """
    try:
        return _read_rows(spec, base_dir, recipe_file)
    except RowError as exc:
        if doc is None:
            raise
        raise partial([_located(p, doc) for p in exc.problems], good_rows(exc)) from exc


def partial(problems: list[Problem], rows: list[Row]) -> RowError:
    """A RowError that also carries the rows that were fine, so planning can go on with them."""
    err = RowError(problems)
    err.rows = rows  # type: ignore[attr-defined]
    return err


def good_rows(exc: Exception) -> list[Row]:
    """The usable rows a RowError carries (none if the source was unreadable as a whole)."""
    return list(getattr(exc, "rows", []))


_PART = re.compile(r"\.?([A-Za-z_]\w*)|\[(\d+)\]")


def _located(problem: Problem, doc: yamlsource.Located) -> Problem:
    if problem.file != doc.file or problem.line is not None or not problem.path:
        return problem
    parts = tuple(m[1] if m[1] else int(m[2]) for m in _PART.finditer(problem.path))
    if (
        parts
        and parts[0] == "rows"
        and len(parts) > 1
        and isinstance(parts[1], int)
        and isinstance(doc.data.get("rows"), Mapping)
    ):
        parts = ("rows", "inline", *parts[1:])
    line, column = doc.position(parts)
    return dataclasses.replace(problem, line=line, column=column)


def _read_rows(spec: Any, base_dir: Path, recipe_file: str) -> list[Row]:
    if isinstance(spec, list):
        return _inline(spec, recipe_file)
    if "inline" in spec:
        return _inline(spec["inline"], recipe_file)
    kind = next((k for k in ("csv", "xlsx") if k in spec), "jsonl")
    path = (base_dir / spec[kind]).resolve()
    shown = str(spec[kind])
    if not path.is_file():
        why = "is not a regular file" if path.exists() else "not found"
        raise RowError([Problem(f"{kind} file {why}: {path}", file=recipe_file, path=f"rows.{kind}")])
    if path.stat().st_size > MAX_FILE_BYTES:
        raise RowError([Problem(f"file is larger than {MAX_FILE_BYTES >> 20} MiB", file=shown)])
    if kind == "xlsx":
        return _xlsx(path, shown, spec.get("sheet"), recipe_file)
    lines = _Lines(shown)
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            if kind == "csv":
                return _csv(lines, f, shown, spec.get("delimiter", ","))
            return _jsonl(lines.read(f), shown)
    except UnicodeDecodeError as exc:
        raise RowError([Problem("not valid UTF-8", file=shown, line=lines.count + 1)]) from exc
    except _Refused as exc:
        raise RowError([exc.problem]) from exc


class _Refused(Exception):
    def __init__(self, problem: Problem):
        super().__init__(str(problem))
        self.problem = problem


class _Lines:
    """Physical lines of a text file, each capped at MAX_LINE characters, NUL refused."""

    def __init__(self, shown: str):
        self.shown = shown
        self.count = 0

    def read(self, f: IO[str]) -> Iterator[str]:
        while True:
            line = f.readline(MAX_LINE + 1)
            if not line:
                return
            self.count += 1
            if len(line) > MAX_LINE:
                raise _Refused(
                    Problem(
                        f"line is longer than {MAX_LINE:,} characters",
                        file=self.shown,
                        line=self.count,
                        hint=f"cells are limited to {MAX_CELL:,} characters",
                    )
                )
            if "\x00" in line:
                raise _Refused(
                    Problem(
                        "contains a NUL byte",
                        file=self.shown,
                        line=self.count,
                        hint="is it a binary file, or UTF-16?",
                    )
                )
            yield line


def _inline(items: list[Any], recipe_file: str) -> list[Row]:
    problems = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            problems.append(Problem("each inline row must be a mapping", file=recipe_file, path=f"rows[{i}]"))
            continue
        for key in item:
            if not isinstance(key, str):  # YAML reads a bare `on:` as True, `1:` as 1
                problems.append(
                    Problem(
                        f"column name {key!r} is not text",
                        file=recipe_file,
                        line=getattr(item, "line", None),
                        path=f"rows[{i}]",
                        hint='quote it in the YAML, e.g. "on":',
                    )
                )
    if problems:
        raise RowError(problems)
    lines = [getattr(item, "line", None) for item in items]
    shared = {n for n, count in Counter(lines).items() if count > 1}
    # rows written on one line ([{a: 1}, {a: 2}]) are told apart by their number instead
    return [
        Row(i, dict(item), recipe_file, None if line in shared else line)
        for i, (item, line) in enumerate(zip(items, lines))
    ]


def _xlsx(path: Path, shown: str, sheet: str | None, recipe_file: str) -> list[Row]:
    try:
        name, top, header, records = sheets.read_xlsx(path, shown, sheet, MAX_CELL, recipe_file)
    except sheets.PartlyRead as exc:
        rows = _sheet_rows(shown, exc.sheet, exc.top, exc.header, exc.records)
        raise partial(exc.problems, rows) from exc
    return _sheet_rows(shown, name, top, header, records)


def _sheet_rows(
    shown: str, name: str, top: int, header: list[str], records: list[tuple[int, list[str]]]
) -> list[Row]:
    return [
        Row(i, dict(zip(header, cells, strict=True)), shown, line, name, top)
        for i, (line, cells) in enumerate(records)
    ]


def _records(lines: Iterator[str], delimiter: str) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    start = 1
    for record in reader:
        yield start, record
        start = reader.line_num + 1


def _csv(lines: _Lines, f: IO[str], shown: str, delimiter: str) -> list[Row]:
    if delimiter in ('"', "\r", "\n"):
        raise RowError([Problem(f"delimiter {delimiter!r} cannot be a quote or a line break", file=shown)])
    problems: list[Problem] = []
    rows: list[Row] = []
    header: list[str] | None = None
    old_limit = csv.field_size_limit(MAX_CELL)
    try:
        for line, record in _records(lines.read(f), delimiter):
            if header is None:
                header = [h.strip() for h in record]
                problems += _header_problems(header, shown)
                continue
            if not record or record == [""]:
                continue
            if len(record) != len(header):
                problems.append(
                    Problem(f"has {len(record)} fields, the header has {len(header)}", file=shown, line=line)
                )
                continue
            rows.append(Row(len(rows), dict(zip(header, record, strict=True)), shown, line, header_line=1))
    except csv.Error as exc:
        problems.append(
            Problem(
                f"unreadable CSV: {exc}",
                file=shown,
                line=lines.count,
                hint=f"cells are limited to {MAX_CELL:,} characters" if "field larger" in str(exc) else None,
            )
        )
    finally:
        csv.field_size_limit(old_limit)
    if header is None:
        problems.append(Problem("is empty: a header line is needed", file=shown))
    if problems:
        raise partial(problems, rows)
    return rows


def _header_problems(header: list[str], shown: str) -> list[Problem]:
    problems = []
    seen: set[str] = set()
    for i, name in enumerate(header, 1):
        if not name:
            problems.append(Problem(f"header column {i} has no name", file=shown, line=1))
        elif name in seen:
            problems.append(Problem(f"header column {name!r} appears twice", file=shown, line=1))
        seen.add(name)
    return problems


def _jsonl(lines: Iterator[str], shown: str) -> list[Row]:
    problems: list[Problem] = []
    rows: list[Row] = []
    for line, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.append(Problem(f"invalid JSON: {exc.msg}", file=shown, line=line, column=exc.colno))
            continue
        except RecursionError:
            problems.append(Problem("invalid JSON: nested too deeply", file=shown, line=line))
            continue
        except ValueError as exc:  # e.g. an integer of more than 4,300 digits
            problems.append(Problem(f"invalid JSON: {exc}", file=shown, line=line))
            continue
        if not isinstance(value, dict):
            problems.append(Problem("each line must be a JSON object", file=shown, line=line))
            continue
        rows.append(Row(len(rows), value, shown, line))
    if problems:
        raise partial(problems, rows)
    return rows


def parse_range(text: str) -> tuple[int, int]:
    """'3-9' -> (3, 9), 1-based and inclusive; '5' -> (5, 5)."""
    start, _, end = text.partition("-")
    try:
        lo, hi = int(start), int(end or start)
    except ValueError as exc:
        raise RowError(f"--rows {text!r}: expected N or N-M") from exc
    if lo < 1 or hi < lo:
        raise RowError(f"--rows {text!r}: expected 1 <= N <= M")
    return lo, hi
