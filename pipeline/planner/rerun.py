"""Reruns by seed: manifest rows + the specs the journal recorded -> Tasks that re-create them.

Also what a reproduce request sends: the recorded parameters, the API's recorded prompt
where the original request had a prompt, and Magic Prompt forced off where the endpoint
takes it (its version then has nothing to choose, so it is not sent).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from .. import ops
from ..errors import InputError
from ..inputs import ImageRef
from .keys import content_key, image_id
from .model import Task

Reproduce = dict[str, list[dict[str, Any]]]  # task id -> [{"seed", "api_prompt"}] per image


class ManifestRow(Protocol):
    """The manifest columns a rerun reads (one row of `frame.itertuples()`)."""

    task_id: str
    image_id: str
    step_id: str
    op: str
    endpoint: str
    model: str
    row_index: Any
    row_key: str
    matrix: str
    seed: Any
    image_index: Any
    file: str
    api_prompt: Any
    cost_usd: Any


def rerun_tasks(
    rows: Iterable[ManifestRow],
    specs: Mapping[str, Mapping[str, Any] | None],
    source_dir: Path,
    parent_file: Callable[[str], str],
    steps: Collection[str] | None = None,
) -> tuple[list[Task], Reproduce]:
    """One fixed-seed Task per selected image, and what each must reproduce.

    `specs` maps a task id to the spec the journal recorded for it; `parent_file(image_id)`
    names the file of an input image that came from an earlier step; a row whose step is
    not in `steps` (the recipe's step ids) is refused.
    """
    tasks: list[Task] = []
    reproduce: Reproduce = {}
    for row in rows:
        if steps is not None and row.step_id not in steps:
            raise InputError(
                f"manifest row {row.image_id}: step_id {row.step_id!r} is not a step of the recipe"
            )
        spec = specs.get(row.task_id)
        if spec is None:
            continue
        images = {
            role: tuple(_resolve(ref, source_dir, parent_file) for ref in refs)
            for role, refs in spec["images"].items()
        }
        tid = content_key(["rerun", row.task_id, row.image_id])
        cost = None if _text(row.cost_usd) is None else float(row.cost_usd)
        tasks.append(
            Task(
                id=tid,
                step_id=row.step_id,
                op=row.op,
                endpoint=row.endpoint,
                family=spec.get("family") or ("v3" if row.endpoint.startswith("/v1/") else "legacy"),
                model=row.model,
                row_index=int(row.row_index),
                row_key=row.row_key,
                matrix=json.loads(row.matrix),
                params=dict(spec["params"]),
                images=images,
                seed=int(row.seed),
                seed_source="fixed",
                num_images=1,
                image_ids=(image_id(tid, 0),),
                image_indexes=(int(row.image_index),),
                outputs=(row.file,),
                parent_image_id=None,
                depends_on=(),
                deferred={},
                context={},
                price_key=spec.get("price_key", ""),
                cost_usd=cost,
            )
        )
        reproduce[tid] = [{"seed": int(row.seed), "api_prompt": _text(row.api_prompt)}]
    return tasks, reproduce


def _resolve(ref: str, source_dir: Path, parent_file: Callable[[str], str]) -> ImageRef:
    kind, _, value = ref.partition(":")
    if kind == "step":
        return ImageRef("file", str(source_dir / parent_file(value)))
    return ImageRef(kind, value)


def _text(value: Any) -> str | None:
    """A manifest text cell: None for an empty or missing (NaN) cell, never 'None' or 'nan'."""
    if value is None or type(value).__name__ == "NAType" or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value) or None


def accepts(endpoint: ops.Endpoint, name: str) -> bool:
    """True if `endpoint` takes the recipe parameter `name`."""
    return name in endpoint.accepts


def reproduce_params(
    endpoint: ops.Endpoint, params: Mapping[str, Any], record: Mapping[str, Any]
) -> dict[str, Any]:
    """The parameters of one reproduce request: only what the original sent and the endpoint takes.

    - The recorded API prompt replaces the prompt only when the original request had one
      (an upscale sent without a prompt stays without one).
    - Magic Prompt is forced off where the endpoint takes it, so the API keeps the recorded
      prompt; `magic_prompt_version` is then dropped.
    """
    out = {k: v for k, v in params.items() if k in endpoint.accepts}
    api_prompt = record.get("api_prompt")
    if "prompt" in out and isinstance(api_prompt, str) and api_prompt:
        out["prompt"] = api_prompt
    if "magic_prompt" in endpoint.accepts:
        out["magic_prompt"] = "OFF"
        out.pop("magic_prompt_version", None)
    return out
