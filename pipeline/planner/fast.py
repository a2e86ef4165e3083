"""The usual step, planned in one pass: derived seeds, plain prompts, no run-time fields.

Most steps of a big batch are like this: every parameter is fixed except prompts made only
of `{{ name }}` over text values, the seed is derived, the input (if any) is the parent
step's image and the output file is the row's format string. `fast_step` builds their
tasks without the general path's layers of calls; what it cannot decide cheaply it hands
back before leaving any trace (a prompt value that is not text: the general path renders
or reports it), or per image to `Outputs.path` (a path that needs sanitising, a check or a
report). Its tasks are the general path's, field for field (tests/test_planner.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..templating import MAX_OUTPUT
from .keys import encode_string
from .model import StepImage, Task
from .parameters import VALUE, StepShape
from .paths import is_plain
from .request import NO_DEFERRED
from .runtime import RUNTIME_STEPS
from .seeds import MAX_SEED
from .session import Session
from .tasks import Slot, StepScope

if TYPE_CHECKING:
    from .core import _Planner

_NO_INPUT: dict[str, Any] = {}
_NO_IMAGES: dict[str, Any] = {}  # shared by the parentless tasks of the fast path: never mutated
_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class FastShape:
    """What the fast path needs of a simple step, worked out once per step and model."""

    prompts: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]  # (name, texts, names)
    own_keys: tuple[tuple[str, str], ...]  # (name, its JSON key and colon), in sorted order
    price_key: str
    num: int


def fast_shape(s: Session, shape: StepShape) -> FastShape | None:
    """The fast path's view of a step, or None when its requests need the general path."""
    endpoint = shape.endpoint
    simple = (
        s.seed_policy == "derive"
        and shape.fixed_seed is None
        and "seed" in endpoint.accepts
        and endpoint.yields_images
        and shape.price_key is not None
        and not shape.reads_input
        and all(v.kind == VALUE and v.free_text and v.plain is not None for v in shape.varying)
    )
    if not simple or shape.price_key is None:
        return None
    prompts = tuple((v.name, *v.plain) for v in shape.varying if v.plain is not None)
    own = tuple((name, encode_string(name) + ":") for name in sorted(v.name for v in shape.varying))
    return FastShape(prompts, own, shape.price_key, shape.fixed_num or 1)


def fast_step(
    p: _Planner, at: StepScope, fs: FastShape, parents: list[Slot] | list[None]
) -> tuple[list[Task], list[Slot]] | None:
    """The tasks and output images of one simple step of a row, or None: take the general path."""
    shape, row = at.shape, at.row
    ctx = row.ctx
    base = shape.base
    if fs.prompts:
        params = dict(base)
        for name, texts, names in fs.prompts:
            out = [texts[0]]
            for var, text in zip(names, texts[1:]):
                value = ctx.get(var)
                if type(value) is not str:
                    return None  # a number, None or missing: the general path renders or reports it
                out += (value, text)
            rendered = "".join(out)
            if len(rendered) > MAX_OUTPUT:
                return None  # the general path applies the templating limit and reports
            params[name] = rendered
        own = "{" + ",".join([key + encode_string(params[name]) for name, key in fs.own_keys]) + "}"
    else:
        params, own = base, "{}"
    ctx["input"] = _NO_INPUT  # what the general path leaves in the row's context
    ctx["steps"] = RUNTIME_STEPS
    s = p.s
    sid, model = at.step["id"], at.model
    price_k = fs.price_key
    cost = s.shared.get((price_k, 1), _MISSING)
    if cost is _MISSING:
        per_image = s.prices.per_image(price_k)
        cost = s.shared[(price_k, 1)] = None if per_image is None else round(per_image, 6)
    head = f"{shape.same_json}[{own},{{}},"
    rest = f"{at.depends_json},{row.key_json},{row.matrix_json},null]"
    outputs = p.outputs
    owner, folders_ok, short, path_of = outputs.owner, outputs._folders_ok, outputs._short, outputs.path
    inside = outputs.inside
    fmt = row.file_pieces
    tag = row.tag(sid)
    sha256, from_bytes, shared = hashlib.sha256, int.from_bytes, s.shared
    endpoint = shape.endpoint
    op, family, row_index, key, matrix = at.step["op"], endpoint.family, row.row.index, row.key, row.matrix
    prompt = params.get("prompt")
    checked, cross_ok = p.facts.cross_checked, p.facts.cross_ok
    num = fs.num
    tasks: list[Task] = []
    out_slots: list[Slot] = []
    keep = sid in p.fed  # a step no other step takes as input needs no slots
    first = 0
    for parent in parents:
        seed_known = None if parent is None else parent.seed is not None
        ok = checked.get((sid, model, seed_known)) or cross_ok(at, params, NO_DEFERRED, seed_known)
        if not ok:
            continue  # reported; the general path makes no task for this parent either
        if parent is not None:
            lineage = parent.lineage
            images: Any = StepImage(parent.image_id)
            tail = ',1,{"image":["step:' + parent.image_id + ':"]},' + rest
            depends = (parent.task_id, *at.depends_extra)
            parent_id: str | None = parent.image_id
        else:
            lineage, images, tail = (), _NO_IMAGES, ",1,{}," + rest
            depends, parent_id = at.depends_extra, None
        seed_prefix = at.seed_head + (",[" + ",".join(map(str, lineage)) + "]," if lineage else ",[],")
        for index in range(first, first + num):
            seed = from_bytes(sha256(f"{seed_prefix}{index}]".encode()).digest()[:4]) & MAX_SEED
            tid = sha256(f"{head}{seed}{tail}".encode()).hexdigest()
            iid = sha256(f"{tid}:0".encode()).hexdigest()[:16]
            rel: str | None
            if fmt is not None:
                text = fmt.format(sid, index, seed, iid, "png")
                if (
                    len(text) <= short
                    and text not in owner
                    and is_plain(text)
                    and ((folder := text.rpartition("/")[0]) in folders_ok or not folder or inside(folder))
                ):
                    owner[text] = tag
                    rel = text
                else:
                    rel = path_of(row, sid, index, seed, iid)
            else:
                rel = path_of(row, sid, index, seed, iid)
            indexes = shared.get((index, 1))
            if indexes is None:
                indexes = shared[(index, 1)] = (index,)
            tasks.append(
                Task(
                    tid,
                    sid,
                    op,
                    endpoint.path,
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
                    cost,
                )
            )
            if keep:
                out_slots.append(Slot(iid, (*lineage, index), seed, prompt, rel, tid))
        first += num
    return tasks, out_slots
