"""One request's own parameters: the step's fixed ones plus what this row renders."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import rows as rowsource
from ..inputs import ImageRef
from ..templating import render_plain
from .images import Images
from .parameters import IMAGE, INVALID, RUNTIME, RUNTIME_WITHOUT_SEED, Checker, StepShape, value
from .runtime import placeholders
from .session import Session

Gathered = tuple[dict[str, Any], dict[str, str], dict[str, tuple[ImageRef, ...]]]
NO_DEFERRED: dict[str, str] = {}  # shared by every request without run-time fields: never mutated


def gather(
    s: Session,
    checker: Checker,
    images: Images,
    shape: StepShape,
    ctx: Mapping[str, Any],
    row: rowsource.Row,
    parent_seed_known: bool | None,
) -> Gathered | None:
    """(params, deferred templates, input images) of one request, or None (reported).

    A request with nothing of its own shares the step's `base` parameters.
    """
    if not shape.varying:
        return shape.base, NO_DEFERRED, {}
    params = dict(shape.base)
    deferred = NO_DEFERRED
    refs: dict[str, tuple[ImageRef, ...]] = {}
    ok = True  # every field is checked, so one run reports all of a row's problems
    for v in shape.varying:
        kind = v.kind
        if kind == IMAGE:
            found = images.refs(v.name, v.raw, ctx, v.path, row)
            if found is None:
                ok = False
                continue
            refs[v.name] = found
        elif kind == RUNTIME or (kind == RUNTIME_WITHOUT_SEED and parent_seed_known is False):
            if deferred is NO_DEFERRED:
                deferred = {}
            deferred[v.name] = v.raw
            if s.render(v.raw, placeholders(ctx), v.path, row) is None:
                ok = False
        else:
            if v.free_text and v.plain is not None:  # the usual prompt: any text is valid
                try:
                    params[v.name] = render_plain(v.plain[0], v.plain[1], ctx)
                    continue
                except Exception:  # rendered again below, which reports the problem
                    pass
            checked = value(s, checker, v.name, v.raw, ctx, v.path, row, shape.endpoint)
            if checked is INVALID:
                ok = False
                continue
            params[v.name] = checked
    return (params, deferred, refs) if ok else None
