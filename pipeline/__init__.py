"""ideopipe: declarative batch pipelines for the Ideogram image API."""

__version__ = "0.1.0"

from .api import (  # noqa: E402
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
from .errors import (  # noqa: E402
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
from .manifest import read_manifest  # noqa: E402
from .planner import Plan, Task, plan  # noqa: E402
from .providers import Provider, register  # noqa: E402
from .recipe import Recipe, load_recipe  # noqa: E402
from .runner import RunOptions, RunResult  # noqa: E402

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
