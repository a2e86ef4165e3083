"""What a plan is made of: a Task per request, and the Plan that holds them in order."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import rows as rowsource
from ..errors import Problem
from ..inputs import ImageRef
from ..pricing import PriceTable
from ..recipe import Recipe


class StepImage(Mapping[str, tuple[ImageRef, ...]]):
    """`{"image": (ImageRef("step", image_id),)}`: the parent image a chained task takes.

    Most tasks of a big chained batch hold only this, so it keeps just the image id and
    builds the reference when read: a fraction of a dict's size, and one object for the
    garbage collector instead of three. Use it as any mapping (`dict(task.images)` for JSON).
    """

    __slots__ = ("_image_id",)

    def __init__(self, image_id: str) -> None:
        self._image_id = image_id

    def __getitem__(self, key: str) -> tuple[ImageRef, ...]:
        if key == "image":
            return (ImageRef("step", self._image_id),)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(("image",))

    def __len__(self) -> int:
        return 1

    def __repr__(self) -> str:
        return f"StepImage({self._image_id!r})"


@dataclass(slots=True)
class Task:
    """One request to the API, fully decided at plan time except for `deferred` fields.

    Treat it as immutable. It is not a frozen dataclass only because a plan holds hundreds
    of thousands of them and a frozen one takes about ten times as long to build; its
    parameter, image and context mappings may be shared between tasks.
    """

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
            "id": self.id,
            "step": self.step_id,
            "op": self.op,
            "endpoint": self.endpoint,
            "model": self.model,
            "row_index": self.row_index,
            "row_key": self.row_key,
            "matrix": dict(self.matrix),
            "params": dict(self.params),
            "images": {k: [f"{r.kind}:{r.value}" for r in v] for k, v in self.images.items()},
            "seed": self.seed,
            "seed_source": self.seed_source,
            "num_images": self.num_images,
            "image_ids": list(self.image_ids),
            "outputs": list(self.outputs),
            "parent_image_id": self.parent_image_id,
            "depends_on": list(self.depends_on),
            "deferred": dict(self.deferred),
            "cost_usd": self.cost_usd,
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
            s["id"]: {
                "op": s["op"],
                "requests": 0,
                "images": 0,
                "cost_usd": 0.0,
                "unknown_cost_requests": 0,
                "done": 0,
            }
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
            "description": self.recipe.data.get("description"),
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
