"""The usual request, built in one pass: derived seeds, plain prompts, no run-time fields.

Most steps of a big batch are like this: every parameter is fixed except prompts made only
of `{{ name }}`, the seed is derived, the input (if any) is the parent step's image and the
output file is the per-row format string. `fast_requests` builds their tasks without the
general path's layers of calls; whatever it cannot decide cheaply (a prompt that does not
render to text, an output path that needs sanitising, checking or reporting) it hands back
to the general path, before doing anything that leaves a trace, or per image to
`Outputs.path`. Its tasks are the general path's, field for field (tests/test_planner.py).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from ..templating import MAX_OUTPUT
from .model import StepImage, Task
from .parameters import VALUE, StepShape
from .paths import is_plain
from .request import NO_DEFERRED
from .runtime import RUNTIME_STEPS
from .seeds import MAX_SEED
from .session import Session
from .tasks import StepScope, flat_json

if TYPE_CHECKING:
    from .core import _Planner, _Slot

_NO_INPUT: dict[str, Any] = {}
_NO_IMAGES: dict[str, Any] = {}  # shared by the parentless tasks of the fast path: never mutated
_MISSING: Any = object()


def is_simple(s: Session, shape: StepShape) -> bool:
    """True when every request of the step can take the fast path."""
    endpoint = shape.endpoint
    return (
        s.seed_policy == "derive"
        and shape.fixed_seed is None
        and "seed" in endpoint.accepts
        and endpoint.yields_images
        and shape.price_key is not None
        and not shape.reads_input
        and all(v.kind == VALUE and v.free_text and v.plain is not None for v in shape.varying)
    )


def fast_requests(p: _Planner, at: StepScope, parent: _Slot | None, first_index: int) -> list[Task] | None:
    """The tasks of one request group of a simple step, or None: take the general path."""
    shape, ctx, row = at.shape, at.row.ctx, at.row
    ctx["input"] = _NO_INPUT
    ctx["steps"] = RUNTIME_STEPS
    base = shape.base
    if shape.varying:
        params = dict(base)
        for v in shape.varying:
            texts, names = v.plain  # type: ignore[misc]
            out = [texts[0]]
            for name, text in zip(names, texts[1:]):
                value = ctx.get(name)
                if type(value) is not str:
                    return None  # a number, None or missing: the general path renders or reports it
                out += (value, text)
            rendered = "".join(out)
            if len(rendered) > MAX_OUTPUT:
                return None  # the general path applies the templating limit and reports
            params[v.name] = rendered
        own = flat_json({k: v for k, v in params.items() if k not in shape.fixed})
    else:
        params, own = base, "{}"
    sid, model = at.step["id"], at.model
    seed_known = None if parent is None else parent.seed is not None
    if not p.cross_ok.get((sid, model, seed_known)) and not p._cross_ok(at, params, NO_DEFERRED, seed_known):
        return []
    s = p.s
    price_k = shape.price_key
    cost = s.shared.get((price_k, 1), _MISSING)
    if cost is _MISSING:
        per_image = s.prices.per_image(price_k)  # type: ignore[arg-type]
        cost = s.shared[(price_k, 1)] = None if per_image is None else round(per_image, 6)
    if parent is not None:
        lineage = parent.lineage
        images: Any = StepImage(parent.image_id)
        refs = '{"image":["step:' + parent.image_id + ':"]}'
        depends = (parent.task_id, *at.depends_extra)
        parent_id = parent.image_id
    else:
        lineage, images, refs, depends, parent_id = (), _NO_IMAGES, "{}", at.depends_extra, None
    seed_prefix = at.seed_head + (",[" + ",".join(map(str, lineage)) + "]," if lineage else ",[],")
    head = f"{shape.same_json}[{own},{{}},"
    tail = f",1,{refs},{at.depends_json},{row.key_json},{row.matrix_json},null]"
    outputs = p.outputs
    owner, folders_ok, short = outputs.owner, outputs._folders_ok, outputs._short
    fmt = row.file_pieces
    tag = row.tag(sid)
    sha256, from_bytes, shared = hashlib.sha256, int.from_bytes, s.shared
    endpoint = shape.endpoint
    op, path_, family, row_index, key, matrix = (
        at.step["op"],
        endpoint.path,
        endpoint.family,
        row.row.index,
        row.key,
        row.matrix,
    )
    tasks = []
    for index in range(first_index, first_index + (shape.fixed_num or 1)):
        seed = from_bytes(sha256(f"{seed_prefix}{index}]".encode()).digest()[:4]) & MAX_SEED
        tid = sha256(f"{head}{seed}{tail}".encode()).hexdigest()
        iid = sha256(f"{tid}:0".encode()).hexdigest()[:16]
        rel: str | None = None
        if fmt is not None:
            text = fmt.format(sid, index, seed, iid, "png")
            if (
                len(text) <= short
                and text not in owner
                and ((folder := text.rpartition("/")[0]) in folders_ok or not folder)
                and is_plain(text)
            ):
                owner[text] = tag
                rel = text
            else:
                rel = outputs.path(row, sid, index, seed, iid)
        else:
            rel = outputs.path(row, sid, index, seed, iid)
        indexes = shared.get((index, 1))
        if indexes is None:
            indexes = shared[(index, 1)] = (index,)
        tasks.append(
            Task(
                tid,
                sid,
                op,
                path_,
                family,
                model,
                row_index,
                key,
                matrix,
                params,
                images,
                seed,
                "derived",
                1,
                (iid,),
                indexes,
                (rel,),
                parent_id,
                depends,
                NO_DEFERRED,
                _NO_INPUT,
                price_k,
                cost,  # type: ignore[arg-type]
            )
        )
    return tasks
