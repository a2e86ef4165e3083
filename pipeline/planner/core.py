"""The planner: recipe + rows -> every request, with its seed, output paths and exact cost.

It is pure: it reads the recipe, the rows and local input images, and returns a Plan.
Nothing is written, nothing is sent and no process-wide state changes; what it
remembers (checked values, image digests) lives only as long as one call. Every
problem found is collected and raised together at the end.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import ops
from .. import rows as rowsource
from ..errors import Problem
from ..inputs import ImageRef
from ..ops import Op
from ..pricing import price_key
from ..recipe import Recipe
from .images import Images
from .keys import canonical, image_id
from .model import Plan, Task
from .order import check_syntax, order_steps
from .outputs import Outputs
from .parameters import Checker, StepShape, cross_checks, gather, step_shape
from .runtime import RUNTIME_STEPS
from .seeds import SeedPlan, plan_seeds
from .selection import row_context, select_rows
from .session import Session

_MISSING: Any = object()


def plan(
    recipe: Recipe,
    *,
    provider: str | None = None,
    limit: int | None = None,
    row_range: tuple[int, int] | None = None,
    prices: Mapping[str, float] | None = None,
    out_dir: Path | None = None,
) -> Plan:
    """Plan every request of a recipe; raises RecipeError listing every problem."""
    return _Planner(Session(recipe, provider, prices, out_dir)).plan(limit, row_range)


@dataclass(slots=True)
class _Slot:
    """An image a step will produce, which later steps may take as input."""

    image_id: str
    lineage: tuple[int, ...]
    seed: int | None
    prompt: str | None
    file: str | None
    task_id: str


class _Planner:
    """Walks rows x matrix combinations x steps, building the tasks of one plan."""

    def __init__(self, s: Session) -> None:
        self.s = s
        self.checker = Checker()
        self.images = Images(s)
        self.outputs = Outputs(s)
        self.shapes: dict[tuple[str, str], StepShape | None] = {}

    def plan(self, limit: int | None, row_range: tuple[int, int] | None) -> Plan:
        """The plan, or RecipeError with every problem."""
        s = self.s
        before = len(s.problems.items)  # a bad prices_file does not stop the rest
        order = order_steps(s)
        check_syntax(s)
        if len(s.problems.items) > before:
            select_rows(s, limit, row_range)  # the rows' own problems belong in the same report
            s.problems.raise_if_any()
        selected = select_rows(s, limit, row_range)
        tasks: list[Task] = []
        names = list(s.matrix)
        combos = list(itertools.product(*(s.matrix[n] for n in names))) or [()]
        for row, key in selected:
            base = row_context(s, row, key)
            for combo in combos:
                matrix = dict(zip(names, combo))
                ctx = {**base, **matrix}
                slots: dict[str, list[_Slot]] = {}
                step_tasks: dict[str, list[str]] = {}
                for step in order:
                    tasks.extend(self._step(step, row, key, matrix, ctx, slots, step_tasks))
        self.outputs.finish()
        s.problems.raise_if_any()
        if not tasks:
            s.problems.warn(Problem("no rows selected: the plan is empty", file=s.r.shown))
        return Plan(
            s.r, tasks, [r for r, _ in selected], s.prices, s.provider, s.out_dir, s.problems.warnings
        )

    def _step(
        self,
        step: dict[str, Any],
        row: rowsource.Row,
        key: str,
        matrix: dict[str, Any],
        ctx: dict[str, Any],
        slots: dict[str, list[_Slot]],
        step_tasks: dict[str, list[str]],
    ) -> list[Task]:
        s = self.s
        sid = step["id"]
        i = s.step_index[sid]
        ctx = {**ctx, "step": sid}
        model_src = step.get("model", s.defaults.get("model", ops.DEFAULT_MODEL))
        model = s.render(model_src, ctx, ("steps", i, "model"), row)
        if model is None:
            return []
        model = model.strip()
        if model not in ops.MODELS:
            s.problem(
                ("steps", i, "model"), f"unknown model {model!r}", "expected one of " + ", ".join(ops.MODELS)
            )
            return []
        shape = self.shapes.get((sid, model), _MISSING)
        if shape is _MISSING:
            shape = self.shapes[(sid, model)] = step_shape(s, self.checker, step, i, Op(step["op"]), model)
        if shape is None:
            return []
        parents: list[_Slot | None] = [None]
        if "input" in step:
            if step["input"] not in slots:
                return []
            parents = list(slots[step["input"]])
        extra = tuple(t for d in sorted(shape.refs_needed) for t in step_tasks.get(d, ()))
        at = _At(step, i, shape, model, row, key, matrix, ctx, extra)
        made: list[Task] = []
        out_slots: list[_Slot] = []
        for parent in parents:
            for task in self._requests(at, parent, sum(len(t.image_ids) for t in made)):
                made.append(task)
                if shape.endpoint.yields_images:
                    for n, iid in enumerate(task.image_ids):
                        lineage = (*(parent.lineage if parent else ()), task.image_indexes[n])
                        prompt = task.params.get("prompt")
                        out_slots.append(_Slot(iid, lineage, task.seed, prompt, task.outputs[n], task.id))
        slots[sid] = out_slots
        step_tasks[sid] = [t.id for t in made]
        return made

    def _requests(self, at: _At, parent: _Slot | None, first_index: int) -> list[Task]:
        s, endpoint, step, i, row = self.s, at.shape.endpoint, at.step, at.i, at.row
        input_ctx: dict[str, Any] = {}
        if parent is not None:
            input_ctx = {"seed": parent.seed, "prompt": parent.prompt, "file": parent.file}
            input_ctx.update(image_id=parent.image_id, api_prompt="", step=step["input"])
        ctx = {**at.ctx, "input": input_ctx, "steps": RUNTIME_STEPS}
        seed_known = None if parent is None else parent.seed is not None
        gathered = gather(s, self.checker, self.images, at.shape, step, i, ctx, row, seed_known)
        if gathered is None:
            return []
        params, deferred, images = gathered
        if parent is not None:
            images["image"] = (ImageRef("step", parent.image_id),)
        if not self.images.mask_fits(images, step, i, row):
            return []
        if not cross_checks(s, params, deferred, endpoint, at.model, step, i):
            return []
        num = int(params.pop("num_images", 1))
        seeds: list[SeedPlan] | None = [(None, "api", 1, first_index)]  # describe: one answer
        if "seed" in endpoint.accepts:
            lineage = parent.lineage if parent else ()
            fixed = params.pop("seed", None)
            seeds = plan_seeds(
                s, fixed, num, step["id"], at.key, at.matrix, lineage, first_index, ctx, i, row
            )
        if seeds is None:
            return []
        tasks = []
        for seed, seed_source, count, index0 in seeds:
            request = _Request(params, deferred, images, seed, seed_source, count, index0)
            tid = _task_id(at, request)
            image_ids = tuple(image_id(tid, n) for n in range(count))
            outputs: tuple[str | None, ...] = (None,) * count
            if endpoint.yields_images:
                idx = range(index0, index0 + count)
                outputs = tuple(
                    self.outputs.path(ctx, at.step["id"], n, seed, iid, row) for n, iid in zip(idx, image_ids)
                )
            tasks.append(_task(s, at, request, tid, image_ids, outputs, parent, ctx))
        return tasks


@dataclass(frozen=True, slots=True)
class _At:
    """One step of one row and matrix combination: what all its requests share."""

    step: dict[str, Any]
    i: int
    shape: StepShape
    model: str
    row: rowsource.Row
    key: str
    matrix: dict[str, Any]
    ctx: dict[str, Any]
    depends_extra: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Request:
    """What one request of a step adds: its parameters, images and seed."""

    params: dict[str, Any]
    deferred: dict[str, str]
    images: dict[str, tuple[ImageRef, ...]]
    seed: int | None
    seed_source: str
    count: int
    index0: int


def _task_id(at: _At, r: _Request) -> str:
    """The content key: the step's shared part (serialised once), then what the request adds."""
    fixed = at.shape.fixed
    varying = {k: v for k, v in r.params.items() if k not in fixed}
    image_refs = {k: [f"{x.kind}:{x.value}:{x.digest}" for x in v] for k, v in r.images.items()}
    api = None if r.seed_source != "api" else [at.step["id"], r.index0]
    own = [varying, r.deferred, r.seed, r.count, image_refs, at.depends_extra, at.key, at.matrix, api]
    return hashlib.sha256((at.shape.same_json + canonical(own)).encode()).hexdigest()


def _task(
    s: Session,
    at: _At,
    r: _Request,
    tid: str,
    image_ids: tuple[str, ...],
    outputs: tuple[str | None, ...],
    parent: _Slot | None,
    ctx: dict[str, Any],
) -> Task:
    endpoint = at.shape.endpoint
    price_k = price_key(at.step["op"], endpoint.family, at.model, r.params.get("rendering_speed"))
    per_image = s.prices.per_image(price_k)
    return Task(
        id=tid,
        step_id=at.step["id"],
        op=at.step["op"],
        endpoint=endpoint.path,
        family=endpoint.family,
        model=at.model,
        row_index=at.row.index,
        row_key=at.key,
        matrix=at.matrix,
        params=r.params,
        images=r.images,
        seed=r.seed,
        seed_source=r.seed_source,
        num_images=r.count,
        image_ids=image_ids,
        image_indexes=tuple(range(r.index0, r.index0 + r.count)),
        outputs=outputs,
        parent_image_id=parent.image_id if parent else None,
        depends_on=((parent.task_id,) if parent else ()) + at.depends_extra,
        deferred=r.deferred,
        context=ctx if r.deferred else {},
        price_key=price_k,
        cost_usd=None if per_image is None else round(per_image * r.count, 6),
    )
