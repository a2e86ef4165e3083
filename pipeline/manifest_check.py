"""A manifest read back from disk is untrusted input: check it before `rerun` or `report` use it.

Anyone may have edited the file (or handed it over). Before a value of it decides where
a file is written or linked, each row is checked: `file` stays inside the output
folder (no absolute path, no `..`, no symbolic link leading out), `matrix` is a JSON
object of plain values, `status` is a known one, and the numbers a rerun needs are
numbers. Every problem is reported, the same one on many rows once with a count.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections import defaultdict
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InputError, Problem
from .status import Status

if TYPE_CHECKING:  # pandas is imported only when a manifest is read: `ideopipe --help` stays fast
    import pandas as pd

#: Statuses a manifest image may hold: today's, and `cached` from manifests written before
#: `reused` (the journal-only task statuses never reach a manifest).
KNOWN_STATUSES = frozenset(
    {s.value for s in Status} - {Status.SENDING, Status.RESPONDED, Status.DONE} | {"cached"}
)
REQUIRED_COLUMNS = ("image_id", "step_id", "op", "status", "file", "matrix")
MAX_SHOWN = 5  # problems of one kind shown before the rest are counted
_DRIVE = re.compile(r"^[A-Za-z]:")
_INTEGERS = ("seed", "row_index", "image_index")
_MORE_INTEGERS = ("schema_version", "width", "height", "bytes", "attempts")
RERUN_COLUMNS = (
    "task_id",
    "image_id",
    "step_id",
    "op",
    "endpoint",
    "model",
    "row_index",
    "row_key",
    "matrix",
    "seed",
    "image_index",
    "file",
    "api_prompt",
    "cost_usd",
    "provider",
    "recipe",
)
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|\(.*\)")  # values, so one kind of problem folds


class ManifestError(InputError):
    """A manifest holds values ideopipe refuses to act on; carries every problem."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("the manifest is not usable:\n" + "\n".join(map(str, problems)))


def check_manifest(
    frame: pd.DataFrame, out_dir: str | Path, source: str | None = None, lines: list[int] | None = None
) -> list[Problem]:
    """Every reason not to trust `frame` (a manifest of `out_dir`); empty when it is usable.

    `source` names the manifest file in the messages, and `lines` gives the line each
    record starts on in it.
    """
    shown = source or str(Path(out_dir) / "manifest")
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        return [Problem(f"not an ideopipe manifest: no column {', '.join(map(repr, missing))}", file=shown)]
    found: dict[tuple[str, str], list[Problem]] = defaultdict(list)
    for n, row in problems_by_row(frame, out_dir).items():
        for column, message in row:
            line = lines[n - 1] if lines and n <= len(lines) else None
            found[(column, _QUOTED.sub("…", message))].append(
                Problem(message, file=shown, line=line, path=column if line else f"row {n}: {column}")
            )
    problems: list[Problem] = []
    for same in found.values():
        problems += same[:MAX_SHOWN]
        if len(same) > MAX_SHOWN:
            problems.append(
                Problem(
                    f"... the same problem on {len(same) - MAX_SHOWN:,} more rows",
                    file=shown,
                    path=same[0].path,
                )
            )
    return problems


def problems_by_row(frame: pd.DataFrame, out_dir: str | Path) -> dict[int, list[tuple[str, str]]]:
    """(column, why) for each row (1-based position) ideopipe may not act on."""
    root = Path(out_dir).resolve()
    unreadable: dict[tuple[int, str], str] = frame.attrs.get("unreadable") or {}
    found: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for (pos, column), text in sorted(unreadable.items()):
        if column in _INTEGERS:  # the one sentence rerun gives for these
            why = f"{column} is missing or not an integer; rerun needs it"
        else:
            why = f"{text!r} is not {'an integer' if column in _MORE_INTEGERS else 'a finite number'}"
        found[pos + 1].append((column, why))
    for n, record in enumerate(frame.to_dict("records"), 1):
        bad = {column for column, _ in found.get(n, ())}
        found[n] += [(c, why) for c, why in _row_problems(record, root) if c not in bad]
    return {n: row for n, row in found.items() if row}


def rerun_problems(frame: pd.DataFrame, steps: Collection[str], source: str) -> list[Problem]:
    """Why the selected rows of a manifest cannot be rerun: missing columns, empty keys,
    steps the recipe does not have (each with its line where the file has lines)."""
    missing = [c for c in RERUN_COLUMNS if c not in frame.columns]
    if missing:
        return [Problem(f"a rerun needs the column(s) {', '.join(map(repr, missing))}", file=source)]
    lines = record_lines(Path(source))
    problems = []
    for pos, record in zip(frame.index, frame.to_dict("records"), strict=True):
        line = lines[pos] if lines and isinstance(pos, int) and 0 <= pos < len(lines) else None

        def at(column: str, line: int | None = line, pos: Any = pos) -> dict[str, Any]:
            return {"file": source, "line": line, "path": column if line else f"row {pos + 1}: {column}"}

        for column in ("task_id", "image_id", "endpoint", "model", "row_key"):
            if _text(record.get(column)) is None:
                problems.append(Problem(f"{column} is empty; a rerun needs it", **at(column)))
        step = _text(record.get("step_id"))
        if step not in steps:
            known = ", ".join(map(repr, sorted(steps)))
            problems.append(Problem(f"{step!r} is not a step of the recipe ({known})", **at("step_id")))
    return problems[: MAX_SHOWN * 4]


def require_trusted(
    frame: pd.DataFrame, out_dir: str | Path, source: str | None = None, lines: list[int] | None = None
) -> None:
    """Raise ManifestError (exit 2) if check_manifest finds anything."""
    problems = check_manifest(frame, out_dir, source, lines)
    if problems:
        raise ManifestError(problems)


def _row_problems(record: dict[str, Any], root: Path) -> list[tuple[str, str]]:
    out = []
    status = _text(record.get("status"))
    if status not in KNOWN_STATUSES:
        what = "status is empty" if status is None else f"unknown status {status!r}"
        out.append(("status", f"{what}; expected one of " + ", ".join(sorted(KNOWN_STATUSES))))
    file = _text(record.get("file"))
    if file is not None:
        why = file_problem(file, root)
        if why:
            out.append(("file", why))
    matrix = _text(record.get("matrix"))
    why = matrix_problem(matrix)
    if why:
        out.append(("matrix", why))
    if status in ("ok", "cached") and _text(record.get("op")) != "describe":
        for column in _INTEGERS:
            if column in record and not _is_int(record[column]):
                out.append((column, f"{column} is missing or not an integer; rerun needs it"))
    return out


def file_problem(file: str, root: Path) -> str | None:
    """Why a manifest's `file` value may not be used inside the output folder `root`."""
    if "\x00" in file:
        return f"{file!r} leaves the output folder: it contains a NUL character"
    if file.startswith(("/", "\\")) or _DRIVE.match(file):
        return f"{file!r} leaves the output folder: it is an absolute path"
    if ".." in re.split(r"[/\\]", file):
        return f"{file!r} leaves the output folder: it contains '..'"
    try:
        full = (root / file).resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # a link loop, a name too long
        return f"{file!r} cannot be resolved: {exc}"
    if not full.is_relative_to(root):
        return f"{file!r} leaves the output folder through a symbolic link (to {full})"
    if os.path.basename(full) == "" or full == root:
        return f"{file!r} names the output folder itself, not a file"
    return None


def matrix_problem(cell: str | None) -> str | None:
    """Why a manifest's `matrix` cell is not a JSON object of plain values."""
    if cell is None:
        return "malformed matrix: the cell is empty; expected a JSON object such as {}"
    try:
        value = json.loads(cell)
    except (ValueError, RecursionError) as exc:
        return f"malformed matrix: {cell[:60]!r} is not JSON ({exc})"[:200]
    if not isinstance(value, dict):
        return f"malformed matrix: {cell[:60]!r} is not a JSON object"
    for key, item in value.items():
        if item is not None and not isinstance(item, (str, int, float, bool)):
            return f"malformed matrix: the value of {key!r} is not a plain value"
    return None


def _text(value: Any) -> str | None:
    if value is None or type(value).__name__ == "NAType" or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def _is_int(value: Any) -> bool:
    if isinstance(value, bool) or _text(value) is None:
        return False
    if isinstance(value, float):
        return value.is_integer()
    try:
        int(value)
    except (TypeError, ValueError):
        return False
    return True


def record_lines(path: Path) -> list[int] | None:
    """The file line each CSV record starts on, or None (not CSV, or unreadable as such)."""
    try:
        return _record_lines(path)
    except (csv.Error, UnicodeDecodeError, OSError):
        return None  # pandas read it; the messages then count rows instead of lines


def _record_lines(path: Path) -> list[int] | None:
    """The line each record of a CSV or JSON Lines manifest starts on (None for parquet)."""
    if path.suffix not in (".csv", ".jsonl"):
        return None
    with open(path, encoding="utf-8", newline="") as f:
        if path.suffix == ".jsonl":
            return [n for n, text in enumerate(f, 1) if text.strip()]
        reader = csv.reader(f)
        starts, start = [], 1
        for _ in reader:
            starts.append(start)
            start = reader.line_num + 1
    return starts[1:]  # the header is not a record
