"""Fields rendered at run time: those reading `steps.*`, a parent's API prompt or API seed."""

from __future__ import annotations

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

    def __getitem__(self, key: Any) -> Placeholder:  # type: ignore[override]
        return Placeholder()


RUNTIME_STEPS = RuntimeSteps()
PLACEHOLDER_STEPS = PlaceholderSteps()


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
