"""How to run a plan, how a run ended, and the events a run reports while it goes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..client import RetryPolicy
from ..journal_schema import RunStatus
from ..money import Money
from ..transport import Timeouts


class EventKind(StrEnum):
    """What an event tells."""

    STARTED = "started"  # scheduling begins (total, planned_usd)
    PROGRESS = "progress"  # counters changed
    STOPPING = "stopping"  # a stop was asked for: in-flight requests are let finish
    NOTICE = "notice"  # something the user should read (a write that failed, ...)


@dataclass(frozen=True)
class Event:
    """One report from a running engine: the counters at that moment, and a message."""

    kind: EventKind
    message: str = ""
    done: int = 0
    total: int = 0
    failed: int = 0
    limit: int = 0
    rate_limited: int = 0
    spent_usd: float = 0.0
    planned_usd: float = 0.0
    simulated: bool = False


@dataclass
class RunOptions:
    """How to run a plan (the CLI's `run` flags); callbacks let a shell watch and stop it."""

    base_url: str | None = None
    concurrency: int | None = None
    max_cost: float | None = None
    yes: bool = False
    force: bool = False
    fail_fast: bool = False
    retry_failed: bool = False
    retry_in_doubt: bool = False
    quiet: bool = False
    manifest_format: str | None = None
    verify: bool = False  # re-hash every file on resume instead of trusting size and mtime
    confirm_above_usd: float = 5.0
    timeouts: Timeouts | None = None
    retry: RetryPolicy | None = None
    environ: Mapping[str, str] | None = field(default=None, repr=False)
    #: send the key over plain http to a host that is not loopback (refused by default)
    allow_http: bool = False
    reproduce: Mapping[str, list[dict[str, Any]]] = field(default_factory=dict, repr=False)
    #: called with every Event (from the engine's threads; keep it quick)
    on_event: Callable[[Event], None] | None = field(default=None, repr=False)
    #: set it (from any thread) to stop scheduling; in-flight requests finish and are journaled
    stop_event: threading.Event | None = field(default=None, repr=False)
    #: asked before spending real money when `yes` is false: (usd, provider) -> go ahead?
    confirm: Callable[[float, str], bool] | None = field(default=None, repr=False)


@dataclass
class RunResult:
    """How a run ended."""

    run_id: str
    status: RunStatus
    exit_code: int
    out_dir: Path
    manifest: Path | None
    report: Path | None
    counts: dict[str, int]
    spent_usd: float
    message: str = ""
    frame: Any = field(default=None, repr=False)  # the manifest as a pandas DataFrame
    simulated: bool = False  # an emulator run: nothing real was charged
    money: Money | None = None  # the three totals every view shows
    failures: list[str] = field(default_factory=list)  # why images did not come out, in words
