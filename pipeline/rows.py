"""Row sources: CSV, JSON Lines, or an inline list in the recipe, each row with its line."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import Problem, RowError

MAX_FILE_BYTES = 512 * 1024 * 1024
MAX_CELL = 1024 * 1024  # characters in one CSV cell


@dataclass(frozen=True)
class Row:
    """One input row: its values, and where it came from for error messages."""

    index: int
    values: Mapping[str, Any] = field(repr=False)
    source: str
    line: int | None = None

    def where(self, column: str | None = None) -> str:
        """'data.csv:12 (column product)' for messages."""
        text = self.source + (f":{self.line}" if self.line else "")
        return text + (f" (column {column})" if column else "")


def read_rows(spec: Any, base_dir: Path, recipe_file: str) -> list[Row]:
    """Read the rows named by a recipe's `rows:` section; raises RowError with every problem."""
    if isinstance(spec, list):
        return _inline(spec, recipe_file)
    if "inline" in spec:
        return _inline(spec["inline"], recipe_file)
    kind = "csv" if "csv" in spec else "jsonl"
    path = (base_dir / spec[kind]).resolve()
    shown = str(spec[kind])
    if not path.is_file():
        raise RowError([Problem(f"{kind} file not found: {path}", file=recipe_file, path=f"rows.{kind}")])
    if path.stat().st_size > MAX_FILE_BYTES:
        raise RowError([Problem(f"file is larger than {MAX_FILE_BYTES >> 20} MiB", file=shown)])
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise RowError([Problem(f"not valid UTF-8 (byte {exc.start})", file=shown, line=line)]) from exc
    if kind == "csv":
        return _csv(text, shown, spec.get("delimiter", ","))
    return _jsonl(text, shown)


def _inline(items: list[Any], recipe_file: str) -> list[Row]:
    problems = [
        Problem("each inline row must be a mapping", file=recipe_file, path=f"rows[{i}]")
        for i, item in enumerate(items)
        if not isinstance(item, Mapping)
    ]
    if problems:
        raise RowError(problems)
    return [Row(i, dict(item), recipe_file) for i, item in enumerate(items)]


def _records(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    start = 1
    for record in reader:
        yield start, record
        start = reader.line_num + 1


def _csv(text: str, shown: str, delimiter: str) -> list[Row]:
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise RowError([Problem("contains a NUL byte", file=shown, line=line)])
    problems: list[Problem] = []
    rows: list[Row] = []
    old_limit = csv.field_size_limit(MAX_CELL)
    try:
        records = _records(text, delimiter)
        header: list[str] | None = None
        for line, record in records:
            if header is None:
                header = [h.strip() for h in record]
                problems += _header_problems(header, shown)
                continue
            if not record or record == [""]:
                continue
            if len(record) != len(header):
                problems.append(Problem(
                    f"has {len(record)} fields, the header has {len(header)}", file=shown, line=line))
                continue
            rows.append(Row(len(rows), dict(zip(header, record)), shown, line))
    except csv.Error as exc:
        problems.append(Problem(f"unreadable CSV: {exc}", file=shown,
                                hint=f"cells are limited to {MAX_CELL:,} characters"
                                if "field larger" in str(exc) else None))
    finally:
        csv.field_size_limit(old_limit)
    if header is None:
        problems.append(Problem("is empty: a header line is needed", file=shown))
    if problems:
        raise RowError(problems)
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


def _jsonl(text: str, shown: str) -> list[Row]:
    problems: list[Problem] = []
    rows: list[Row] = []
    for line, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.append(Problem(f"invalid JSON: {exc.msg}", file=shown, line=line,
                                    column=exc.colno))
            continue
        if not isinstance(value, dict):
            problems.append(Problem("each line must be a JSON object", file=shown, line=line))
            continue
        rows.append(Row(len(rows), value, shown, line))
    if problems:
        raise RowError(problems)
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
