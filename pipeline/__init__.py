"""ideopipe: declarative batch pipelines for the Ideogram image API."""

__version__ = "0.1.0"

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
