"""Loading a recipe file and checking its structure against schemas/recipe.schema.json."""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from . import spec, yamlsource
from .errors import Problem, RecipeError, SchemaError

_TEMPLATE_PATTERN = "\\{[{%]"  # how the schema spells "a Jinja template"


@functools.lru_cache(maxsize=1)
def recipe_schema() -> dict[str, Any]:
    """The recipe JSON Schema (2020-12)."""
    with open(spec.schema_file("recipe.schema.json"), encoding="utf-8") as f:
        schema: dict[str, Any] = json.load(f)
    return schema


@dataclass
class Recipe:
    """A recipe file, parsed and structurally valid."""

    path: Path
    shown: str
    data: dict[str, Any] = field(repr=False)
    doc: yamlsource.Located = field(repr=False)
    sha256: str = ""
    sets: dict[str, str] = field(default_factory=dict)  # the --set overrides, as given

    @property
    def name(self) -> str:
        """The recipe's name."""
        return str(self.data["name"])

    @property
    def base_dir(self) -> Path:
        """The folder relative paths in the recipe are resolved against."""
        return self.path.parent

    @property
    def steps(self) -> list[dict[str, Any]]:
        """The steps, in file order."""
        return list(self.data["steps"])

    @property
    def provider_name(self) -> str:
        """The provider's name, whichever form the recipe used."""
        prov = self.data.get("provider", "ideogram")
        return prov["name"] if isinstance(prov, Mapping) else str(prov)

    @property
    def provider_base_url(self) -> str | None:
        """A base URL override from the recipe, if any."""
        prov = self.data.get("provider")
        return prov.get("base_url") if isinstance(prov, Mapping) else None

    @property
    def output_dir(self) -> Path:
        """The output directory (absolute)."""
        out = self.data.get("output", {}).get("dir") or f"out/{self.name}"
        return (self.base_dir / out).resolve()

    def problem(
        self, path: tuple[Any, ...], message: str, hint: str | None = None, warning: bool = False
    ) -> Problem:
        """A Problem located at a path inside the recipe."""
        return self.doc.problem(path, message, hint, warning)


def load_recipe(path: str | Path, sets: Mapping[str, str] | None = None) -> Recipe:
    """Read a recipe, check it against the schema, and apply --set overrides to `vars`."""
    path = Path(path)
    shown = str(path)
    doc = yamlsource.load(path, shown)
    if not isinstance(doc.data, dict):
        raise SchemaError([Problem("a recipe must be a YAML mapping", file=shown, line=1)])
    odd = nan_problems(doc)
    seen = {p.path for p in odd}  # `.inf` also breaks a schema bound: say it once, clearly
    problems = sorted(
        [p for p in schema_problems(doc) if p.path not in seen] + odd,
        key=lambda p: (p.line or 0, p.column or 0),
    ) or size_problems(doc)
    if problems:
        from .checks import salvage  # the rest of what can be checked, to report it all at once

        problems += salvage(doc, path.parent, [p.path for p in problems])
        raise SchemaError(problems)
    data = doc.data
    if sets:
        data["vars"] = {**data.get("vars", {}), **{k: _set_value(v) for k, v in sets.items()}}
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return Recipe(path.resolve(), shown, data, doc, digest, dict(sets or {}))


def _set_value(text: str) -> Any:
    """--set brand=Acme keeps a string; --set n=3, x=0.5 or on=true read as numbers and booleans.

    Only `true` and `false` become booleans (not YAML 1.1's yes / no / on / off), and
    `16:9` stays text (not YAML 1.1's base-60 969).
    """
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, bool):
        return value if text.strip().lower() in ("true", "false") else text
    if isinstance(value, (int, float)):
        return text if ":" in text else value
    return text


def parse_sets(items: list[str] | None) -> dict[str, str]:
    """['brand=Acme'] -> {'brand': 'Acme'}; raises RecipeError on a malformed item."""
    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise RecipeError([Problem(f"--set {item!r}: expected NAME=VALUE")])
        out[name.strip()] = value
    return out


MAX_COMBINATIONS = 10_000  # matrix combinations, each run for every row
MAX_IMAGES_PER_ROW = 100_000  # images one row may fan out to, over all steps and combinations
_MAX_NUM_IMAGES = 8  # what a num_images template may render to, at most


def size_problems(doc: yamlsource.Located) -> list[Problem]:
    """Refuse a recipe whose matrix or chain of num_images would plan millions of requests per row.

    A small file can describe a huge plan: ten matrix entries of ten values are 10**10
    combinations, and six chained steps of num_images 8 are 262,144 images for each
    row. Those are refused here, before the planner tries to build them.
    """
    data = doc.data
    combos = 1
    for values in data.get("matrix", {}).values():
        combos *= len(values)
    if combos > MAX_COMBINATIONS:
        sizes = " x ".join(str(len(v)) for v in data["matrix"].values())
        return [
            doc.problem(
                ("matrix",),
                f"{combos:,} combinations ({sizes}); the limit is {MAX_COMBINATIONS:,}",
                "each row runs once per combination",
            )
        ]
    steps = data["steps"]
    by_id = {s["id"]: (i, s) for i, s in enumerate(steps)}
    made: dict[str, int] = {}

    def images(step_id: str, trail: frozenset[str]) -> int:
        if step_id in made:
            return made[step_id]
        step = by_id[step_id][1]
        n = step.get("num_images", data.get("defaults", {}).get("num_images", 1))
        n = n if isinstance(n, int) else _MAX_NUM_IMAGES
        parent = step.get("input")
        many = 1 if parent not in by_id or parent in trail else images(parent, trail | {step_id})
        made[step_id] = many * n  # a cycle is reported by the planner
        return made[step_id]

    total = 0
    for i, step in enumerate(steps):
        total += images(step["id"], frozenset()) * combos
        if total > MAX_IMAGES_PER_ROW:
            return [
                doc.problem(
                    ("steps", i),
                    f"the steps up to {step['id']!r} would make "
                    f"{total:,} images for each row; the limit is "
                    f"{MAX_IMAGES_PER_ROW:,}",
                    "lower num_images or the matrix, or split the recipe",
                )
            ]
    return []


def nan_problems(doc: yamlsource.Located) -> list[Problem]:
    """YAML's `.nan` passes every JSON Schema bound (NaN compares false), and `.inf` every
    lower bound: refuse both anywhere (a timeout of .inf would wait forever)."""
    problems = []
    stack: list[tuple[tuple[Any, ...], Any]] = [((), doc.data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, float) and math.isnan(value):
            problems.append(doc.problem(path, "NaN (.nan) is not a number ideopipe can use"))
        elif isinstance(value, float) and math.isinf(value):
            problems.append(
                doc.problem(
                    path, f"{value} ({'-' if value < 0 else ''}.inf) is not a number ideopipe can use"
                )
            )
        elif isinstance(value, dict):
            stack.extend(((*path, k), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend(((*path, i), v) for i, v in enumerate(value))
    return sorted(problems, key=lambda p: (p.line or 0, p.column or 0))


MAX_TIMEOUT_S = 86_400.0  # a day: any timeout above it is a typo (or a hostile recipe)


def timeout_problem(value: Any) -> str | None:
    """Why a timeout in seconds is refused (not a finite number in (0, a day]); None if usable."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{value!r} is not a number of seconds"
    if not math.isfinite(value) or not 0 < value <= MAX_TIMEOUT_S:
        return f"{value!r} seconds: expected more than 0 and at most {MAX_TIMEOUT_S:,.0f} (a day)"
    return None


def check_max_cost(value: float | None) -> float | None:
    """--max-cost as given: None, or a finite amount of dollars >= 0; RecipeError (exit 2) if not.

    argparse reads `nan`, `inf` and `-1` as floats; NaN compares false against any cost,
    so an unchecked `--max-cost nan` would let every task through.
    """
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise RecipeError(
            [
                Problem(
                    f"--max-cost {value!r}: expected an amount of US dollars, "
                    "0 or more (not nan, inf or negative)"
                )
            ]
        )
    return float(value)


def schema_problems(doc: yamlsource.Located) -> list[Problem]:
    """Every schema violation in the document, located, with hints."""
    validator = jsonschema.Draft202012Validator(recipe_schema())
    problems = []
    for err in validator.iter_errors(doc.data):
        problems.extend(_explain(doc, err))
    problems.sort(key=lambda p: (p.line or 0, p.column or 0))
    return problems


def _explain(doc: yamlsource.Located, err: jsonschema.ValidationError) -> list[Problem]:
    path = tuple(err.absolute_path)
    if err.validator == "additionalProperties":
        allowed = list(err.schema.get("properties", {}))
        extra = [k for k in err.instance if k not in allowed]
        out = []
        for key in extra:  # every unknown field, not just the first
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known fields: {', '.join(allowed)}"
            out.append(doc.problem((*path, key), f"unknown field {key!r}", hint))
        return out or [doc.problem(path, err.message)]
    if err.validator == "enum":
        options = [str(v) for v in err.validator_value]
        close = difflib.get_close_matches(str(err.instance), options, n=1)
        hint = (
            f"did you mean {close[0]!r}?"
            if close
            else "expected one of " + ", ".join(map(str, err.validator_value))
        )
        what = "op" if path and path[-1] == "op" else "value"
        return [doc.problem(path, f"unknown {what} {err.instance!r}", hint)]
    if err.validator == "dependentRequired":
        out = []
        for key, needs in err.validator_value.items():
            missing = [n for n in needs if key in err.instance and n not in err.instance]
            if missing:
                out.append(
                    doc.problem(
                        (*path, key),
                        f"{key!r} goes only with {missing[0]!r}",
                        f"add {missing[0]}: or remove {key}",
                    )
                )
        return out or [doc.problem(path, err.message)]
    if err.validator in ("anyOf", "oneOf") and err.context:
        best = _best_branch_error(err)
        if best.validator in ("enum", "dependentRequired") or len(best.absolute_path) > len(
            err.absolute_path
        ):
            return _explain(doc, best)  # said at the field, not at the mapping around it
        if best.validator == "pattern" and best.validator_value == _TEMPLATE_PATTERN:
            kinds = [b["type"] for b in err.validator_value if b.get("type") not in (None, "string")]
            expected = " or ".join(f"{'an' if k[0] in 'aeiou' else 'a'} {k}" for k in kinds)
            return [
                doc.problem(
                    path,
                    f"{err.instance!r} is not valid here: expected "
                    f"{expected or 'a value'} or a template such as '{{{{ n }}}}'",
                )
            ]
        return [doc.problem(path, f"{err.instance!r} is not valid here: {best.message}")]
    return [doc.problem(path, err.message)]


def _best_branch_error(err: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """The error of the anyOf branch the value was most likely meant for.

    A branch of the value's own type comes first, then an untyped one (an enum), then
    the rest: for `num_images: 9`, "9 is greater than the maximum of 8", not "9 is
    not of type 'string'"; for `seed: 99999999999`, the integer range, not the enum.
    """
    by_branch: dict[Any, list[jsonschema.ValidationError]] = {}
    for e in err.context or ():
        by_branch.setdefault(e.relative_schema_path[0], []).append(e)

    def rank(branch: Any) -> int:
        if any(e.validator == "type" and len(e.relative_schema_path) == 2 for e in by_branch[branch]):
            return 2
        schema = err.validator_value[branch] if isinstance(branch, int) else {}
        return 0 if "type" in schema else 1

    best = min(by_branch, key=rank)
    return jsonschema.exceptions.best_match(by_branch[best])
