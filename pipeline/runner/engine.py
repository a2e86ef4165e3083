"""The engine: one run of a plan over the journal, from reconciling to manifest and report.

It never prints, reads stdin, installs signal handlers or exits the process: it reports
through `RunOptions.on_event` and stops when `RunOptions.stop_event` is set or `stop()` is
called, so a notebook can run it and stop it from another thread.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import journal as jr
from .. import providers
from ..errors import StorageError
from ..journal_schema import RunStatus
from ..planner import Plan
from ..status import Status
from .context import RunContext
from .options import EventKind, RunOptions, RunResult
from .reconcile import check_budget, reconcile
from .scheduler import Phase, Scheduler
from .task import TaskWorker


def run(plan: Plan, options: RunOptions | None = None) -> RunResult:
    """Execute a plan; returns how it ended (errors inside the run become task statuses)."""
    options = options or RunOptions()
    provider = providers.get(plan.provider, options.base_url or plan.recipe.provider_base_url)
    emulator = None
    if provider.name == "emulator" and provider.base_url.endswith(":0"):
        from ..emulator import Emulator

        emulator = Emulator().start()
        provider = providers.get("emulator", emulator.base_url)
    try:
        key = provider.key(dict(options.environ) if options.environ is not None else None)
        return Run(plan, options, provider, key).execute()
    finally:
        if emulator is not None:
            emulator.stop()


class Run:
    """One run of a plan: reconcile with the journal, schedule, then manifest and report."""

    def __init__(self, plan: Plan, options: RunOptions, provider: providers.Provider, key: providers.ApiKey):
        self.ctx = RunContext(plan, options, provider, key)
        self.scheduler = Scheduler(self.ctx, TaskWorker(self.ctx))

    def stop(self) -> None:
        """Stop scheduling (from any thread); requests in flight finish and are journaled."""
        self.ctx.stop("interrupted")

    def execute(self) -> RunResult:
        """Run to the end (or a stop) and return how it ended."""
        ctx = self.ctx
        journal = jr.Journal.open(ctx.out_dir)
        ctx.journal = journal
        started = _now()
        t0 = time.monotonic()
        try:
            todo = reconcile(ctx, self.scheduler)
            check_budget(ctx, self.scheduler, todo)
            summary = ctx.plan.summary()
            ctx.planned_usd = float(summary["cost_usd"])
            journal.begin_run(
                {
                    "run_id": ctx.run_id,
                    "recipe": str(ctx.plan.recipe.path),
                    "recipe_sha256": ctx.plan.recipe.sha256,
                    "recipe_name": ctx.plan.recipe.name,
                    "description": ctx.plan.recipe.data.get("description"),
                    "provider": ctx.provider.name,
                    "started_at": started,
                    "planned_usd": summary["cost_usd"],
                    "budget_usd": ctx.cap,
                    "info": {
                        "steps": [s["id"] for s in ctx.plan.recipe.steps],
                        "rows": {k: dict(v) for k, v in row_values(ctx.plan).items()},
                        "argv": sys.argv[1:],
                    },
                }
            )
        except BaseException:
            journal.close()
            ctx.http.close()
            ctx.fetcher.close()
            raise
        ctx.emit(EventKind.STARTED, done=self.scheduler.counts[Phase.FINISHED])
        self.scheduler.run(todo)
        return self._finish(time.monotonic() - t0)

    # -- after ----------------------------------------------------------------

    def _finish(self, duration: float) -> RunResult:
        from .. import manifest as mf
        from ..money import totals
        from ..summary import explain

        ctx = self.ctx
        fmt = ctx.o.manifest_format or ctx.plan.recipe.data.get("output", {}).get("manifest_format", "csv")
        frame = None
        if not ctx.ran and not ctx.stop_reason:
            frame = mf.unchanged(ctx.plan, ctx.out_dir, fmt, ctx.journal.last_change(), ctx.run_id)
        kept = frame is not None
        if frame is None:
            frame = mf.build(ctx.plan, ctx.journal, ctx.run_id)
        money = totals(frame, ctx.run_id, ctx.simulated)
        ctx.spent = money.run_spent  # the bar's last figure is the one every view shows
        self.scheduler.tick()
        counts = {str(k): int(v) for k, v in frame["status"].value_counts().items()}
        bad = sum(v for k, v in counts.items() if k != Status.OK)
        status = (
            RunStatus.INTERRUPTED
            if ctx.interrupted
            else RunStatus.STOPPED
            if ctx.stop_reason
            else RunStatus.FAILED
            if bad
            else RunStatus.OK
        )
        manifest = report = None
        try:
            ctx.journal.finish_run(ctx.run_id, status, _now(), money.run_spent)
            manifest = ctx.out_dir / f"manifest.{fmt}" if kept else mf.write(frame, ctx.out_dir, fmt)
        except (StorageError, OSError) as exc:
            ctx.emit(EventKind.NOTICE, f"the manifest could not be written: {exc}")
            ctx.stop_reason = ctx.stop_reason or str(exc)
            status = RunStatus.STOPPED
        if manifest is not None:
            report = self._report(frame, duration, money.run_spent)
        ctx.journal.close()
        ctx.http.close()
        ctx.fetcher.close()
        code = 130 if ctx.interrupted else 0 if status == RunStatus.OK else 1
        return RunResult(
            ctx.run_id,
            status,
            code,
            ctx.out_dir,
            manifest,
            report,
            counts,
            money.run_spent,
            ctx.stop_reason,
            frame,
            ctx.simulated,
            money,
            explain(frame),
        )

    def _report(self, frame: Any, duration: float, spent: float) -> Path | None:
        from ..report import REPORT_NAME, write_report

        ctx = self.ctx
        existing = ctx.out_dir / REPORT_NAME
        if not ctx.ran and existing.exists() and existing.stat().st_mtime > ctx.journal.last_change():
            return existing  # nothing changed since it was written: a 10,000-image page stays
        run_info = ctx.journal.run(ctx.run_id) or {}
        try:
            return write_report(
                ctx.out_dir,
                frame,
                {
                    **run_info,
                    "duration_s": duration,
                    "planned_cost_usd": run_info.get("planned_usd"),
                    "spent_usd": spent,
                    "steps": [s["id"] for s in ctx.plan.recipe.steps],
                },
                rows=row_values(ctx.plan),
                bundle=bool((ctx.plan.recipe.data.get("report") or {}).get("bundle_html")),
            )
        except (OSError, ValueError, StorageError) as exc:
            ctx.emit(EventKind.NOTICE, f"the report could not be written: {exc}")
            return None


def row_values(plan: Plan) -> dict[str, Mapping[str, Any]]:
    """Each planned row's CSV values, by row key."""
    keys = {t.row_index: t.row_key for t in plan.tasks}
    return {keys[r.index]: r.values for r in plan.rows if r.index in keys}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
