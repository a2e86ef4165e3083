"""What every part of one run shares: the plan, the journal, the client, the counters."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from .. import journal as jr
from .. import providers
from ..client import Client, RetryPolicy, session
from ..errors import RateLimited
from ..fetch import Fetcher, Guard
from ..limiter import AdaptiveLimit
from ..planner import Plan, Task
from ..recipe import check_max_cost
from ..transport import Timeouts
from .options import Event, EventKind, RunOptions


class RunContext:
    """The state of one run that the scheduler, the task worker and the downloads share."""

    journal: jr.Journal

    def __init__(self, plan: Plan, options: RunOptions, provider: providers.Provider, key: providers.ApiKey):
        self.plan = plan
        self.o = options
        self.provider = provider
        self.simulated = provider.name == "emulator"
        self.out_dir = plan.out_dir
        data = plan.recipe.data
        self.run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]
        ceiling = int(options.concurrency or data.get("concurrency") or 8)
        self.limit = AdaptiveLimit(ceiling=ceiling)
        self.cv = threading.Condition()
        check_max_cost(options.max_cost)  # nan would let every task through
        self.timeouts = options.timeouts or Timeouts(**data.get("timeouts", {}))
        retry = options.retry or RetryPolicy(retry_unknown=bool(data.get("retry_unknown", False)))
        self.http = session(pool=max(32, ceiling * 3))
        self.client = Client(
            provider,
            key,
            retry=retry,
            timeouts=self.timeouts,
            http=self.http,
            on_rate_limited=self.rate_limited,
            allow_http=options.allow_http,
        )
        allow_private = bool(data.get("allow_private_urls"))
        self.fetcher = Fetcher(Guard.for_base_url(provider.base_url, allow_private), pool_size=ceiling * 2)
        caps = [c for c in (data.get("budget_usd"), options.max_cost) if c is not None]
        self.cap: float | None = min(caps) if caps else None
        self.tasks = {t.id: t for t in plan.tasks}
        self.planned_usd = 0.0
        self.image_ok: dict[str, dict[str, Any]] = {}  # image_id -> journal image row
        self.ran: set[str] = set()
        self.released: set[str] = set()
        self.waiting_out: set[str] = set()  # refused tasks whose slots are given back meanwhile
        self.reacquiring = 0  # refused tasks due again, waiting for their slots
        self.local = threading.local()  # .task: the task this worker thread is sending
        self.spent = 0.0
        self.at_risk = 0.0
        self.in_flight_cost = 0.0
        self.failed = 0
        self.rate_limited_count = 0
        self.stop_reason = ""
        self.stopping = threading.Event()

    # -- telling the shell ----------------------------------------------------

    def emit(self, kind: EventKind, message: str = "", done: int = 0) -> None:
        """Send one event to the shell's callback, if any (a failing callback never stops us)."""
        callback = self.o.on_event
        if callback is None:
            return
        event = Event(
            kind,
            message,
            done=done,
            total=len(self.tasks),
            failed=self.failed,
            limit=self.limit.limit,
            rate_limited=self.rate_limited_count,
            spent_usd=round(self.spent, 6),
            planned_usd=self.planned_usd,
            simulated=self.simulated,
        )
        try:
            callback(event)
        except Exception:
            pass

    # -- stopping -------------------------------------------------------------

    def stop(self, reason: str) -> None:
        """Stop scheduling; requests in flight finish and are journaled."""
        with self.cv:
            first = not self.stopping.is_set()
            if not self.stop_reason:
                self.stop_reason = reason
            self.stopping.set()
            self.client.stop.set()
            self.cv.notify_all()
        if first:
            self.emit(EventKind.STOPPING, reason)

    def poll_stop(self) -> bool:
        """True when the run should stop; turns an outside stop request into a stop."""
        if not self.stopping.is_set() and self.o.stop_event is not None and self.o.stop_event.is_set():
            self.stop("interrupted")
        return self.stopping.is_set()

    @property
    def interrupted(self) -> bool:
        """True when the run was stopped from outside (a signal, a notebook, stop())."""
        return self.stop_reason == "interrupted"

    # -- counters -------------------------------------------------------------

    def rate_limited(self, exc: RateLimited) -> None:
        """A 429 (called before the wait): lower the limit and give the slots back meanwhile."""
        task: Task | None = getattr(self.local, "task", None)
        weight = task.num_images if task is not None else 1
        with self.cv:
            self.rate_limited_count += 1
            self.limit.rate_limited(weight, max_inflight=exc.max_inflight, retry_after=exc.retry_after)
            if task is not None and task.id not in self.released and task.id not in self.waiting_out:
                self.limit.wait_out(weight)
                self.waiting_out.add(task.id)
            self.cv.notify_all()

    def take_slots_back(self, task: Task) -> None:
        """Before a refused task is sent again: wait until its images fit, then count them."""
        with self.cv:
            if task.id not in self.waiting_out:
                return
            self.reacquiring += 1
            try:
                while not self.limit.can_start(task.num_images) and not self.stopping.is_set():
                    self.cv.wait(0.25)
            finally:
                self.reacquiring -= 1
            self.limit.start(task.num_images)
            self.waiting_out.discard(task.id)
            self.cv.notify_all()  # the scheduler held back for it: it may look again

    def note_failure(self) -> None:
        """Count a failed task; stop the run when --fail-fast is set."""
        with self.cv:
            self.failed += 1
        if self.o.fail_fast:
            self.stop("a task failed and --fail-fast is set")

    def out_of_flight(self, task: Task) -> None:
        """The request is answered: its images no longer count against the provider's limit."""
        with self.cv:
            self.release_slots(task)
            self.cv.notify_all()

    def release_slots(self, task: Task) -> None:
        """Give back a request's in-flight images, once. Holds cv."""
        if task.id not in self.released:
            self.released.add(task.id)
            if task.id in self.waiting_out:  # its slots were given back while it waited
                self.waiting_out.discard(task.id)
            else:
                self.limit.finish(task.num_images)

    def image_ready(self, img: dict[str, Any]) -> None:
        """An image is on disk and journaled: children may use it."""
        with self.cv:
            self.image_ok[img["image_id"]] = img

    def redact(self, text: str) -> str:
        """Text with the key removed."""
        return self.client.redact(text)
