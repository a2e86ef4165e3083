"""Scheduling over the journal: a task starts as soon as what it needs exists and fits."""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum

from ..planner import Task
from ..status import Status
from .context import RunContext
from .options import EventKind

WAKE_S = 0.25  # how often the scheduler looks at outside stop requests and progress


class Phase(StrEnum):
    """Where a task is within this run (not stored: the journal holds its Status)."""

    TODO = "todo"  # to be sent
    DOWNLOAD = "download"  # paid for already: fetch its files again, never resend
    RUNNING = "running"
    FINISHED = "finished"


class Scheduler:
    """Starts ready tasks in a thread pool, in plan order, within the limit and the budget."""

    def __init__(self, ctx: RunContext, work: Callable[[Task, Phase], None]):
        self.ctx = ctx
        self.work = work
        self.order = {t.id: i for i, t in enumerate(ctx.plan.tasks)}
        self.children: dict[str, list[str]] = {}
        for t in ctx.plan.tasks:
            for dep in t.depends_on:
                self.children.setdefault(dep, []).append(t.id)
        self.phase: dict[str, Phase] = {}
        self.counts: Counter[Phase] = Counter()
        self.heap: list[tuple[int, str]] = []
        self.waiting: set[str] = set()

    def set_phase(self, tid: str, phase: Phase) -> None:
        """Move a task to another phase, keeping the counts."""
        old = self.phase.get(tid)
        if old is not None:
            self.counts[old] -= 1
        self.phase[tid] = phase
        self.counts[phase] += 1

    def ready(self, tid: str) -> Status | None:
        """None when the task must wait, PENDING when it can start, or a skip status."""
        task = self.ctx.tasks[tid]
        for dep in task.depends_on:
            if dep in self.ctx.tasks and self.phase.get(dep) in (Phase.TODO, Phase.DOWNLOAD, Phase.RUNNING):
                return None
        if task.parent_image_id and task.parent_image_id not in self.ctx.image_ok:
            return Status.SKIPPED_PARENT
        return Status.PENDING

    def run(self, todo: list[str]) -> None:
        """Run the given tasks (and, as they finish, their dependents) to the end or a stop."""
        ctx = self.ctx
        for tid in todo:
            if self.ready(tid) is None:
                self.waiting.add(tid)
            else:
                heapq.heappush(self.heap, (self.order[tid], tid))
        workers = max(4, ctx.limit.ceiling * 2 + 2)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ideopipe") as pool:
            try:
                while True:
                    with ctx.cv:
                        started = self._next()
                    if started is None:
                        break
                    pool.submit(self._work, *started)
            except KeyboardInterrupt:  # a notebook's interrupt button: stop like a signal
                ctx.stop("interrupted")
            self._drain()
        self.tick()

    def _drain(self) -> None:
        """Wait for the tasks in flight (a second interrupt stops waiting on retries too)."""
        ctx = self.ctx
        while True:
            try:
                with ctx.cv:
                    while self._running():
                        ctx.cv.wait(WAKE_S)
                        ctx.poll_stop()
                        self.tick()
                return
            except KeyboardInterrupt:
                ctx.stop("interrupted")

    def _next(self) -> tuple[Task, Phase] | None:
        """Wait for the next task that may start and mark it running; None at the end. Holds cv."""
        ctx = self.ctx
        while True:
            while not ctx.poll_stop():
                if self.heap and self._fits_now(self.heap[0][1]):
                    break
                if not self.heap and not self._running():
                    return None
                ctx.cv.wait(WAKE_S)
                self.tick()
            if ctx.stopping.is_set():
                return None
            _, tid = heapq.heappop(self.heap)
            verdict = self.ready(tid)
            if verdict is Status.SKIPPED_PARENT:
                self.skip(tid, verdict, "an image it needs was not produced")
                continue
            task = ctx.tasks[tid]
            mode = self.phase[tid]
            if mode == Phase.TODO and not self._within_budget(task):
                self.skip(tid, Status.SKIPPED_BUDGET, "starting it would pass the budget cap")
                continue
            self.set_phase(tid, Phase.RUNNING)
            if mode == Phase.TODO:
                ctx.limit.start(task.num_images)
                ctx.in_flight_cost += task.cost_usd or 0.0
            return task, mode

    def _work(self, task: Task, mode: Phase) -> None:
        ctx = self.ctx
        try:
            self.work(task, mode)
        finally:
            with ctx.cv:
                if mode != Phase.DOWNLOAD:
                    ctx.release_slots(task)
                    ctx.in_flight_cost -= task.cost_usd or 0.0
                self.set_phase(task.id, Phase.FINISHED)
                ctx.ran.add(task.id)
                self.release(task.id)

    def _running(self) -> bool:
        return self.counts[Phase.RUNNING] > 0

    def _fits_now(self, tid: str) -> bool:
        if self.phase.get(tid) == Phase.DOWNLOAD:
            return True
        if self.ctx.reacquiring:
            return False  # a refused task that has waited out Retry-After goes first
        return self.ctx.limit.can_start(self.ctx.tasks[tid].num_images)

    def _within_budget(self, task: Task) -> bool:
        ctx = self.ctx
        if ctx.cap is None:
            return True
        cost = task.cost_usd or 0.0
        return ctx.spent + ctx.at_risk + ctx.in_flight_cost + cost <= ctx.cap + 1e-9

    def skip(self, tid: str, status: Status, why: str) -> None:
        """Mark a task (and, through release, its dependents) as not run. Holds cv."""
        self.ctx.journal.set_status(tid, status, why)
        self.set_phase(tid, Phase.FINISHED)
        self.release(tid)

    def release(self, tid: str) -> None:
        """A task finished: queue the dependents whose needs are now met. Holds cv."""
        for child in self.children.get(tid, ()):
            if child in self.waiting and self.ready(child) is not None:
                self.waiting.discard(child)
                heapq.heappush(self.heap, (self.order[child], child))
        self.ctx.cv.notify_all()

    def tick(self) -> None:
        """Report progress."""
        self.ctx.emit(EventKind.PROGRESS, done=self.counts[Phase.FINISHED])
