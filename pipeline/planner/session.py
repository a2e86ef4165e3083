"""What every part of one planning run shares: the recipe, its settings and the problems."""

from __future__ import annotations

import difflib
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jinja2

from .. import rows as rowsource
from .. import templating
from ..errors import Problem, RecipeError
from ..pricing import PriceTable, check_prices, default_table
from ..recipe import Recipe

DEFAULT_FILE = "{{ key }}/{{ step }}-{{ index }}-{{ seed }}.png"
MAX_REPEATS = 5  # the same problem on many rows is shown this many times, then counted
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
    """Collects problems, folding the same one repeated over many rows."""

    def __init__(self) -> None:
        self.items: list[Problem] = []
        self.counts: dict[tuple[str | None, str], int] = defaultdict(int)
        self.warnings: list[Problem] = []

    def add(self, problem: Problem) -> None:
        """Keep a problem; past MAX_REPEATS of the same one, only count it."""
        kind = (problem.path, problem.message)
        self.counts[kind] += 1
        if self.counts[kind] <= MAX_REPEATS:
            self.items.append(problem)

    def warn(self, problem: Problem) -> None:
        """Keep a warning once."""
        if problem not in self.warnings:
            self.warnings.append(problem)

    def raise_if_any(self) -> None:
        """Raise RecipeError with every problem so far, repeats counted."""
        if not self.items:
            return
        extra = [
            Problem(f"... the same problem on {n - MAX_REPEATS:,} more rows", path=path)
            for (path, _), n in self.counts.items()
            if n > MAX_REPEATS
        ]
        raise RecipeError(self.items + extra)


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
            loaded = yamlsource.load(path).data
            why = check_prices(loaded)
            if why:
                raise RecipeError([self.r.problem(("prices_file",), f"{why} (in {path.name})")])
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
            self.problem(path, templating.describe_error(exc), hint)
            return None

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
