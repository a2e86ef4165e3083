"""ideopipe: declarative batch pipelines for the Ideogram image API.

The public names below are imported on first use, so that `import pipeline` (and the
`ideopipe` command's start-up) does not pay for pandas, Jinja2 or jsonschema.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_WHERE = {  # public name -> the module that defines it
    **dict.fromkeys(
        (
            "done_tasks",
            "list_runs",
            "lock_entries",
            "plan_file",
            "regenerate_report",
            "rerun",
            "run_file",
            "run_plan",
            "write_lock",
        ),
        "api",
    ),
    **dict.fromkeys(
        (
            "ApiError",
            "AuthError",
            "BudgetExceeded",
            "IdeopipeError",
            "InputError",
            "OutcomeUnknown",
            "PaymentError",
            "RecipeError",
            "SafetyRejected",
        ),
        "errors",
    ),
    "read_manifest": "manifest",
    **dict.fromkeys(("Plan", "Task", "plan"), "planner"),
    **dict.fromkeys(("Provider", "register"), "providers"),
    **dict.fromkeys(("Recipe", "load_recipe"), "recipe"),
    **dict.fromkeys(("RunOptions", "RunResult"), "runner"),
}

__all__ = [
    "ApiError",
    "AuthError",
    "BudgetExceeded",
    "IdeopipeError",
    "InputError",
    "OutcomeUnknown",
    "PaymentError",
    "Plan",
    "Provider",
    "Recipe",
    "RecipeError",
    "RunOptions",
    "RunResult",
    "SafetyRejected",
    "Task",
    "__version__",
    "done_tasks",
    "list_runs",
    "load_recipe",
    "lock_entries",
    "plan",
    "plan_file",
    "read_manifest",
    "regenerate_report",
    "register",
    "rerun",
    "run_file",
    "run_plan",
    "write_lock",
]


def __getattr__(name: str) -> object:
    """Import a public name from its module on first use."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names, loaded or not."""
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:
    from .api import (
        done_tasks,
        list_runs,
        lock_entries,
        plan_file,
        regenerate_report,
        rerun,
        run_file,
        run_plan,
        write_lock,
    )
    from .errors import (
        ApiError,
        AuthError,
        BudgetExceeded,
        IdeopipeError,
        InputError,
        OutcomeUnknown,
        PaymentError,
        RecipeError,
        SafetyRejected,
    )
    from .manifest import read_manifest
    from .planner import Plan, Task, plan
    from .providers import Provider, register
    from .recipe import Recipe, load_recipe
    from .runner import RunOptions, RunResult
