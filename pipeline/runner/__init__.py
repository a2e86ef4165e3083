"""The runner: executes a plan as a graph per row, at the provider's limit, over the journal.

A task starts as soon as what it needs is on disk. Every request is journaled as
`sending` before it leaves, so a crash at any moment leaves an honest record; the
manifest and the report are then written from the journal. The engine reports through
events and is stopped by a `threading.Event`; the terminal shell is `pipeline.console`.
"""

from __future__ import annotations

from ..journal_schema import RunStatus
from .engine import Run, run
from .options import Event, EventKind, RunOptions, RunResult

__all__ = ["Event", "EventKind", "Run", "RunOptions", "RunResult", "RunStatus", "run"]
