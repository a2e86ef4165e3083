"""The planner: recipe + rows -> every request, with its seed, output paths and exact cost.

It is pure: it reads the recipe, the rows and local input images, and returns a Plan.
Nothing is written and nothing is sent. Every problem found is collected and raised
together at the end.
"""

from __future__ import annotations

import gc
import hashlib
import itertools
import json
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from . import ops, templating
from . import rows as rowsource
from .errors import Problem, RecipeError
from .inputs import BadImage, ImageRef, check_mask, check_url, inspect_file
from .ops import Op
from .pricing import PriceTable, check_prices, default_table, price_key
from .recipe import Recipe

DEFAULT_FILE = "{{ key }}/{{ step }}-{{ index }}-{{ seed }}.png"
MAX_SEED = 2**31 - 1
_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.IGNORECASE)
_TRUE = {"true", "1", "yes", "y", "on"}
MAX_REPEATS = 5  # the same problem on many rows is shown this many times, then counted


@dataclass(frozen=True, slots=True)
class Task:
    """One request to the API, fully decided at plan time except for `deferred` fields."""

    id: str  # content key: sha256 of the canonical request
    step_id: str
    op: str
    endpoint: str
    family: str
    model: str
    row_index: int
    row_key: str
    matrix: Mapping[str, Any]
    params: Mapping[str, Any]  # rendered, in the recipe's vocabulary, images excluded
    images: Mapping[str, tuple[ImageRef, ...]]
    seed: int | None
    seed_source: str  # derived | fixed | api
    num_images: int
    image_ids: tuple[str, ...]
    image_indexes: tuple[int, ...]
    outputs: tuple[str | None, ...]  # paths relative to the output dir (None for describe)
    parent_image_id: str | None
    depends_on: tuple[str, ...]  # task ids that must finish first
    deferred: Mapping[str, str]  # field -> template rendered at run time
    context: Mapping[str, Any] = field(repr=False, compare=False)
    price_key: str = ""
    cost_usd: float | None = None

    def to_json(self) -> dict[str, Any]:
        """A stable JSON object for `plan --json`."""
        return {
            "id": self.id, "step": self.step_id, "op": self.op, "endpoint": self.endpoint,
            "model": self.model, "row_index": self.row_index, "row_key": self.row_key,
            "matrix": dict(self.matrix), "params": dict(self.params),
            "images": {k: [f"{r.kind}:{r.value}" for r in v] for k, v in self.images.items()},
            "seed": self.seed, "seed_source": self.seed_source, "num_images": self.num_images,
            "image_ids": list(self.image_ids), "outputs": list(self.outputs),
            "parent_image_id": self.parent_image_id, "depends_on": list(self.depends_on),
            "deferred": dict(self.deferred), "cost_usd": self.cost_usd,
            "price_key": self.price_key,
        }


@dataclass
class Plan:
    """Every task of a batch, in an order where each task comes after what it needs."""

    recipe: Recipe
    tasks: list[Task]
    rows: list[rowsource.Row]
    prices: PriceTable
    provider: str
    out_dir: Path
    warnings: list[Problem] = field(default_factory=list)

    def summary(self, done: Iterable[str] = ()) -> dict[str, Any]:
        """Requests, images and cost per step and in total; `done` task ids cost nothing."""
        done = set(done)
        steps: dict[str, dict[str, Any]] = {
            s["id"]: {"op": s["op"], "requests": 0, "images": 0, "cost_usd": 0.0,
                      "unknown_cost_requests": 0, "done": 0}
            for s in self.recipe.steps
        }
        for t in self.tasks:
            s = steps[t.step_id]
            s["requests"] += 1
            s["images"] += t.num_images
            if t.id in done:
                s["done"] += 1
            elif t.cost_usd is None:
                s["unknown_cost_requests"] += 1
            else:
                s["cost_usd"] += t.cost_usd
        for s in steps.values():
            s["cost_usd"] = round(s["cost_usd"], 6)
        total = round(sum(s["cost_usd"] for s in steps.values()), 6)
        unknown = sum(s["unknown_cost_requests"] for s in steps.values())
        budget = self.recipe.data.get("budget_usd")
        return {
            "recipe": self.recipe.name,
            "provider": self.provider,
            "rows": len(self.rows),
            "requests": len(self.tasks),
            "images": sum(t.num_images for t in self.tasks),
            "cost_usd": total,
            "unknown_cost_requests": unknown,
            "done_requests": sum(s["done"] for s in steps.values()),
            "budget_usd": budget,
            "fits_budget": None if budget is None else (total <= budget and unknown == 0),
            "price_table": self.prices.version,
            "steps": steps,
        }

    def to_json(self, done: Iterable[str] = ()) -> dict[str, Any]:
        """`plan --json`: the summary, the warnings and every task."""
        out = self.summary(done)
        out["warnings"] = [str(w) for w in self.warnings]
        out["tasks"] = [t.to_json() for t in self.tasks]
        return out


# ---------------------------------------------------------------------------


@dataclass
class _Slot:
    """An image a step will produce, which later steps may take as input."""

    image_id: str
    lineage: tuple[int, ...]
    seed: int | None
    prompt: str | None
    file: str | None
    task_id: str


class _Problems:
    """Collects problems, folding the same one repeated over many rows."""

    def __init__(self) -> None:
        self.items: list[Problem] = []
        self.counts: dict[tuple[str | None, str], int] = defaultdict(int)
        self.warnings: list[Problem] = []

    def add(self, problem: Problem) -> None:
        kind = (problem.path, problem.message)
        self.counts[kind] += 1
        if self.counts[kind] <= MAX_REPEATS:
            self.items.append(problem)

    def warn(self, problem: Problem) -> None:
        if problem not in self.warnings:
            self.warnings.append(problem)

    def raise_if_any(self) -> None:
        if not self.items:
            return
        extra = [Problem(f"... the same problem on {n - MAX_REPEATS:,} more rows", path=path)
                 for (path, _), n in self.counts.items() if n > MAX_REPEATS]
        raise RecipeError(self.items + extra)


def plan(recipe: Recipe, *, provider: str | None = None, limit: int | None = None,
         row_range: tuple[int, int] | None = None, prices: Mapping[str, float] | None = None,
         out_dir: Path | None = None) -> Plan:
    """Plan every request of a recipe; raises RecipeError listing every problem."""
    # The plan is hundreds of thousands of small objects and no cycles: the cyclic
    # collector would only rescan them again and again while they are being made.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _Planner(recipe, provider, prices, out_dir).plan(limit, row_range)
    finally:
        if enabled:
            gc.enable()


class _Planner:
    def __init__(self, recipe: Recipe, provider: str | None,
                 prices: Mapping[str, float] | None, out_dir: Path | None):
        self.r = recipe
        self.data = recipe.data
        self.provider = provider or recipe.provider_name
        self.out_dir = (out_dir or recipe.output_dir).resolve()
        self.problems = _Problems()
        self.prices = self._price_table(prices)
        self.vars = dict(self.data.get("vars", {}))
        self.matrix = dict(self.data.get("matrix", {}))
        self.defaults = dict(self.data.get("defaults", {}))
        self.file_template = self.data.get("output", {}).get("file", DEFAULT_FILE)
        self.seed_policy = self.data.get("seed", "derive")
        self.steps = self.data["steps"]
        self.step_index = {s["id"]: i for i, s in enumerate(self.steps)}
        self.outputs: dict[str, tuple[rowsource.Row, str]] = {}
        self.checked_dirs: set[str] = set()
        self._static_cache: dict[tuple[str, str], Any] = {}
        self._fixed_cache: dict[tuple[str, str], dict[str, Any]] = {}
        self._same_cache: dict[tuple[str, str], str] = {}

    # -- set-up ---------------------------------------------------------------

    def _price_table(self, extra: Mapping[str, float] | None) -> PriceTable:
        table = default_table().with_overrides(self.data.get("prices", {}), "recipe")
        if "prices_file" in self.data:
            from . import yamlsource

            path = self.r.base_dir / self.data["prices_file"]
            loaded = yamlsource.load(path).data
            why = check_prices(loaded)
            if why:
                raise RecipeError([self.r.problem(("prices_file",), f"{why} (in {path.name})")])
            table = table.with_overrides(loaded, Path(path).name)
        return table.with_overrides(extra or {}, "cli")

    def _order(self) -> list[dict[str, Any]]:
        """Steps in dependency order; unknown inputs and cycles become problems."""
        deps: dict[str, set[str]] = {}
        for i, step in enumerate(self.steps):
            if step["id"] in deps:
                self.problems.add(self.r.problem(("steps", i, "id"),
                                                 f"duplicate step id {step['id']!r}"))
            needed = set()
            if "input" in step:
                target = step["input"]
                if target not in self.step_index:
                    close = _close(target, self.step_index)
                    self.problems.add(self.r.problem(("steps", i, "input"),
                                                     f"unknown step {target!r}", close))
                else:
                    needed.add(target)
            for name, value in step.items():
                for ref in _refs(value):
                    if ref.startswith("steps."):
                        target = ref.split(".", 1)[1]
                        if target not in self.step_index:
                            self.problems.add(self.r.problem(
                                ("steps", i, name), f"unknown step {target!r} in steps.{target}",
                                _close(target, self.step_index)))
                        else:
                            needed.add(target)
            deps[step["id"]] = needed
        order: list[str] = []
        state: dict[str, int] = {}

        def visit(node: str, trail: list[str]) -> None:
            if state.get(node) == 2:
                return
            if state.get(node) == 1:
                cycle = " -> ".join([*trail[trail.index(node):], node])
                i = self.step_index[node]
                self.problems.add(self.r.problem(("steps", i, "input"), f"cycle: {cycle}"))
                return
            state[node] = 1
            for dep in sorted(deps.get(node, ())):
                visit(dep, [*trail, node])
            state[node] = 2
            order.append(node)

        for step in self.steps:
            visit(step["id"], [])
        return [self.steps[self.step_index[s]] for s in order if s in self.step_index]

    # -- rows -----------------------------------------------------------------

    def _rows(self, limit: int | None, row_range: tuple[int, int] | None) -> list[tuple[rowsource.Row, str]]:
        spec = self.data.get("rows", [{}])
        try:
            rows = rowsource.read_rows(spec, self.r.base_dir, self.r.shown)
        except RecipeError as exc:
            for p in exc.problems:
                self.problems.add(p)
            return []
        if row_range:
            rows = rows[row_range[0] - 1: row_range[1]]
        key_t = spec.get("key") if isinstance(spec, Mapping) else None
        where_t = spec.get("where") if isinstance(spec, Mapping) else None
        selected: list[tuple[rowsource.Row, str]] = []
        seen: dict[str, rowsource.Row] = {}
        for row in rows:
            ctx = self._row_context(row, "")
            if where_t is not None:
                verdict = self._render(where_t, ctx, ("rows", "where"), row)
                if verdict is None or verdict.strip().lower() not in _TRUE:
                    continue
            key = str(row.index + 1) if key_t is None else self._render(key_t, ctx, ("rows", "key"), row)
            if key is None:
                continue
            key = key.strip()
            if not key:
                self.problems.add(self.r.problem(("rows", "key"),
                                                 f"renders empty for row {row.where()}"))
                continue
            if key in seen:
                self.problems.add(self.r.problem(
                    ("rows", "key"), f"duplicate row key {key!r}: {seen[key].where()} and {row.where()}",
                    "row keys name files and drive resume; make them unique"))
                continue
            seen[key] = row
            selected.append((row, key))
            if limit is not None and len(selected) >= limit:
                break
        return selected

    def _row_context(self, row: rowsource.Row, key: str) -> dict[str, Any]:
        ctx = dict(self.vars)
        ctx.update(row.values)
        ctx["row"] = row.values
        ctx["key"] = key
        return ctx

    def _render(self, source: Any, ctx: Mapping[str, Any], path: tuple[Any, ...],
                row: rowsource.Row | None) -> str | None:
        if not templating.is_template(source):
            return str(source)
        try:
            return templating.render(source, ctx)
        except (jinja2.TemplateError, templating.SecurityLimit, ArithmeticError, TypeError,
                ValueError, OverflowError, RecursionError) as exc:
            hint = f"row {row.where()}" if row else None
            self.problems.add(self.r.problem(path, templating.describe_error(exc), hint))
            return None

    # -- the plan -------------------------------------------------------------

    def plan(self, limit: int | None, row_range: tuple[int, int] | None) -> Plan:
        order = self._order()
        for i, step in enumerate(self.steps):
            for name, value in step.items():
                self._check_syntax(value, ("steps", i, name))
        self._check_syntax(self.file_template, ("output", "file"))
        self.problems.raise_if_any()
        selected = self._rows(limit, row_range)
        tasks: list[Task] = []
        names = list(self.matrix)
        combos = list(itertools.product(*(self.matrix[n] for n in names))) or [()]
        for row, key in selected:
            base = self._row_context(row, key)
            for combo in combos:
                matrix = dict(zip(names, combo))
                ctx = {**base, **matrix}
                slots: dict[str, list[_Slot]] = {}
                step_tasks: dict[str, list[str]] = {}
                for step in order:
                    made = self._step(step, row, key, matrix, ctx, slots, step_tasks)
                    tasks.extend(made)
        self.problems.raise_if_any()
        if not tasks and not self.problems.items:
            self.problems.warn(Problem("no rows selected: the plan is empty", file=self.r.shown))
        return Plan(self.r, tasks, [r for r, _ in selected], self.prices, self.provider,
                    self.out_dir, self.problems.warnings)

    def _check_syntax(self, value: Any, path: tuple[Any, ...]) -> None:
        for text in _strings(value):
            if templating.is_template(text):
                try:
                    templating.compile_template(text)
                except jinja2.TemplateSyntaxError as exc:
                    self.problems.add(self.r.problem(path, templating.describe_error(exc)))

    def _step(self, step: dict[str, Any], row: rowsource.Row, key: str, matrix: dict[str, Any],
              ctx: dict[str, Any], slots: dict[str, list[_Slot]],
              step_tasks: dict[str, list[str]]) -> list[Task]:
        sid = step["id"]
        i = self.step_index[sid]
        op = Op(step["op"])
        ctx = {**ctx, "step": sid}
        model_src = step.get("model", self.defaults.get("model", ops.DEFAULT_MODEL))
        model = self._render(model_src, ctx, ("steps", i, "model"), row)
        if model is None:
            return []
        model = model.strip()
        if model not in ops.MODELS:
            self.problems.add(self.r.problem(("steps", i, "model"), f"unknown model {model!r}",
                                             "expected one of " + ", ".join(ops.MODELS)))
            return []
        static = self._static_cache.get((sid, model), _MISSING)
        if static is _MISSING:
            static = self._static_cache[(sid, model)] = self._static(step, i, op, model)
        if static is None:
            return []
        endpoint, sources, refs_needed = static
        parents: list[_Slot | None] = [None]
        if "input" in step:
            if step["input"] not in slots:
                return []
            parents = list(slots[step["input"]])
        depends_extra = tuple(t for s in sorted(refs_needed) for t in step_tasks.get(s, ()))
        made: list[Task] = []
        out_slots: list[_Slot] = []
        counter = 0
        for parent in parents:
            for task in self._requests(step, i, op, endpoint, model, sources, row, key, matrix,
                                       ctx, parent, counter, depends_extra):
                made.append(task)
                counter += len(task.image_ids)
                if endpoint.yields_images:
                    for n, image_id in enumerate(task.image_ids):
                        lineage = (*(parent.lineage if parent else ()), task.image_indexes[n])
                        out_slots.append(_Slot(image_id, lineage, task.seed,
                                               task.params.get("prompt"), task.outputs[n], task.id))
        slots[step["id"]] = out_slots
        step_tasks[step["id"]] = [t.id for t in made]
        return made

    def _static(self, step: dict[str, Any], i: int, op: Op,
                model: str) -> tuple[ops.Endpoint, dict[str, Any], set[str]] | None:
        """What a step is with a model, the same for every row: endpoint, parameters, refs."""
        endpoint = ops.endpoint_for(op, model)
        if endpoint is None:
            self.problems.add(self.r.problem(
                ("steps", i, "op"), f"{op.value} is only available with model V_3, not {model}"))
            return None
        if op is Op.EDIT and endpoint.family == "legacy" and model not in ops.LEGACY_EDIT_MODELS:
            self.problems.add(self.r.problem(
                ("steps", i, "model"), f"legacy edit accepts only V_2 or V_2_TURBO, not {model}",
                "use model V_3 for the v3 edit endpoint"))
            return None
        sources = self._sources(step, endpoint, i)
        if sources is None:
            return None
        if "input" in step:
            parent_step = step["input"]
            if self.steps[self.step_index[parent_step]]["op"] == Op.DESCRIBE.value:
                self.problems.add(self.r.problem(("steps", i, "input"),
                                                 f"step {parent_step!r} is a describe step: "
                                                 "it yields text, not images"))
                return None
        elif endpoint.needs_image and "image" not in step:
            self.problems.add(self.r.problem(
                ("steps", i), f"{op.value} needs an image: set `input:` to an earlier step "
                "or `image:` to a path, URL or CSV column"))
            return None
        if endpoint.needs_mask and "mask" not in step:
            self.problems.add(self.r.problem(("steps", i), f"{op.value} needs a `mask:`"))
            return None
        refs_needed = {r.split(".", 1)[1] for v in step.values() for r in _refs(v)
                       if r.startswith("steps.")}
        return endpoint, sources, refs_needed

    def _sources(self, step: dict[str, Any], endpoint: ops.Endpoint,
                 i: int) -> dict[str, Any] | None:
        """The step's parameters with the defaults it accepts, checked against the endpoint."""
        merged: dict[str, Any] = {k: v for k, v in self.defaults.items()
                                  if k in endpoint.accepts or k == "model"}
        ok = True
        for name, value in step.items():
            if name in ("id", "op", "input"):
                continue
            if name != "model" and name not in endpoint.accepts:
                where = "v3" if endpoint.family == "v3" else "legacy"
                self.problems.add(self.r.problem(
                    ("steps", i, name), f"{step['op']} ({where}, {endpoint.path}) does not take "
                    f"{name!r}", "the API would silently ignore it; remove it or change the model"))
                ok = False
                continue
            merged[name] = value
        merged.pop("model", None)
        return merged if ok else None

    def _requests(self, step: dict[str, Any], i: int, op: Op, endpoint: ops.Endpoint,
                  model: str, sources: dict[str, Any], row: rowsource.Row, key: str,
                  matrix: dict[str, Any], ctx: dict[str, Any], parent: _Slot | None,
                  first_index: int, depends_extra: tuple[str, ...]) -> list[Task]:
        sid = step["id"]
        input_ctx = None
        if parent is not None:
            input_ctx = {"seed": parent.seed, "prompt": parent.prompt, "file": parent.file,
                         "image_id": parent.image_id, "api_prompt": "", "step": step["input"]}
        ctx = {**ctx, "input": input_ctx or {}, "steps": _RUNTIME_STEPS}
        params: dict[str, Any] = {}
        deferred: dict[str, str] = {}
        images: dict[str, tuple[ImageRef, ...]] = {}
        fixed = self._fixed_values(sid, model, endpoint, sources)
        for name, value in sources.items():
            if name in fixed:
                params[name] = fixed[name]
                continue
            path = ("steps", i, name) if name in step else ("defaults", name)
            if name in _IMAGE_FIELDS:
                refs = self._image_refs(name, value, ctx, path, row)
                if refs is None:
                    return []
                images[name] = refs
                continue
            if isinstance(value, str) and templating.is_template(value) and \
                    _is_runtime(value, parent):
                deferred[name] = value
                value = self._render(value, {**ctx, "steps": _PlaceholderSteps()}, path, row)
                if value is None:
                    return []
                continue
            value = self._value(name, value, ctx, path, row, endpoint)
            if value is _INVALID:
                return []
            params[name] = value
        if parent is not None:
            images["image"] = (ImageRef("step", parent.image_id),)
        if not self._mask_fits(images, step, i, row):
            return []
        if not self._cross_checks(params, deferred, endpoint, model, step, i, row):
            return []
        num = int(params.pop("num_images", 1))
        if "seed" in endpoint.accepts:
            seeds = self._seeds(params, num, sid, key, matrix, parent, first_index, ctx, i, row)
        else:  # describe: no seed, one answer
            seeds = [(None, "api", 1, first_index)]
        if seeds is None:
            return []
        price_k = price_key(op.value, endpoint.family, model, params.get("rendering_speed"))
        per_image = self.prices.per_image(price_k)
        tasks = []
        # The content key hashes the canonical JSON of the request: what is the same for
        # every row of the step (serialised once), then what this request adds.
        same = self._same_json(sid, model, op, endpoint, fixed)
        varying = {k: v for k, v in params.items() if k not in fixed}
        image_refs = {k: [f"{r.kind}:{r.value}:{r.digest}" for r in v] for k, v in images.items()}
        for seed, seed_source, count, index0 in seeds:
            own = [varying, deferred, seed, count, image_refs, depends_extra, key, matrix,
                   None if seed_source != "api" else [sid, index0]]
            tid = hashlib.sha256((same + _canonical(own)).encode()).hexdigest()
            image_ids = tuple(image_id(tid, n) for n in range(count))
            indexes = tuple(range(index0, index0 + count))
            outputs: tuple[str | None, ...] = (None,) * count
            if endpoint.yields_images:
                outputs = tuple(self._output(ctx, sid, idx, seed, image_id, row)
                                for idx, image_id in zip(indexes, image_ids))
            tasks.append(Task(
                id=tid, step_id=sid, op=op.value, endpoint=endpoint.path, family=endpoint.family,
                model=model, row_index=row.index, row_key=key, matrix=matrix,
                params=params, images=images, seed=seed, seed_source=seed_source,
                num_images=count, image_ids=image_ids, image_indexes=indexes, outputs=outputs,
                parent_image_id=parent.image_id if parent else None,
                depends_on=((parent.task_id,) if parent else ()) + depends_extra,
                deferred=deferred, context=ctx if deferred else {}, price_key=price_k,
                cost_usd=None if per_image is None else round(per_image * count, 6),
            ))
        return tasks

    def _value(self, name: str, value: Any, ctx: Mapping[str, Any], path: tuple[Any, ...],
               row: rowsource.Row, endpoint: ops.Endpoint) -> Any:
        if isinstance(value, str) and templating.is_template(value):
            value = self._render(value, ctx, path, row)
            if value is None:
                return _INVALID
            value = value.strip() if name not in ("prompt", "negative_prompt") else value
            if name in _INTEGERS:
                try:
                    value = int(value)
                except ValueError:
                    self.problems.add(self.r.problem(path, f"renders to {value!r}, not an integer",
                                                     f"row {row.where()}"))
                    return _INVALID
        problem = _check_value(name, value, endpoint)
        if isinstance(problem, str):
            self.problems.add(self.r.problem(path, problem, f"row {row.where()}"
                                             if _has_template(path, self) else None))
            return _INVALID
        return problem.value

    def _same_json(self, sid: str, model: str, op: Op, endpoint: ops.Endpoint,
                   fixed: dict[str, Any]) -> str:
        """The canonical JSON of what every request of a step with a model shares."""
        found = self._same_cache.get((sid, model))
        if found is None:
            found = self._same_cache[(sid, model)] = _canonical(
                {"op": op.value, "endpoint": endpoint.path, "provider": self.provider,
                 "model": model, "fixed": fixed})
        return found

    def _fixed_values(self, sid: str, model: str, endpoint: ops.Endpoint,
                      sources: dict[str, Any]) -> dict[str, Any]:
        """The step's parameters that are not templates, checked once for every row."""
        found = self._fixed_cache.get((sid, model))
        if found is None:
            found = {}
            for name, value in sources.items():
                if name in _IMAGE_FIELDS or (isinstance(value, str) and
                                             templating.is_template(value)):
                    continue
                checked = _check_value(name, value, endpoint)
                if isinstance(checked, _Ok):
                    found[name] = checked.value
            self._fixed_cache[(sid, model)] = found
        return found

    def _cross_checks(self, params: dict[str, Any], deferred: Mapping[str, str],
                      endpoint: ops.Endpoint, model: str, step: dict[str, Any], i: int,
                      row: rowsource.Row) -> bool:
        ok = True
        if "aspect_ratio" in params and "resolution" in params:
            self.problems.add(self.r.problem(("steps", i), "aspect_ratio and resolution exclude "
                                             "each other", "set only one"))
            ok = False
        if "style_type" in params and model in ("V_1", "V_1_TURBO") and endpoint.family == "legacy":
            self.problems.add(self.r.problem(("steps", i, "style_type"),
                                             f"style_type is not allowed with {model}"))
            ok = False
        for name in endpoint.required:
            recipe_name = {"image_file": "image", "magic_prompt_option": "magic_prompt"}.get(name, name)
            if recipe_name in ops.IMAGE_FIELDS or recipe_name == "model":
                continue
            if recipe_name not in params and recipe_name not in deferred:
                self.problems.add(self.r.problem(("steps", i), f"{step['op']} needs `{recipe_name}:`"))
                ok = False
        return ok

    def _seeds(self, params: dict[str, Any], num: int, sid: str, key: str,
               matrix: Mapping[str, Any], parent: _Slot | None, first_index: int,
               ctx: Mapping[str, Any], i: int,
               row: rowsource.Row) -> list[tuple[int | None, str, int, int]] | None:
        """[(seed, seed_source, images in the request, first image index)]."""
        fixed = params.pop("seed", None)
        policy = self.seed_policy
        if fixed is None and isinstance(policy, str) and templating.is_template(policy):
            text = self._render(policy, ctx, ("seed",), row)
            if text is None:
                return None
            try:
                fixed = int(text)
            except ValueError:
                self.problems.add(self.r.problem(("seed",), f"renders to {text!r}, not an integer"))
                return None
            if not 0 <= fixed <= MAX_SEED:
                self.problems.add(self.r.problem(("seed",), f"{fixed} is outside 0..{MAX_SEED}"))
                return None
        elif fixed is None and isinstance(policy, int) and not isinstance(policy, bool):
            fixed = policy
        if fixed is not None:
            if num > 1:
                self.problems.warn(self.r.problem(
                    ("steps", i), f"step {sid!r} has a fixed seed and num_images {num}: the "
                    "provider then repeats one image", "use seed: derive for distinct images",
                    warning=True))
            return [(fixed, "fixed", num, first_index)]
        if policy == "random":
            return [(None, "api", num, first_index)]
        # json.dumps([name, key, step, sorted matrix items, lineage, index]), with the
        # part shared by every image of this row and step serialised once.
        head = _COMPACT.encode([self.r.name, key, sid, sorted(matrix.items())])[:-1]
        lineage = "[" + ",".join(map(str, parent.lineage if parent else ())) + "]"
        out: list[tuple[int | None, str, int, int]] = []
        for n in range(num):
            material = f"{head},{lineage},{first_index + n}]"
            seed = int(hashlib.sha256(material.encode()).hexdigest()[:8], 16) & MAX_SEED
            out.append((seed, "derived", 1, first_index + n))
        return out

    def _image_refs(self, name: str, value: Any, ctx: Mapping[str, Any], path: tuple[Any, ...],
                    row: rowsource.Row) -> tuple[ImageRef, ...] | None:
        values = value if isinstance(value, list) else [value]
        refs = []
        for raw in values:
            text = self._render(raw, ctx, path, row)
            if text is None:
                return None
            text = text.strip()
            column = _column(raw)
            where = f"row {row.where(column)}" if templating.is_template(raw) else None
            if not text:
                self.problems.add(self.r.problem(path, f"{name} is empty", where))
                return None
            try:
                if "://" in text or text.startswith(("data:", "file:")):
                    check_url(text, bool(self.data.get("allow_private_urls")))
                    refs.append(ImageRef("url", text))
                else:
                    file = (self.r.base_dir / text).resolve()
                    info = inspect_file(str(file))
                    refs.append(ImageRef("file", str(file), info.sha256))
            except BadImage as exc:
                self.problems.add(self.r.problem(path, str(exc), where))
                return None
        return tuple(refs)

    def _mask_fits(self, images: Mapping[str, tuple[ImageRef, ...]], step: dict[str, Any], i: int,
                   row: rowsource.Row) -> bool:
        image, mask = images.get("image", ()), images.get("mask", ())
        if not (image and mask and image[0].kind == mask[0].kind == "file"):
            return True  # an image from a step or a URL is checked when it is fetched
        why = check_mask(inspect_file(image[0].value), inspect_file(mask[0].value))
        if why:
            self.problems.add(self.r.problem(("steps", i, "mask"), why,
                                             f"row {row.where(_column(step.get('mask')))}"))
        return why is None

    def _output(self, ctx: Mapping[str, Any], sid: str, index: int, seed: int | None,
                image_id: str, row: rowsource.Row) -> str | None:
        file_ctx = {**ctx, "step": sid, "index": index,
                    "seed": seed if seed is not None else image_id, "image_id": image_id,
                    "ext": "png"}
        text = self._render(self.file_template, file_ctx, ("output", "file"), row)
        if text is None:
            return None
        rel = _sanitize(text)
        if isinstance(rel, Problem):
            self.problems.add(self.r.problem(("output", "file"), f"{text!r}: {rel.message}",
                                             f"row {row.where()}"))
            return None
        if rel in self.outputs:
            first_row, first_step = self.outputs[rel]
            self.problems.add(self.r.problem(
                ("output", "file"), f"two images would be written to {rel!r} "
                f"(row {first_row.where()}, step {first_step} and row {row.where()}, step {sid})",
                "add {{ step }}, {{ index }} or {{ seed }} to output.file"))
            return None
        self.outputs[rel] = (row, sid)
        if not self._inside(rel.rpartition("/")[0] or "."):
            self.problems.add(self.r.problem(("output", "file"),
                                             f"{rel!r} escapes output.dir through a symlink"))
            return None
        return rel

    def _inside(self, parent: str) -> bool:
        """False if an existing folder on the way to `parent` is a link leading outside."""
        if parent in self.checked_dirs:
            return True
        prefix = ""
        for part in parent.split("/") if parent != "." else []:
            prefix = f"{prefix}/{part}" if prefix else part
            if prefix in self.checked_dirs:
                continue
            full = os.path.join(self.out_dir, prefix)
            # Only a symbolic link can lead out; a plain folder (or none yet) cannot.
            if os.path.islink(full) and not Path(full).resolve().is_relative_to(self.out_dir):
                return False
            self.checked_dirs.add(prefix)
        return True


_INVALID = object()
_MISSING = object()
_INTEGERS = {"num_images", "seed", "image_weight", "resemblance", "detail"}


@dataclass
class _Ok:
    value: Any


def _check_value(name: str, value: Any, endpoint: ops.Endpoint) -> _Ok | str:
    """A normalized value, or why it is not accepted by this endpoint (cached when hashable)."""
    if isinstance(value, str) and name in _FREE_TEXT:
        return _Ok(value)  # any string is a valid prompt; not cached, prompts are unique
    if isinstance(value, (dict, list)):
        return _check_value_uncached(name, value, endpoint)
    key = (endpoint.path, name, type(value), value)
    found = _CHECKED.get(key)
    if found is None:
        found = _CHECKED[key] = _check_value_uncached(name, value, endpoint)
    return found


_CHECKED: dict[tuple[Any, ...], _Ok | str] = {}
_FREE_TEXT = frozenset({"prompt", "negative_prompt", "custom_model_uri"})


def _check_value_uncached(name: str, value: Any, endpoint: ops.Endpoint) -> _Ok | str:
    from . import spec

    if name == "aspect_ratio":
        norm = ops.normalize_aspect_ratio(value)
        allowed = ops.recipe_values(name, endpoint) or []
        if norm is None or norm not in allowed:
            return f"aspect ratio {value!r} is not accepted here; expected one of {', '.join(allowed)}"
        return _Ok(norm)
    if name == "resolution":
        norm = ops.normalize_resolution(value)
        allowed = ops.recipe_values(name, endpoint) or []
        if norm is None or norm not in allowed:
            return (f"resolution {value!r} is not one the API offers for {endpoint.family} "
                    f"(e.g. {', '.join(allowed[:4])} ...)")
        return _Ok(norm)
    if name == "magic_prompt":
        value = ops.normalize_magic_prompt(value)
    if isinstance(value, bool) and name in _INTEGERS:
        return f"{value!r} is not an integer"
    if name in ("style_type", "rendering_speed", "style_preset", "magic_prompt_version",
                "describe_model_version") and isinstance(value, str):
        value = value.strip().upper()
    prop = endpoint.properties.get(endpoint.wire_name(name))
    if prop is None:
        return f"{name!r} is not accepted by {endpoint.path}"
    errors = spec.validate(value, prop)
    if errors:
        allowed = prop.get("enum")
        if allowed:
            close = _close(str(value), allowed)
            return f"{value!r} is not accepted; expected one of {', '.join(allowed)}" + \
                (f" ({close})" if close else "")
        return errors[0].replace("(body): ", "")
    return _Ok(value)


def _has_template(path: tuple[Any, ...], planner: _Planner) -> bool:
    node: Any = planner.data
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return False
    return templating.is_template(node)


class _RuntimeSteps:
    """Stands for `steps` at plan time: any access makes the field a run-time one."""

    def __getattr__(self, name: str) -> Any:
        raise jinja2.UndefinedError("steps results exist only at run time")


_RUNTIME_STEPS = _RuntimeSteps()
_IMAGE_FIELDS = frozenset(ops.IMAGE_FIELDS)


class _PlaceholderSteps:
    """Lets a run-time template render at plan time, to catch errors early."""

    def __getattr__(self, name: str) -> _Placeholder:
        return _Placeholder()

    def __getitem__(self, name: str) -> _Placeholder:
        return _Placeholder()


class _Placeholder(str):
    def __new__(cls) -> _Placeholder:
        return super().__new__(cls, "…")

    def __getattr__(self, name: str) -> _Placeholder:
        return _Placeholder()

    def __getitem__(self, key: Any) -> _Placeholder:  # type: ignore[override]
        return _Placeholder()


def _is_runtime(source: str, parent: _Slot | None) -> bool:
    refs = templating.references(source)
    if any(r == "steps" or r.startswith("steps.") for r in refs):
        return True
    if "input.api_prompt" in refs:
        return True
    return "input.seed" in refs and parent is not None and parent.seed is None


def _refs(value: Any) -> set[str]:
    out: set[str] = set()
    for text in _strings(value):
        if templating.is_template(text):
            try:
                out |= templating.references(text)
            except jinja2.TemplateSyntaxError:
                pass
    return out


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


_SIMPLE_VAR = re.compile(r"^\s*\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}\s*$")


def _column(source: Any) -> str | None:
    m = _SIMPLE_VAR.match(source) if isinstance(source, str) else None
    return m[1] if m else None


def _close(word: str, options: Iterable[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(word, list(options), n=1)
    return f"did you mean {found[0]!r}?" if found else None


_PLAIN_PATH = re.compile(r"^(?!\.ideopipe(?:/|$))(?:[\w\-][\w\-. ]{0,200}/)*[\w\-][\w\-. ]{0,200}$")
_RESERVED_ANY = re.compile(r"(?:^|/)(?:con|prn|aux|nul|com[0-9]|lpt[0-9])(?:\.[^/]*)?(?:/|$)",
                           re.IGNORECASE)


def _sanitize(text: str) -> str | Problem:
    """A safe relative POSIX path inside the output dir, or the reason it is refused."""
    if _PLAIN_PATH.match(text) and not _RESERVED_ANY.search(text) and "/." not in text \
            and not text.endswith((" ", ".")):
        return text
    if "\x00" in text:
        return Problem("contains a NUL character")
    text = text.strip().replace("\\", "/")
    if not text:
        return Problem("renders to an empty path")
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        return Problem("is an absolute path; output.file must stay inside output.dir")
    parts = []
    for part in text.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            return Problem("contains '..'; output.file must stay inside output.dir")
        if _RESERVED.match(part):
            return Problem(f"{part!r} is a reserved file name on Windows")
        if len(part.encode()) > 255 or any(c in part for c in '<>:"|?*') or \
                any(ord(c) < 32 for c in part):
            return Problem(f"{part!r} is not a portable file name")
        parts.append(part)
    if parts[0] == ".ideopipe":
        return Problem("'.ideopipe' is reserved for ideopipe's own state")
    return "/".join(parts)


def image_id(task_id: str, n: int) -> str:
    """The id of the n-th image a task produces."""
    return hashlib.sha256(f"{task_id}:{n}".encode()).hexdigest()[:16]


# Built once: json.dumps() with options builds a new encoder on every call.
_COMPACT = json.JSONEncoder(separators=(",", ":"), default=str)
_CANONICAL = json.JSONEncoder(separators=(",", ":"), sort_keys=True, default=str)


def _canonical(value: Any) -> str:
    """Canonical JSON: sorted keys, no whitespace."""
    return _CANONICAL.encode(value)


def content_key(value: Any) -> str:
    """sha256 of canonical JSON (sorted keys, no whitespace)."""
    return hashlib.sha256(_canonical(value).encode()).hexdigest()
