"""Fields rendered at run time: those reading `steps.*`, a parent's API prompt or API seed.

No template ever sends the text "None". What a field gives when its value is missing:

- `input.prompt` when the parent step sends no prompt (an upscale, a remix without one):
  an error at plan time, since the child's prompt would silently lose its subject.
  `{{ input.prompt | default('') }}` asks for an empty text instead.
- `input.api_prompt`, `steps.x.api_prompt` and `steps.x.text` when the API gave none:
  the empty string (there is simply no text).
- `input.seed`, `steps.x.seed` and `steps.x.file` when unknown: an error for that task at
  run time (nothing is sent); `| default(...)` supplies a value.
- Anything else that is None (a JSONL `null`, a `null` var): an error naming the field.

Errors come from the template sandbox (`templating.MissingValue`), so the same rule holds
wherever a template is rendered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import jinja2

from .. import templating


class RuntimeSteps:
    """Stands for `steps` at plan time: any access makes the field a run-time one."""

    def __getattr__(self, name: str) -> Any:
        raise jinja2.UndefinedError("steps results exist only at run time")


class PlaceholderSteps:
    """Lets a run-time template render at plan time, to catch errors early."""

    def __getattr__(self, name: str) -> Placeholder:
        return Placeholder()

    def __getitem__(self, name: str) -> Placeholder:
        return Placeholder()


class Placeholder(str):
    """Any attribute or item of a run-time value, standing in for it at plan time."""

    def __new__(cls) -> Placeholder:
        return super().__new__(cls, "…")

    def __getattr__(self, name: str) -> Placeholder:
        return Placeholder()

    def __getitem__(self, key: Any) -> Placeholder:
        return Placeholder()


RUNTIME_STEPS = RuntimeSteps()
PLACEHOLDER_STEPS = PlaceholderSteps()


def placeholders(ctx: Mapping[str, Any]) -> dict[str, Any]:
    """`ctx` with placeholders for what only the run knows: `steps`, the parent's API prompt and seed."""
    parent = dict(ctx.get("input") or {})
    if parent:
        parent["api_prompt"] = Placeholder()
        if parent.get("seed") is None:
            parent["seed"] = Placeholder()
    return {**ctx, "steps": PLACEHOLDER_STEPS, "input": parent}


def is_runtime(source: str, parent_seed_known: bool | None) -> bool:
    """True if a template can only be rendered once earlier results exist.

    `parent_seed_known` is None without a parent, else whether the parent's seed is planned.
    """
    refs = templating.references(source)
    if any(r == "steps" or r.startswith("steps.") for r in refs):
        return True
    if "input.api_prompt" in refs:
        return True
    return "input.seed" in refs and parent_seed_known is False


def step_results(images: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """`steps.<id>` for templates: a step's good images, by the rules in this module's docstring."""
    imgs = list(images)
    texts = [i["description"] for i in imgs if i.get("description")]
    prompts = [i.get("api_prompt") or "" for i in imgs]
    out: dict[str, Any] = {
        "texts": texts,
        "prompts": prompts,
        "seeds": [i.get("seed") for i in imgs],
        "files": [i.get("file") for i in imgs],
        "text": texts[0] if texts else "",
        "api_prompt": prompts[0] if prompts else "",
    }
    out["seed"] = out["seeds"][0] if imgs else None
    out["file"] = out["files"][0] if imgs else None
    return out


def parent_input(planned: Mapping[str, Any], image: Mapping[str, Any]) -> dict[str, Any]:
    """`input` at run time: the planned values, with the parent's API prompt and seed."""
    return {**planned, "api_prompt": image.get("api_prompt") or "", "seed": image.get("seed")}
