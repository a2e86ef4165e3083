"""Before anything is sent: what each task needs, from the journal, and the budget check."""

from __future__ import annotations

import json

from ..errors import BudgetExceeded
from ..files import sweep_temporaries
from ..journal import TaskState, files_intact
from ..journal_schema import RunStatus
from ..status import Status
from .context import RunContext
from .scheduler import Phase, Scheduler

#: a task with one of these images is paid for but not on disk: write it again
UNWRITTEN = frozenset({Status.NOT_SAVED, Status.PENDING})


def reconcile(ctx: RunContext, sched: Scheduler) -> list[str]:
    """Set every task's phase from the journal; returns the tasks to run.

    A task whose answer is recorded is never sent again (unless --force): its images
    are restored from the store or downloaded again.
    """
    o, j = ctx.o, ctx.journal
    killed = [r["run_id"] for r in j.runs() if r["status"] == RunStatus.RUNNING]
    if killed:  # we hold the lock, so these processes died: sweep their unfinished writes
        sweep_temporaries(ctx.out_dir)
        j.mark_runs(killed, RunStatus.KILLED)
    known = j.known_tasks()
    j.register(
        (
            (t.id, t.step_id, t.op, t.row_key, t.cost_usd, json.dumps(t.to_json()))
            for t in ctx.plan.tasks
            if t.id not in known
        ),
        "",
    )
    states = j.states(ctx.tasks)
    answered = j.answered(ctx.tasks)
    todo: list[str] = []
    to_doubt: list[str] = []
    for tid in ctx.tasks:
        st = states[tid]
        status = Status(st.status)
        if o.force:
            status = Status.PENDING
        elif status == Status.SENDING:
            status = Status.IN_DOUBT
            to_doubt.append(tid)
        if (
            (status == Status.IN_DOUBT and o.retry_in_doubt)
            or (status == Status.FAILED and o.retry_failed and tid not in answered)
            or status in (Status.SKIPPED_BUDGET, Status.SKIPPED_PARENT)
        ):
            status = Status.PENDING
        if status == Status.FAILED and tid in answered:
            status = Status.RESPONDED  # paid for: --retry-failed writes its images, never resends
        if status in (Status.DONE, Status.RESPONDED):
            if status == Status.DONE and _complete(ctx, st):
                for img in st.images:
                    if img["status"] == Status.OK:
                        ctx.image_ok[img["image_id"]] = img
                sched.set_phase(tid, Phase.FINISHED)
                continue
            sched.set_phase(tid, Phase.DOWNLOAD)  # paid for already: never resend
            todo.append(tid)
        elif status == Status.PENDING:
            sched.set_phase(tid, Phase.TODO)
            todo.append(tid)
        else:
            sched.set_phase(tid, Phase.FINISHED)
    if to_doubt:
        j.set_statuses(
            to_doubt,
            Status.IN_DOUBT,
            "the run stopped while this request was in flight: it may have run and been billed",
        )
    return todo


def _complete(ctx: RunContext, st: TaskState) -> bool:
    """True when every image the task will ever have is on disk as recorded."""
    if any(i["status"] in UNWRITTEN for i in st.images):
        return False
    if ctx.o.retry_failed and any(i["status"] == Status.FAILED and i["url"] for i in st.images):
        return False
    return files_intact(st.images, ctx.out_dir, verify=ctx.o.verify)


def check_budget(ctx: RunContext, sched: Scheduler, todo: list[str]) -> None:
    """Refuse a run over the cap; ask the shell before spending real money."""
    sending = [ctx.tasks[t] for t in todo if sched.phase[t] == Phase.TODO]
    cost = sum(t.cost_usd or 0.0 for t in sending)
    unknown = sum(1 for t in sending if t.cost_usd is None)
    if ctx.cap is not None and cost > ctx.cap + 1e-9:
        raise BudgetExceeded(
            f"this run would cost ${cost:.4f}, over the cap of "
            f"${ctx.cap:.2f} (budget_usd / --max-cost); nothing was sent"
        )
    if ctx.cap is not None and unknown:
        raise BudgetExceeded(
            f"{unknown} request(s) have no known price, so the budget "
            "cannot be guaranteed; add them under `prices:` in the recipe"
        )
    if cost <= 0 or ctx.o.yes or ctx.simulated:
        return
    if ctx.o.confirm is None:
        raise BudgetExceeded(
            f"this run would spend ${cost:.4f} at {ctx.provider.name}; pass --yes (yes=True) to confirm"
        )
    if not ctx.o.confirm(cost, ctx.provider.name):
        raise BudgetExceeded("not confirmed; nothing was sent")
