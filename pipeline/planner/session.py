"""What every part of one planning run shares: the recipe, its settings and the problems."""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jinja2

from .. import checks, templating
from .. import rows as rowsource
from ..errors import Problem, RecipeError
from ..pricing import PriceTable, check_prices, default_table
from ..recipe import Recipe

DEFAULT_FILE = "{{ key }}/{{ step }}-{{ index }}-{{ seed }}.png"
_RENDER_ERRORS = (
    jinja2.TemplateError,
    templating.SecurityLimit,
    ArithmeticError,
    TypeError,
    ValueError,
    OverflowError,
    RecursionError,
)


class Problems:
    """Collects problems, each once: the same one on many rows is kept once, with a count.

    Two problems are the same when they say the same thing at the same place; what
    differs between them is the hint (which row). The first is shown, and the number
    of other rows is added to its hint, so no line is ever printed twice.
    """

    def __init__(self) -> None:
        self.items: list[Problem] = []
        self.rows: dict[tuple[Any, ...], set[str | None]] = {}
        self.warnings: list[Problem] = []

    def add(self, problem: Problem) -> None:
        """Keep a problem, or count it as one more row of a problem already kept."""
        kind = (problem.file, problem.line, problem.column, problem.path, problem.message)
        seen = self.rows.get(kind)
        if seen is None:
            self.rows[kind] = {problem.hint}
            self.items.append(problem)
        else:
            seen.add(problem.hint)

    def warn(self, problem: Problem) -> None:
        """Keep a warning once."""
        if problem not in self.warnings:
            self.warnings.append(problem)

    def raise_if_any(self) -> None:
        """Raise RecipeError with every problem so far, repeats counted."""
        if not self.items:
            return
        out = []
        for p in self.items:
            more = len(self.rows[(p.file, p.line, p.column, p.path, p.message)]) - 1
            if more:
                count = f"the same problem on {more:,} more row{'s' if more > 1 else ''}"
                p = dataclasses.replace(p, hint=f"{p.hint}; {count}" if p.hint else count)
            out.append(p)
        raise RecipeError(out)


class Session:
    """One planning run's recipe, settings, price table and problem list."""

    def __init__(
        self, recipe: Recipe, provider: str | None, prices: Mapping[str, float] | None, out_dir: Path | None
    ):
        self.r = recipe
        self.data = recipe.data
        self.provider = provider or recipe.provider_name
        self.out_dir = (out_dir or recipe.output_dir).resolve()
        self.problems = Problems()
        self.prices = self._price_table(prices)
        self.vars = dict(self.data.get("vars", {}))
        self.matrix = dict(self.data.get("matrix", {}))
        self.defaults = dict(self.data.get("defaults", {}))
        self.file_template = self.data.get("output", {}).get("file", DEFAULT_FILE)
        self.seed_policy = self.data.get("seed", "derive")
        self.steps: list[dict[str, Any]] = self.data["steps"]
        self.step_index = {s["id"]: i for i, s in enumerate(self.steps)}
        self.shared: dict[Any, Any] = {}  # equal immutable values the plan's tasks share

    def _price_table(self, extra: Mapping[str, float] | None) -> PriceTable:
        table = default_table().with_overrides(self.data.get("prices", {}), "recipe")
        if "prices_file" in self.data:
            from .. import yamlsource

            path = self.r.base_dir / self.data["prices_file"]
            try:  # a problem here is recorded, not raised: the rest of the plan is checked too
                loaded = yamlsource.load(path).data
            except RecipeError as exc:
                for p in exc.problems:
                    self.problems.add(p if p.line else self.r.problem(("prices_file",), str(p)))
                return table.with_overrides(extra or {}, "cli")
            why = check_prices(loaded)
            if why:
                self.problem(("prices_file",), f"{why} (in {path.name})")
                return table.with_overrides(extra or {}, "cli")
            table = table.with_overrides(loaded, Path(path).name)
        return table.with_overrides(extra or {}, "cli")

    def problem(self, path: tuple[Any, ...], message: str, hint: str | None = None) -> None:
        """Record a problem located at a path inside the recipe."""
        self.problems.add(self.r.problem(path, message, hint))

    def render(
        self, source: Any, ctx: Mapping[str, Any], path: tuple[Any, ...], row: rowsource.Row | None
    ) -> str | None:
        """A rendered recipe value, or None after recording why it failed."""
        if not templating.is_template(source):
            return str(source)
        try:
            return templating.render(source, ctx)
        except _RENDER_ERRORS as exc:
            hint = f"row {row.where()}" if row else None
            message = templating.describe_error(exc)
            close = checks.suggestion(message, self._names(row))
            self.problem(path, f"{message} ({close})" if close else message, hint)
            return None

    def _names(self, row: rowsource.Row | None) -> list[str]:
        """What a template may read, for 'did you mean' (columns first)."""
        return [*(row.values if row else ()), *self.vars, *self.matrix]

    def has_template(self, path: tuple[Any, ...]) -> bool:
        """True if the recipe value at `path` is a template (so a row is worth naming)."""
        node: Any = self.data
        for part in path:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                return False
        return templating.is_template(node)


def close_match(word: str, options: Iterable[str]) -> str | None:
    """'did you mean ...?' for the closest option, if any is close."""
    found = difflib.get_close_matches(word, list(options), n=1)
    return f"did you mean {found[0]!r}?" if found else None


_SIMPLE_VAR = re.compile(r"^\s*\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}\s*$")


def column_of(source: Any) -> str | None:
    """The CSV column a `{{ name }}` template reads, for messages."""
    m = _SIMPLE_VAR.match(source) if isinstance(source, str) else None
    return m[1] if m else None


def strings(value: Any) -> Iterable[str]:
    """Every string in a recipe value (a string or a nested list)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def refs(value: Any) -> set[str]:
    """The `input.*` / `steps.*` names the templates in a recipe value read."""
    out: set[str] = set()
    for text in strings(value):
        if templating.is_template(text):
            try:
                out |= templating.references(text)
            except jinja2.TemplateSyntaxError:
                pass
    return out
