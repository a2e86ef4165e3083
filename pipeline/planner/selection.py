"""Row selection: read the rows, apply --rows/--limit and `where:`, give each its key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import checks, templating
from .. import rows as rowsource
from ..errors import RecipeError
from .session import Session

_TRUE = {"true", "1", "yes", "y", "on"}


def row_context(s: Session, row: rowsource.Row, key: str) -> dict[str, Any]:
    """What a row's templates see: vars, then the row's columns, `row` and `key`."""
    ctx = dict(s.vars)
    ctx.update(row.values)
    ctx["row"] = row.values
    ctx["key"] = key
    return ctx


def _plain_key(key_t: Any, where_t: Any) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """The parts of a `{{ name }}`-only key template read from the columns or vars, else None."""
    if where_t is not None or not isinstance(key_t, str) or not templating.is_template(key_t):
        return None
    plain = templating.plain_parts(key_t)
    if plain is None or "row" in plain[1] or "key" in plain[1]:
        return None
    return plain


def _quick_key(s: Session, row: rowsource.Row, texts: tuple[str, ...], names: tuple[str, ...]) -> str | None:
    """The key as the template renders it when every value read is text, without a context; else None."""
    values, more = row.values, s.vars
    out = [texts[0]]
    for name, text in zip(names, texts[1:]):
        value = values[name] if name in values else more.get(name)
        if type(value) is not str:
            return None
        out += (value, text)
    key = "".join(out)
    return key if len(key) <= templating.MAX_OUTPUT else None


def select_rows(
    s: Session, limit: int | None, row_range: tuple[int, int] | None
) -> list[tuple[rowsource.Row, str]]:
    """(row, key) for every selected row; problems are recorded, not raised."""
    spec = s.data.get("rows", [{}])
    try:
        rows = rowsource.read_rows(spec, s.r.base_dir, s.r.shown, s.r.doc)
    except RecipeError as exc:
        for p in exc.problems:
            s.problems.add(p)
        rows = rowsource.good_rows(exc)  # plan the others: their problems are worth seeing too
    for p in checks.shadow_problems(s.r, rows) + checks.unused_sets(s.r, s.r.sets):
        (s.problems.warn if p.warning else s.problems.add)(p)
    if row_range:
        for p in checks.rows_beyond(row_range, len(rows), _source_name(s, spec)):
            s.problems.warn(p)
        rows = rows[row_range[0] - 1 : row_range[1]]
    key_t = spec.get("key") if isinstance(spec, Mapping) else None
    where_t = spec.get("where") if isinstance(spec, Mapping) else None
    selected: list[tuple[rowsource.Row, str]] = []
    seen: dict[str, rowsource.Row] = {}
    plain = _plain_key(key_t, where_t)
    for row in rows:
        key = None if plain is None else _quick_key(s, row, *plain)
        if key is None:
            ctx = row_context(s, row, "") if key_t is not None or where_t is not None else {}
            if where_t is not None:
                verdict = s.render(where_t, ctx, ("rows", "where"), row)
                if verdict is None or verdict.strip().lower() not in _TRUE:
                    continue
            key = str(row.index + 1) if key_t is None else s.render(key_t, ctx, ("rows", "key"), row)
        if key is None:
            continue
        key = key.strip()
        if not key:
            s.problem(("rows", "key"), f"renders empty for row {row.where()}")
            continue
        if key in seen:
            s.problem(
                ("rows", "key"),
                f"duplicate row key {key!r}: {seen[key].where()} and {row.where()}",
                "row keys name files and drive resume; make them unique",
            )
            continue
        seen[key] = row
        selected.append((row, key))
        if limit is not None and len(selected) >= limit:
            break
    for p in checks.empty_cells(s.r, [r for r, _ in selected]):
        s.problems.warn(p)
    return selected


def _source_name(s: Session, spec: Any) -> str:
    if isinstance(spec, Mapping):
        for kind in ("csv", "jsonl", "xlsx"):
            if kind in spec:
                return str(spec[kind])
    return "the recipe's inline list"
