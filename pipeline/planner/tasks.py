"""Building tasks fast: a row's and a step's shared parts, the content key, the Task itself."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import rows as rowsource
from ..inputs import ImageRef
from ..pricing import price_key
from .keys import COMPACT, canonical, encode_string
from .model import Task
from .parameters import StepShape
from .session import Session

_MISSING: Any = object()


@dataclass(slots=True)
class Slot:
    """An image a step will produce, which later steps may take as input."""

    image_id: str
    lineage: tuple[int, ...]
    seed: int | None
    prompt: str | None
    file: str | None
    task_id: str


@dataclass(slots=True)
class RowScope:
    """One row and matrix combination: its context (reused by every step) and JSON, made once."""

    row: rowsource.Row
    key: str
    key_json: str
    matrix: dict[str, Any]
    ctx: dict[str, Any]
    file_pieces: str | None  # output.file rendered up to the per-image names (a format string)
    matrix_json: str = "{}"
    matrix_items_json: str = "[]"
    tags: dict[str, tuple[rowsource.Row, str]] | None = None

    def __post_init__(self) -> None:
        if self.matrix:
            self.matrix_json = canonical(self.matrix)
            self.matrix_items_json = COMPACT.encode(sorted(self.matrix.items()))

    def tag(self, sid: str) -> tuple[rowsource.Row, str]:
        """(row, step id), one tuple for all the images of this row's step."""
        if self.tags is None:
            self.tags = {}
        found = self.tags.get(sid)
        if found is None:
            found = self.tags[sid] = (self.row, sid)
        return found


@dataclass(slots=True)
class StepScope:
    """One step of one row: what all its requests share."""

    step: dict[str, Any]
    i: int
    shape: StepShape
    model: str
    row: RowScope
    depends_extra: tuple[str, ...]
    depends_json: str
    seed_head: str  # the derive formula's JSON up to the lineage


def flat_json(values: Mapping[str, Any]) -> str:
    """canonical(values), built by hand for the usual flat mapping of texts and integers."""
    parts = []
    for k in sorted(values):
        v = values[k]
        if type(v) is str:
            parts.append(f"{encode_string(k)}:{encode_string(v)}")
        elif type(v) is int:
            parts.append(f"{encode_string(k)}:{v}")
        else:
            return canonical(values)
    return "{" + ",".join(parts) + "}"


def task_key(
    at: StepScope,
    params: Mapping[str, Any],
    deferred: Mapping[str, str],
    images: Mapping[str, tuple[ImageRef, ...]],
    seed: int | None,
    seed_source: str,
    count: int,
    index0: int,
    parent: Slot | None,
) -> str:
    """The content key: sha256 of the step's shared JSON, then of what this request adds.

    The second part is canonical JSON of [own params, deferred, seed, count, image refs,
    extra dependencies, row key, matrix, api-seed marker], assembled from parts encoded once.
    """
    fixed = at.shape.fixed
    own = "{}" if params is at.shape.base else flat_json({k: v for k, v in params.items() if k not in fixed})
    if len(images) == 1 and parent is not None:
        refs = '{"image":["step:' + parent.image_id + ':"]}'  # an image id is hex: nothing to escape
    elif images:
        refs = canonical({k: [f"{r.kind}:{r.value}:{r.digest}" for r in v] for k, v in images.items()})
    else:
        refs = "{}"
    seed_json = str(seed) if type(seed) is int else canonical(seed)
    api = "null" if seed_source != "api" else canonical([at.step["id"], index0])
    text = (
        f"{at.shape.same_json}[{own},{canonical(deferred) if deferred else '{}'},{seed_json},{count},"
        f"{refs},{at.depends_json},{at.row.key_json},{at.row.matrix_json},{api}]"
    )
    return hashlib.sha256(text.encode()).hexdigest()


def make_task(
    s: Session,
    at: StepScope,
    params: dict[str, Any],
    deferred: dict[str, str],
    images: Mapping[str, tuple[ImageRef, ...]],
    seed: int | None,
    seed_source: str,
    count: int,
    index0: int,
    tid: str,
    image_ids: tuple[str, ...],
    outputs: tuple[str | None, ...],
    parent: Slot | None,
    context: Mapping[str, Any],
) -> Task:
    """The Task of one request."""
    shape = at.shape
    endpoint = shape.endpoint
    price_k = shape.price_key
    if price_k is None:
        price_k = price_key(at.step["op"], endpoint.family, at.model, params.get("rendering_speed"))
    cost = s.shared.get((price_k, count), _MISSING)
    if cost is _MISSING:
        per_image = s.prices.per_image(price_k)
        cost = s.shared[(price_k, count)] = None if per_image is None else round(per_image * count, 6)
    indexes = s.shared.get((index0, count))
    if indexes is None:  # one tuple per distinct value, shared by the plan's tasks
        indexes = s.shared[(index0, count)] = tuple(range(index0, index0 + count))
    return Task(
        tid,
        at.step["id"],
        at.step["op"],
        endpoint.path,
        endpoint.family,
        at.model,
        at.row.row.index,
        at.row.key,
        at.row.matrix,
        params,
        images,
        seed,
        seed_source,
        count,
        image_ids,
        indexes,
        outputs,
        parent.image_id if parent else None,
        ((parent.task_id,) if parent else ()) + at.depends_extra,
        deferred,
        context,
        price_k,
        cost,
    )
