"""ideopipe: declarative batch pipelines for the Ideogram image API."""

from .api import done_tasks, plan_file
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
from .planner import Plan, Task, plan
from .recipe import Recipe, load_recipe

__version__ = "0.1.0"

__all__ = [
    "ApiError",
    "AuthError",
    "BudgetExceeded",
    "IdeopipeError",
    "InputError",
    "OutcomeUnknown",
    "PaymentError",
    "Plan",
    "Recipe",
    "RecipeError",
    "SafetyRejected",
    "Task",
    "__version__",
    "done_tasks",
    "load_recipe",
    "plan",
    "plan_file",
]
