"""The terminal shell around the engine: progress bar, confirmation, signals, summary.

SIGINT, SIGTERM and SIGHUP all map to the engine's stop: the first one stops scheduling,
lets requests in flight finish within the read timeout, journals them and writes the
manifest and report; the run then exits 128 + the signal (130, 143, 129). A second
signal exits at once (the journal is consistent at every commit).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import IO, Any

from .errors import BudgetExceeded
from .journal_schema import RunStatus
from .progress import Progress
from .runner import Event, EventKind, RunOptions, RunResult
from .summary import summary_table

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP"}


class SignalStop:
    """Turns the first stop signal into a stop request, and a second one into an exit."""

    def __init__(self, stop: threading.Event):
        self.stop = stop
        self.signum: int | None = None

    def __call__(self, signum: int, frame: Any) -> None:
        """The signal handler."""
        if self.signum is not None:
            os._exit(128 + signum)  # the second signal: quit at once
        self.signum = signum
        self.stop.set()

    @contextmanager
    def installed(self) -> Iterator[SignalStop]:
        """Handle the stop signals while the block runs (main thread only), then restore."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        old = {s: signal.signal(s, self) for s in STOP_SIGNALS}
        try:
            yield self
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)


def confirm(
    cost: float, provider: str, threshold: float, out: IO[str], ask: Callable[[str], str] = input
) -> bool:
    """Ask before spending `cost` at a real provider (only at or above `threshold`)."""
    if not sys.stdin.isatty():
        raise BudgetExceeded(
            f"this run would spend ${cost:.4f} at {provider}; pass --yes to confirm when not on a terminal"
        )
    if cost < threshold:
        return True
    out.flush()
    answer = ask(f"Spend up to ${cost:.2f} at {provider}? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def run_in_terminal(
    start: Callable[[RunOptions], RunResult], options: RunOptions, out: IO[str] | None = None
) -> RunResult:
    """Run `start(options)` with a progress bar, a confirmation, signals and a summary."""
    out = out or sys.stderr
    stop = options.stop_event or threading.Event()
    progress = Progress(out, quiet=options.quiet)
    handler = SignalStop(stop)

    def on_event(event: Event) -> None:
        if options.on_event is not None:
            options.on_event(event)
        if event.kind == EventKind.STOPPING and event.message == "interrupted":
            what = _NAMES.get(signal.Signals(handler.signum or signal.SIGINT), "a stop")
            progress.write(
                f"\nideopipe: stopping ({what}): letting requests in flight finish; "
                "send it again to quit at once"
            )
        elif event.kind == EventKind.NOTICE:
            progress.write(f"ideopipe: {event.message}")
        elif event.kind in (EventKind.STARTED, EventKind.PROGRESS):
            progress.update(event)

    shell = replace(
        options,
        on_event=on_event,
        stop_event=stop,
        confirm=options.confirm
        or (lambda cost, provider: confirm(cost, provider, options.confirm_above_usd, out)),
    )
    with handler.installed():
        try:
            result = start(shell)
        finally:
            progress.close()
    if handler.signum is not None:
        result.exit_code = 128 + handler.signum
    if not options.quiet:
        print(summary(result), file=out)
    return result


def summary(result: RunResult) -> str:
    """What a person reads at the end of a run: table, failures by cause, money, files."""
    lines = [summary_table(result.frame)]
    if result.failures:
        lines.append("not ok: " + "; ".join(result.failures))
    if result.money is not None:
        lines.append(result.money.describe())
    if result.message and result.status != RunStatus.INTERRUPTED:
        lines.append(f"ideopipe: stopped: {result.message}")
    lines.append(f"manifest: {result.manifest}")
    if result.report:
        lines.append(f"report:   {result.report}")
    return "\n".join(lines)
