"""Checks that look across the recipe's templates and its rows, for validate and plan.

Errors: a column named like a template name (`key`, `row`, ...) that a template reads
bare, so the template would silently get the other value. Warnings: such a column no
template reads bare, a `--set NAME` no template uses, `--rows` past the data, and an
empty cell printed into a prompt. And a helper that turns "'prodct' is undefined" into
"did you mean 'product'?".
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import jinja2
from jinja2 import meta, nodes

from . import templating
from .errors import Problem
from .recipe import Recipe
from .rows import Row

#: Names every template sees besides the row's columns, and what each holds.
TEMPLATE_NAMES = {
    "key": "the row key",
    "row": "the row's columns",
    "step": "the step id",
    "input": "the input image's seed, prompt and file",
    "steps": "earlier steps' results",
    "vars": "the recipe's vars",
}
_UNDEFINED = re.compile(r"'([A-Za-z_][A-Za-z0-9_]*)' is undefined")
_GUARDS = (nodes.If, nodes.For, nodes.CondExpr, nodes.Macro, nodes.CallBlock)


def recipe_templates(data: Mapping[str, Any]) -> Iterator[tuple[tuple[Any, ...], str]]:
    """(path, source) of every template string in a recipe."""

    def walk(path: tuple[Any, ...], value: Any) -> Iterator[tuple[tuple[Any, ...], str]]:
        if isinstance(value, str):
            if templating.is_template(value):
                yield path, value
        elif isinstance(value, list):
            for i, item in enumerate(value):
                yield from walk((*path, i), item)
        elif isinstance(value, Mapping):
            for k, item in value.items():
                yield from walk((*path, k), item)

    for section in ("seed", "defaults", "steps", "output"):
        if section in data:
            yield from walk((section,), data[section])
    rows = data.get("rows")
    if isinstance(rows, Mapping):
        for name in ("key", "where"):
            if name in rows:
                yield from walk(("rows", name), rows[name])


@functools.lru_cache(maxsize=4096)
def bare_names(source: str) -> frozenset[str]:
    """The variables a template reads from its context (its own loop variables excluded)."""
    try:
        return frozenset(meta.find_undeclared_variables(templating.environment().parse(source)))
    except (jinja2.TemplateSyntaxError, RecursionError, MemoryError):
        return frozenset()  # the syntax error is reported where templates are compiled


@functools.lru_cache(maxsize=4096)
def printed_columns(source: str) -> frozenset[str]:
    """Names a template prints unconditionally: `{{ name }}`, `{{ row.name }}`, `{{ name | upper }}`.

    A name printed under `{% if %}`, in a loop, or through `default` is handled by the
    template itself, so an empty value there is not worth a warning.
    """
    try:
        tree = templating.environment().parse(source)
    except (jinja2.TemplateSyntaxError, RecursionError, MemoryError):
        return frozenset()
    found: set[str] = set()
    for output in tree.body:
        if not isinstance(output, nodes.Output):
            continue
        for printed in output.nodes:
            node: nodes.Node | None = printed
            while isinstance(node, nodes.Filter) and node.name not in ("default", "d"):
                node = node.node
            if isinstance(node, nodes.Name):
                found.add(node.name)
            elif isinstance(node, nodes.Getattr) and _is_row(node.node):
                found.add(node.attr)
            elif (
                isinstance(node, nodes.Getitem)
                and _is_row(node.node)
                and isinstance(node.arg, nodes.Const)
                and isinstance(node.arg.value, str)
            ):
                found.add(node.arg.value)
    return frozenset(found)


def _is_row(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Name) and node.name == "row"


def shadow_problems(recipe: Recipe, rows: Sequence[Row]) -> list[Problem]:
    """A column named like a template name: an error where a template reads the bare name."""
    if not rows:
        return []
    if rows[0].header_line is not None:
        rows = rows[:1]  # a CSV or a sheet: every row has the header's columns
    readers: dict[str, list[tuple[Any, ...]]] = {}
    for path, source in recipe_templates(recipe.data):
        for name in bare_names(source) & TEMPLATE_NAMES.keys():
            readers.setdefault(name, []).append(path)
    out = []
    seen: set[str] = set()
    for row in rows:
        for column in row.values:
            if column not in TEMPLATE_NAMES or column in seen:
                continue
            seen.add(column)
            where = _header_place(row, column)
            reach = f"{{{{ row.{column} }}}}"
            if column in readers:
                from .yamlsource import format_path

                used = ", ".join(format_path(p) for p in readers[column][:3])
                out.append(
                    Problem(
                        f"column {column!r} has the name of a template variable "
                        f"({TEMPLATE_NAMES[column]}), so {used} would not read it",
                        hint=f"write {reach} for the column, or rename it",
                        **where,
                    )
                )
            else:
                out.append(
                    Problem(
                        f"column {column!r} has the name of a template variable ({TEMPLATE_NAMES[column]})",
                        hint=f"templates read the column as {reach}",
                        warning=True,
                        **where,
                    )
                )
    return out


def _header_place(row: Row, column: str) -> dict[str, Any]:
    """Where a column's name is written: a file's header, or the row itself (JSON Lines, inline)."""
    if row.sheet is not None:
        from .sheets import column_letter

        letter = column_letter(list(row.values).index(column) + 1)
        return {"file": row.source, "line": row.header_line, "path": f"sheet {row.sheet!r}, column {letter}"}
    return {"file": row.source, "line": row.header_line or row.line, "path": f"column {column}"}


def suggestion(message: str, names: Iterable[str]) -> str | None:
    """For "'prodct' is undefined": "did you mean 'product'?" when a name is close enough."""
    m = _UNDEFINED.search(message)
    if not m:
        return None
    close = difflib.get_close_matches(m[1], sorted(set(names)), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def unused_sets(recipe: Recipe, sets: Iterable[str]) -> list[Problem]:
    """A `--set NAME` that no template of the recipe reads: most likely a typo."""
    used: set[str] = set()
    for _, source in recipe_templates(recipe.data):
        used |= bare_names(source)
    out = []
    for name in sets:
        if name in used:
            continue
        close = difflib.get_close_matches(name, sorted(used - TEMPLATE_NAMES.keys()), n=1)
        out.append(
            Problem(
                f"--set {name}: no template uses {name!r}",
                warning=True,
                hint=f"did you mean {close[0]!r}?" if close else "it changes nothing",
            )
        )
    return out


def rows_beyond(row_range: tuple[int, int] | None, total: int, source: str) -> list[Problem]:
    """`--rows N-M` reaching past the data."""
    if row_range is None or row_range[1] <= total:
        return []
    lo, hi = row_range
    what = "none of them" if lo > total else f"rows {lo}-{total} only"
    return [Problem(f"--rows {lo}-{hi}: {source} has {total:,} row(s), so {what}", warning=True)]


def empty_cells(recipe: Recipe, rows: Sequence[Row]) -> list[Problem]:
    """An empty cell printed into a prompt: one warning per column and field, with a count."""
    spec = recipe.data.get("rows")
    allowed = spec.get("allow_empty", ()) if isinstance(spec, Mapping) else ()
    if allowed is True or not rows:
        return []
    columns = set(rows[0].values) - set(allowed or ()) - TEMPLATE_NAMES.keys()
    fields = [
        (path, printed_columns(source) & columns)
        for path, source in recipe_templates(recipe.data)
        if path[-1] in ("prompt", "negative_prompt") or path[-2:-1] == ("prompt",)
    ]
    out = []
    for path, names in fields:
        for name in sorted(names):
            empty = [r for r in rows if r.values.get(name) in ("", None)]
            if not empty:
                continue
            more = f", and {len(empty) - 1:,} more row(s)" if len(empty) > 1 else ""
            out.append(
                recipe.problem(
                    path,
                    f"column {name!r} is empty in row "
                    f"{empty[0].where(name)}{more}; the prompt gets nothing "
                    "there",
                    f"allow it with rows: {{allow_empty: [{name}]}}",
                    warning=True,
                )
            )
    return out


def salvage(doc: Any, base_dir: Any, reported: Iterable[str | None]) -> list[Problem]:
    """What can still be checked in a recipe that breaks the schema, so one run shows it all.

    The plan needs a valid structure, but template syntax, the rows file and fixed input
    image paths do not: they are checked here wherever the schema found nothing wrong.
    """
    from .inputs import BadImage, check_url, inspect_file, local_file
    from .rows import read_rows
    from .yamlsource import format_path

    bad = [p for p in reported if p]

    def clean(path: tuple[Any, ...]) -> bool:
        text = format_path(path)
        return not any(text.startswith(b) or b.startswith(text) for b in bad)

    data = doc.data
    out: list[Problem] = []
    for path, source in recipe_templates(data):
        if clean(path):
            try:
                templating.compile_template(source)
            except jinja2.TemplateSyntaxError as exc:
                out.append(doc.problem(path, templating.describe_error(exc)))
    rows = data.get("rows")
    if rows is not None and clean(("rows",)):
        try:
            read_rows(rows, base_dir, doc.file, doc)
        except Exception as exc:  # a RowError, or anything the schema would have refused
            out += list(getattr(exc, "problems", []))
    for i, step in enumerate(data.get("steps") or []):
        for name in ("image", "mask"):
            text = step.get(name) if isinstance(step, Mapping) else None
            if not isinstance(text, str) or templating.is_template(text) or not clean(("steps", i, name)):
                continue
            try:
                if "://" in text or text.startswith(("data:", "file:")):
                    check_url(text, bool(data.get("allow_private_urls")))
                else:
                    ref = local_file(base_dir, text)
                    inspect_file(ref.value, ref.root)
            except BadImage as exc:
                out.append(doc.problem(("steps", i, name), str(exc)))
    return out


def matrix_entry(matrix: Mapping[str, Sequence[Any]], source: Any, rendered: Any) -> tuple[Any, ...] | None:
    """The path of the matrix value a `{{ name }}` template took, when that value is the culprit."""
    m = _SIMPLE_VAR.match(source) if isinstance(source, str) else None
    if not m or m[1] not in matrix:
        return None
    for n, item in enumerate(matrix[m[1]]):
        if str(item).strip() == str(rendered).strip():
            return ("matrix", m[1], n)
    return None


_SIMPLE_VAR = re.compile(r"^\s*\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}\s*$")
