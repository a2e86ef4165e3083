"""The planner: recipe + rows -> every request, with its seed, output paths and exact cost.

It is pure: it reads the recipe, the rows and local input images, and returns a Plan.
Nothing is written, nothing is sent and no process-wide state changes; what it
remembers (checked values, image digests) lives only as long as one call. Every
problem found is collected and raised together at the end.

It is also the hot loop of `plan` for big batches, so what is the same for every row of
a step (its parameters, price, the fixed part of its content key) is worked out once, and
what is the same for every step of a row (its template context, its JSON) once per row.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import Problem
from ..inputs import ImageRef
from ..recipe import Recipe
from .fast import FastShape, fast_shape, fast_step
from .images import Images
from .keys import COMPACT, canonical, image_id
from .model import Plan, StepImage, Task
from .order import check_syntax, order_steps
from .outputs import Outputs
from .parameters import Checker, StepShape
from .request import gather
from .runtime import RUNTIME_STEPS
from .seeds import SeedPlan, derived_from, plan_seeds
from .selection import row_context, select_rows
from .session import Session
from .step_facts import StepFacts
from .tasks import RowScope, StepScope, make_task, task_key
from .tasks import Slot as _Slot

_MISSING: Any = object()
_NO_INPUT: dict[str, Any] = {}
_NO_PARENT: list[None] = [None]


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


class _Planner:
    """Walks rows x matrix combinations x steps, building the tasks of one plan."""

    def __init__(self, s: Session) -> None:
        self.s = s
        self.checker = Checker()
        self.facts = StepFacts(s, self.checker)
        self.images = Images(s)
        self.outputs = Outputs(s)
        self.name_json = COMPACT.encode(s.r.name)
        self.sid_json = {step["id"]: COMPACT.encode(step["id"]) for step in s.steps}
        self.known: dict[str, tuple[int, str, StepShape, FastShape | None]] = {}  # fixed-model steps
        self.fed = {step["input"] for step in s.steps if "input" in step}  # steps whose images go on
        self.fast: dict[tuple[str, str], FastShape | None] = {}  # (step id, model) -> its fast path

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
        combos = [dict(zip(names, c)) for c in itertools.product(*(s.matrix[n] for n in names))]
        for row, key in selected:
            base = row_context(s, row, key)
            key_json = COMPACT.encode(key)
            for matrix in combos or [{}]:
                ctx = {**base, **matrix} if matrix else base
                scope = RowScope(row, key, key_json, matrix, ctx, self.outputs.row_pieces(ctx))
                slots: dict[str, list[_Slot]] = {}
                step_tasks: dict[str, list[str]] = {}
                for step in order:
                    tasks.extend(self._step(step, scope, slots, step_tasks))
        self.outputs.finish()
        s.problems.raise_if_any()
        if not tasks:
            s.problems.warn(Problem("no rows selected: the plan is empty", file=s.r.shown))
        rows = [r for r, _ in selected]
        return Plan(s.r, tasks, rows, s.prices, s.provider, s.out_dir, s.problems.warnings)

    def _step(
        self,
        step: dict[str, Any],
        scope: RowScope,
        slots: dict[str, list[_Slot]],
        step_tasks: dict[str, list[str]],
    ) -> list[Task]:
        sid = step["id"]
        scope.ctx["step"] = sid  # the row's context is reused step after step, never copied
        known = self.known.get(sid)
        if known is None:
            i = self.s.step_index[sid]
            found = self.facts.shape(step, i, scope)
            if found is None:
                return []
            model, shape = found
            fs = self.fast.get((sid, model), _MISSING)
            if fs is _MISSING:
                fs = self.fast[(sid, model)] = fast_shape(self.s, shape)
            if sid in self.facts.models:  # the same for every row
                self.known[sid] = (i, model, shape, fs)
        else:
            i, model, shape, fs = known
        parents: list[_Slot] | list[None] = _NO_PARENT
        if "input" in step:
            if step["input"] not in slots:
                return []
            parents = slots[step["input"]]
        extra = (
            tuple(t for d in sorted(shape.refs_needed) for t in step_tasks.get(d, ()))
            if shape.refs_needed
            else ()
        )
        head = f"[{self.name_json},{scope.key_json},{self.sid_json[sid]},{scope.matrix_items_json}"
        at = StepScope(step, i, shape, model, scope, extra, canonical(list(extra)) if extra else "[]", head)
        if fs is not None:
            done = fast_step(self, at, fs, parents)
            if done is not None:
                slots[sid] = done[1]
                step_tasks[sid] = [t.id for t in done[0]]
                return done[0]
        made: list[Task] = []
        out_slots: list[_Slot] = []
        images = shape.endpoint.yields_images and sid in self.fed  # else no step reads its slots
        counter = 0
        for parent in parents:
            for task in self._requests(at, parent, counter):
                made.append(task)
                counter += task.num_images
                if images:
                    lineage = parent.lineage if parent else ()
                    prompt = task.params.get("prompt")
                    for n, iid in enumerate(task.image_ids):
                        seen = (*lineage, task.image_indexes[n])
                        out_slots.append(_Slot(iid, seen, task.seed, prompt, task.outputs[n], task.id))
        slots[sid] = out_slots
        step_tasks[sid] = [t.id for t in made]
        return made

    def _requests(self, at: StepScope, parent: _Slot | None, first_index: int) -> list[Task]:
        s, shape, step, i, row, ctx = self.s, at.shape, at.step, at.i, at.row.row, at.row.ctx
        if parent is not None and shape.reads_input:
            ctx["input"] = {"seed": parent.seed, "prompt": parent.prompt, "file": parent.file}
            ctx["input"].update(image_id=parent.image_id, api_prompt="", step=step["input"])
        else:
            ctx["input"] = _NO_INPUT
        ctx["steps"] = RUNTIME_STEPS
        seed_known = None if parent is None else parent.seed is not None
        gathered = gather(s, self.checker, self.images, shape, ctx, row, seed_known)
        if gathered is None:
            return []
        params, deferred, images = gathered
        if parent is not None:
            if images:
                images = {**images, "image": (ImageRef("step", parent.image_id),)}
            else:
                images = StepImage(parent.image_id)  # type: ignore[assignment]
        if "mask" in images and not self.images.mask_fits(images, step, i, row):
            return []
        if not self.facts.cross_ok(at, params, deferred, seed_known):
            return []
        if params is not shape.base:
            num = int(params.pop("num_images", shape.fixed_num or 1))
            fixed_seed = params.pop("seed", shape.fixed_seed)
        else:
            num, fixed_seed = shape.fixed_num or 1, shape.fixed_seed
        seeds: list[SeedPlan] | None = [(None, "api", 1, first_index)]  # describe: one answer
        if "seed" in shape.endpoint.accepts:
            lineage = parent.lineage if parent else ()
            if fixed_seed is None and s.seed_policy == "derive":
                seeds = [
                    (seed, "derived", 1, first_index + n)
                    for n, seed in enumerate(derived_from(at.seed_head, lineage, first_index, num))
                ]
            else:
                matrix = at.row.matrix
                seeds = plan_seeds(
                    s, fixed_seed, num, step["id"], at.row.key, matrix, lineage, first_index, ctx, i, row
                )
        if seeds is None:
            return []
        if deferred:
            context: Mapping[str, Any] = dict(ctx)
        else:
            context = _NO_INPUT
        tasks = []
        for seed, seed_source, count, index0 in seeds:
            tid = task_key(at, params, deferred, images, seed, seed_source, count, index0, parent)
            image_ids: tuple[str, ...] = (
                (image_id(tid, 0),) if count == 1 else tuple(image_id(tid, n) for n in range(count))
            )
            outputs: tuple[str | None, ...] = (None,) * count
            if shape.endpoint.yields_images:
                path = self.outputs.path
                outputs = tuple(
                    [path(at.row, step["id"], index0 + n, seed, iid) for n, iid in enumerate(image_ids)]
                )
            tasks.append(
                make_task(
                    s,
                    at,
                    params,
                    deferred,
                    images,
                    seed,
                    seed_source,
                    count,
                    index0,
                    tid,
                    image_ids,
                    outputs,
                    parent,
                    context,
                )
            )
        return tasks
