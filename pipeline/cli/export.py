"""`ideopipe export`: channel-ready copies of a run's good images (the verb lives with its library)."""

from ..export.cli import EXAMPLE, HELP, add_arguments, handle

__all__ = ["EXAMPLE", "HELP", "add_arguments", "handle"]
