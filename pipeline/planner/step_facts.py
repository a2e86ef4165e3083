"""What the planner works out once per step and model: its shape, and the rules between parameters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import ops, templating
from ..ops import Op
from .parameters import Checker, StepShape, cross_checks, step_shape
from .session import Session
from .tasks import RowScope, StepScope

_MISSING: Any = object()


class StepFacts:
    """Per-plan caches of step shapes, fixed models and parameter cross checks."""

    def __init__(self, s: Session, checker: Checker) -> None:
        self.s = s
        self.checker = checker
        self.shapes: dict[tuple[str, str], StepShape | None] = {}
        self.cross_checked: dict[tuple[str, str, bool | None], bool] = {}
        self.models: dict[str, str] = {}  # step id -> its model, when that is not a template

    def shape(self, step: dict[str, Any], i: int, scope: RowScope) -> tuple[str, StepShape] | None:
        """The step's model and shape for this row (None when either is refused)."""
        s = self.s
        model = self.models.get(step["id"])
        if model is not None:
            shape = self.shapes[(step["id"], model)]
            return None if shape is None else (model, shape)
        model_src = step.get("model", s.defaults.get("model", ops.DEFAULT_MODEL))
        rendered = s.render(model_src, scope.ctx, ("steps", i, "model"), scope.row)
        if rendered is None:
            return None
        model = rendered.strip()
        if model not in ops.MODELS:
            s.problem(
                ("steps", i, "model"), f"unknown model {model!r}", "expected one of " + ", ".join(ops.MODELS)
            )
            return None
        shape = self.shapes.get((step["id"], model), _MISSING)
        if shape is _MISSING:
            shape = step_shape(s, self.checker, step, i, Op(step["op"]), model)
            self.shapes[(step["id"], model)] = shape
            if not templating.is_template(model_src):
                self.models[step["id"]] = model
        return None if shape is None else (model, shape)

    def cross_ok(
        self, at: StepScope, params: dict[str, Any], deferred: Mapping[str, str], seed_known: bool | None
    ) -> bool:
        """The rules between parameters, checked once per step, model and kind of parent."""
        key = (at.step["id"], at.model, seed_known)
        ok = self.cross_checked.get(key)
        if ok is None or not ok:  # a broken rule is reported for every row it breaks
            endpoint = at.shape.endpoint
            ok = self.cross_checked[key] = cross_checks(
                self.s, params, deferred, endpoint, at.model, at.step, at.i
            )
        return ok
