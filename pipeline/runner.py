"""The runner: executes a plan as a graph per row, at the provider's limit, over the journal.

A task starts as soon as what it needs is on disk. Every request is journaled as
`sending` before it leaves, so a crash at any moment leaves an honest record; the
manifest and the report are then written from the journal.
"""

from __future__ import annotations

import heapq
import json
import os
import signal
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from . import download, ops, providers, templating, wire
from . import journal as jr
from .client import Client, RetryPolicy, Timeouts, session
from .errors import (
    ApiError,
    AuthError,
    BudgetExceeded,
    DownloadError,
    DownloadExpired,
    ImageInputError,
    InputError,
    OutcomeUnknown,
    PaymentError,
    SafetyRejected,
    ServerError,
    StorageError,
)
from .inputs import BadImage, check_mask, check_url, inspect_bytes
from .limiter import AdaptiveLimit
from .planner import Plan, Task
from .progress import Progress

URL_FRESH_S = 15 * 60  # pass a result URL straight through while it is this young


@dataclass
class RunOptions:
    """How to run a plan (the CLI's `run` flags)."""

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
    confirm_above_usd: float = 5.0
    timeouts: Timeouts | None = None
    retry: RetryPolicy | None = None
    environ: Mapping[str, str] | None = None
    reproduce: Mapping[str, list[dict[str, Any]]] = field(default_factory=dict)
    input: Callable[[str], str] = input
    out: Any = None  # a text stream for progress and summaries (default stderr)


@dataclass
class RunResult:
    """How a run ended."""

    run_id: str
    status: str  # ok | failed | interrupted | stopped
    exit_code: int
    out_dir: Path
    manifest: Path | None
    report: Path | None
    counts: dict[str, int]
    spent_usd: float
    message: str = ""


def run(plan: Plan, options: RunOptions | None = None) -> RunResult:
    """Execute a plan; returns how it ended (errors inside the run become task statuses)."""
    options = options or RunOptions()
    provider = providers.get(plan.provider, options.base_url or plan.recipe.provider_base_url)
    emulator = None
    if provider.name == "emulator" and provider.base_url.endswith(":0"):
        from .emulator import Emulator

        emulator = Emulator().start()
        provider = providers.get("emulator", emulator.base_url)
    try:
        key = provider.key(dict(options.environ) if options.environ is not None else None)
        return _Run(plan, options, provider, key).execute()
    finally:
        if emulator is not None:
            emulator.stop()


class _Run:
    def __init__(self, plan: Plan, options: RunOptions, provider: providers.Provider, key: str):
        self.plan = plan
        self.o = options
        self.provider = provider
        self.out_dir = plan.out_dir
        self.out = options.out or sys.stderr
        data = plan.recipe.data
        self.run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]
        ceiling = options.concurrency or data.get("concurrency") or 8
        self.limit = AdaptiveLimit(ceiling=int(ceiling))
        self.cv = threading.Condition()
        timeouts = options.timeouts or Timeouts(**data.get("timeouts", {}))
        retry = options.retry or RetryPolicy(retry_unknown=bool(data.get("retry_unknown", False)))
        self.http = session(pool=max(32, int(ceiling) * 3))
        self.client = Client(provider, key, retry=retry, timeouts=timeouts, http=self.http,
                             on_rate_limited=self._rate_limited)
        self.timeouts = timeouts
        caps = [c for c in (data.get("budget_usd"), options.max_cost) if c is not None]
        self.cap = min(caps) if caps else None
        self.tasks = {t.id: t for t in plan.tasks}
        self.order = {t.id: i for i, t in enumerate(plan.tasks)}
        self.children: dict[str, list[str]] = {}
        for t in plan.tasks:
            for dep in t.depends_on:
                self.children.setdefault(dep, []).append(t.id)
        self.status: dict[str, str] = {}
        self.state_counts: Counter[str] = Counter()
        self.image_ok: dict[str, dict[str, Any]] = {}  # image_id -> journal image row
        self.ran: set[str] = set()
        self.spent = 0.0
        self.at_risk = 0.0
        self.in_flight_cost = 0.0
        self.stop_reason = ""
        self.stopping = threading.Event()
        self.rate_limited = 0
        self.progress: Progress | None = None
        self.released: set[str] = set()
        self._failed = 0

    # -- the whole run --------------------------------------------------------

    def execute(self) -> RunResult:
        journal = jr.Journal.open(self.out_dir)
        self.journal = journal
        started = _now()
        t0 = time.monotonic()
        interrupted = False
        old_handler = None
        try:
            todo = self._reconcile()
            self._check_budget(todo)
            summary = self.plan.summary()
            journal.begin_run({
                "run_id": self.run_id, "recipe": str(self.plan.recipe.path),
                "recipe_sha256": self.plan.recipe.sha256, "recipe_name": self.plan.recipe.name,
                "description": self.plan.recipe.data.get("description"),
                "provider": self.provider.name, "started_at": started,
                "planned_usd": summary["cost_usd"], "budget_usd": self.cap,
                "info": {"steps": [s["id"] for s in self.plan.recipe.steps],
                         "rows": {k: dict(v) for k, v in _row_values(self.plan).items()},
                         "argv": sys.argv[1:]},
            })
            if threading.current_thread() is threading.main_thread():
                old_handler = signal.signal(signal.SIGINT, self._sigint)
            self.progress = Progress(len(self.plan.tasks), summary["cost_usd"], self.out,
                                     quiet=self.o.quiet)
            self.progress.update(done=self.state_counts["finished"],
                                 limit=self.limit.limit)
            self._schedule(todo)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            if old_handler is not None:
                signal.signal(signal.SIGINT, old_handler)
            if self.progress:
                self.progress.close()
        interrupted = interrupted or self.stop_reason == "interrupted"
        return self._finish(started, time.monotonic() - t0, interrupted)

    def _finish(self, started: str, duration: float, interrupted: bool) -> RunResult:
        from . import manifest as mf

        frame = mf.build(self.plan, self.journal, self.run_id, self.ran)
        counts = {str(k): int(v) for k, v in frame["status"].value_counts().items()}
        bad = sum(v for k, v in counts.items() if k not in ("ok", "cached"))
        status = "interrupted" if interrupted else "stopped" if self.stop_reason else \
            "failed" if bad else "ok"
        manifest = report = None
        try:
            self.journal.finish_run(self.run_id, status, _now(), round(self.spent, 6))
            manifest = mf.write(frame, self.out_dir, self.o.manifest_format or self.plan.recipe
                                .data.get("output", {}).get("manifest_format", "csv"))
        except (StorageError, OSError) as exc:
            print(f"ideopipe: the manifest could not be written: {exc}", file=self.out)
            self.stop_reason = self.stop_reason or str(exc)
            status = "stopped"
        if manifest is not None:
            report = self._report(frame, duration)
        self.journal.close()
        self.http.close()
        code = 130 if interrupted else 0 if status == "ok" else 1
        if not self.o.quiet:
            from .progress import summary_table

            print(summary_table(frame), file=self.out)
            if self.stop_reason and not interrupted:
                print(f"ideopipe: stopped: {self.stop_reason}", file=self.out)
            in_doubt = counts.get("in_doubt", 0)
            if in_doubt:
                print(f"ideopipe: {in_doubt} image(s) in_doubt: sent, no answer; they may have "
                      "been billed. Not resent; use --retry-in-doubt to pay for them again.",
                      file=self.out)
            print(f"manifest: {manifest}", file=self.out)
            if report:
                print(f"report:   {report}", file=self.out)
        return RunResult(self.run_id, status, code, self.out_dir, manifest, report, counts,
                         round(self.spent, 6), self.stop_reason)

    def _report(self, frame: Any, duration: float) -> Path | None:
        from .report import REPORT_NAME, write_report

        existing = self.out_dir / REPORT_NAME
        if not self.ran and existing.exists() and \
                existing.stat().st_mtime > self.journal.last_change():
            return existing  # nothing changed since it was written: a 10,000-image page stays
        run_info = self.journal.run(self.run_id) or {}
        try:
            return write_report(self.out_dir, frame, {
                **run_info, "duration_s": duration, "planned_cost_usd": run_info.get("planned_usd"),
                "spent_usd": self.spent, "steps": [s["id"] for s in self.plan.recipe.steps]},
                rows=_row_values(self.plan),
                bundle=bool((self.plan.recipe.data.get("report") or {}).get("bundle_html")))
        except (OSError, ValueError, StorageError) as exc:
            print(f"ideopipe: the report could not be written: {exc}", file=self.out)
            return None

    # -- before anything is sent ----------------------------------------------

    def _reconcile(self) -> list[str]:
        """Decide, from the journal, what each task needs; returns the tasks to send."""
        j = self.journal
        for stale in self.out_dir.rglob(".*.part"):  # a killed run's unfinished writes
            stale.unlink(missing_ok=True)
        j.register(((t.id, t.step_id, t.op, t.row_key, t.cost_usd, json.dumps(t.to_json()))
                    for t in self.plan.tasks), "")
        states = j.states(self.tasks)
        todo: list[str] = []
        to_doubt: list[str] = []
        for tid in self.tasks:
            st = states[tid]
            status = st.status
            if self.o.force:
                status = jr.PENDING
            elif status == jr.SENDING:
                status = jr.IN_DOUBT
                to_doubt.append(tid)
            if status == jr.IN_DOUBT and self.o.retry_in_doubt:
                status = jr.PENDING
            if status == jr.FAILED and self.o.retry_failed:
                status = jr.PENDING
            if status in (jr.SKIPPED_BUDGET, jr.SKIPPED_PARENT):
                status = jr.PENDING
            if status in (jr.DONE, jr.RESPONDED):
                if status == jr.DONE and jr.files_intact(st.images, self.out_dir) and not \
                        self._wants_redownload(st):
                    for img in st.images:
                        if img["status"] == "ok":
                            self.image_ok[img["image_id"]] = img
                    self._set_state(tid, "finished")
                    continue
                status = "download"  # paid for already: fetch the files again, never resend
            self._set_state(tid, "todo" if status in (jr.PENDING, "download") else "finished")
            if status in (jr.PENDING, "download"):
                todo.append(tid)
                if status == "download":
                    self._set_state(tid, "download")
        if to_doubt:
            j.set_statuses(to_doubt, jr.IN_DOUBT, "the run stopped while this request was in "
                           "flight: it may have run and been billed")
        return todo

    def _wants_redownload(self, st: jr.TaskState) -> bool:
        return self.o.retry_failed and any(i["status"] == "failed" and i["url"] for i in st.images)

    def _check_budget(self, todo: list[str]) -> None:
        cost = sum(self.tasks[t].cost_usd or 0.0 for t in todo if self.status[t] == "todo")
        unknown = sum(1 for t in todo if self.status[t] == "todo" and self.tasks[t].cost_usd is None)
        if self.cap is not None and cost > self.cap + 1e-9:
            raise BudgetExceeded(f"this run would cost ${cost:.4f}, over the cap of "
                                 f"${self.cap:.2f} (budget_usd / --max-cost); nothing was sent")
        if self.cap is not None and unknown:
            raise BudgetExceeded(f"{unknown} request(s) have no known price, so the budget cannot "
                                 "be guaranteed; add them under `prices:` in the recipe")
        if cost <= 0 or self.o.yes or self.provider.name == "emulator":
            return
        if not sys.stdin.isatty():
            raise BudgetExceeded(f"this run would spend ${cost:.4f} at {self.provider.name}; "
                                 "pass --yes to confirm when not on a terminal")
        if cost >= self.o.confirm_above_usd:
            answer = self.o.input(f"Spend up to ${cost:.2f} at {self.provider.name}? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                raise BudgetExceeded("not confirmed; nothing was sent")

    # -- scheduling -----------------------------------------------------------

    def _ready(self, tid: str) -> str:
        """'ready', 'wait', or a skip status when a needed image will never exist."""
        task = self.tasks[tid]
        for dep in task.depends_on:
            if dep not in self.tasks:
                continue
            s = self.status.get(dep)
            if s in ("todo", "download", "running"):
                return "wait"
        if task.parent_image_id and task.parent_image_id not in self.image_ok:
            return jr.SKIPPED_PARENT
        return "ready"

    def _schedule(self, todo: list[str]) -> None:
        heap: list[tuple[int, str]] = []
        waiting = set(todo)
        for tid in todo:
            if self._ready(tid) != "wait":
                heapq.heappush(heap, (self.order[tid], tid))
                waiting.discard(tid)
        self.waiting = waiting
        self.heap = heap
        workers = max(4, self.limit.ceiling * 2 + 2)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ideopipe") as pool:
            while True:
                with self.cv:
                    while True:
                        if self.stopping.is_set():
                            break
                        if self.heap and self._fits_now(self.heap[0][1]):
                            break
                        if not self.heap and not self._running():
                            break
                        self.cv.wait(0.5)
                        self._tick()
                    if self.stopping.is_set() or (not self.heap and not self._running()):
                        break
                    _, tid = heapq.heappop(self.heap)
                    verdict = self._ready(tid)
                    if verdict not in ("ready", "wait"):
                        self._skip(tid, verdict, "an image it needs was not produced")
                        continue
                    task = self.tasks[tid]
                    if self.status[tid] == "todo" and not self._within_budget(task):
                        self._skip(tid, jr.SKIPPED_BUDGET, "starting it would pass the budget cap")
                        continue
                    mode = self.status[tid]
                    self._set_state(tid, "running")
                    if mode == "todo":
                        self.limit.start(task.num_images)
                        self.in_flight_cost += task.cost_usd or 0.0
                pool.submit(self._work, tid, mode)
            with self.cv:
                while self._running():
                    self.cv.wait(0.5)
                    self._tick()
        with self.cv:
            self._tick()

    def _set_state(self, tid: str, state: str) -> None:
        """Move a task to todo / download / running / finished, keeping the counts."""
        old = self.status.get(tid)
        if old is not None:
            self.state_counts[old] -= 1
        self.status[tid] = state
        self.state_counts[state] += 1

    def _running(self) -> bool:
        return self.state_counts["running"] > 0

    def _fits_now(self, tid: str) -> bool:
        if self.status.get(tid) == "download":
            return True
        return self.limit.can_start(self.tasks[tid].num_images)

    def _within_budget(self, task: Task) -> bool:
        if self.cap is None:
            return True
        cost = task.cost_usd or 0.0
        return self.spent + self.at_risk + self.in_flight_cost + cost <= self.cap + 1e-9

    def _skip(self, tid: str, status: str, why: str) -> None:
        """Mark a task (and, through _release, its dependents) as not run. Holds cv."""
        self.journal.set_status(tid, status, why)
        self._set_state(tid, "finished")
        self._release(tid)

    def _release(self, tid: str) -> None:
        """A task finished: queue the dependents whose needs are now met. Holds cv."""
        for child in self.children.get(tid, ()):
            if child in self.waiting and self._ready(child) != "wait":
                self.waiting.discard(child)
                heapq.heappush(self.heap, (self.order[child], child))
        self.cv.notify_all()

    def _tick(self) -> None:
        if self.progress:
            self.progress.update(done=self.state_counts["finished"], spent=self.spent, limit=self.limit.limit,
                                 failed=self._failed, rate_limited=self.rate_limited)

    def _rate_limited(self, retry_after: float | None) -> None:
        with self.cv:
            self.rate_limited += 1
            self.limit.rate_limited()

    def _sigint(self, signum: int, frame: Any) -> None:
        if self.stopping.is_set():
            os._exit(130)  # the second Ctrl-C: the journal is consistent at every commit
        self.stop_reason = "interrupted"
        self.stopping.set()
        self.client.stop.set()
        print("\nideopipe: stopping: letting requests in flight finish (Ctrl-C again to quit "
              "at once)", file=self.out)
        with self.cv:
            self.cv.notify_all()

    def _stop(self, reason: str) -> None:
        with self.cv:
            if not self.stop_reason:
                self.stop_reason = reason
            self.stopping.set()
            self.client.stop.set()
            self.cv.notify_all()

    # -- one task -------------------------------------------------------------

    def _work(self, tid: str, mode: str) -> None:
        task = self.tasks[tid]
        outcome = "finished"
        try:
            if mode == "download":
                self._redownload(task)
            else:
                self._send(task)
        except StorageError as exc:
            self._stop(str(exc))
        except (AuthError, PaymentError) as exc:
            self._stop(str(exc))
        except Exception as exc:  # a bug must not lose the journal: record it on the task
            try:
                self.journal.set_status(tid, jr.FAILED, f"internal error: {type(exc).__name__}: "
                                        f"{self.client.redact(str(exc))}")
            except StorageError as storage:
                self._stop(str(storage))
        finally:
            with self.cv:
                if mode != "download":
                    self._release_slots(task)
                    self.in_flight_cost -= task.cost_usd or 0.0
                self._set_state(tid, outcome)
                self.ran.add(tid)
                self._release(tid)

    def _send(self, task: Task) -> None:
        j = self.journal
        try:
            params = self._render_deferred(task)
            images = self._input_images(task)
        except (InputError, BadImage, DownloadError) as exc:
            j.set_status(task.id, jr.FAILED, self.client.redact(str(exc)))
            self._note_failure()
            return
        endpoint = ops.endpoint_for(ops.Op(task.op), task.model)
        assert endpoint is not None
        reproduce = self.o.reproduce.get(task.id)
        if reproduce:
            self._send_reproduce(task, endpoint, params, images, reproduce)
            return
        attempt_ids: list[int] = []

        def build() -> wire.WireRequest:
            return wire.build(self.provider, endpoint, task.model, params, task.seed,
                              task.num_images, images)

        def before_send(n: int) -> None:
            attempt_ids.append(j.sending(task.id, self.run_id))

        try:
            reply = self.client.call(endpoint, build, before_send)
        except ApiError as exc:
            self._api_failed(task, exc, attempt_ids[-1] if attempt_ids else 0)
            return
        finally:
            self._out_of_flight(task)
        self._record_reply(task, attempt_ids[-1], reply.body, reply.result, params)

    def _send_reproduce(self, task: Task, endpoint: ops.Endpoint, params: dict[str, Any],
                        images: Mapping[str, list[wire.InputImage]],
                        recorded: list[dict[str, Any]]) -> None:
        """Re-create recorded images: one request each, with its seed and the API's prompt."""
        j = self.journal
        bodies: list[Any] = []
        items: list[wire.ResultImage] = []
        attempt_id = 0
        try:
            for rec in recorded:
                p = dict(params)
                if rec.get("api_prompt") and "prompt" in endpoint.accepts:
                    p["prompt"] = rec["api_prompt"]
                if "magic_prompt" in endpoint.accepts:
                    p["magic_prompt"] = "OFF"

                def build(p: dict[str, Any] = p, seed: int | None = rec.get("seed")) -> wire.WireRequest:
                    return wire.build(self.provider, endpoint, task.model, p, seed, 1, images)

                ids: list[int] = []

                def before_send(n: int, ids: list[int] = ids) -> None:
                    ids.append(j.sending(task.id, self.run_id))

                reply = self.client.call(endpoint, build, before_send)
                attempt_id = ids[-1]
                bodies.append(reply.body)
                items.extend(reply.result.images[:1])
        except ApiError as exc:
            self._api_failed(task, exc, attempt_id)
            return
        finally:
            self._out_of_flight(task)
        result = wire.Result(images=tuple(
            wire.ResultImage(i, r.url, r.prompt, r.resolution, r.seed, r.is_image_safe,
                             r.style_type, r.upscaled_resolution) for i, r in enumerate(items)))
        self._record_reply(task, attempt_id, bodies, result, params)

    def _out_of_flight(self, task: Task) -> None:
        """The request is answered: its images no longer count against the provider's limit."""
        with self.cv:
            self._release_slots(task)
            self.cv.notify_all()

    def _release_slots(self, task: Task) -> None:
        """Give back a request's in-flight images, once. Holds cv."""
        if task.id not in self.released:
            self.released.add(task.id)
            self.limit.finish(task.num_images)

    def _note_failure(self) -> None:
        with self.cv:
            self._failed += 1
        if self.o.fail_fast:
            self._stop("a task failed and --fail-fast is set")

    def _api_failed(self, task: Task, exc: ApiError, attempt_id: int) -> None:
        j = self.journal
        message = self.client.redact(str(exc))
        if isinstance(exc, (OutcomeUnknown, ServerError)):
            status = jr.IN_DOUBT
            with self.cv:
                self.at_risk += task.cost_usd or 0.0
        elif isinstance(exc, SafetyRejected):
            status = jr.UNSAFE
        elif isinstance(exc, (AuthError, PaymentError)):
            status = jr.PENDING  # not run, not billed: the next run sends it
        else:
            status = jr.FAILED
        if attempt_id:
            j.attempt_failed(task.id, attempt_id, type(exc).__name__, exc.status, message, status)
        else:
            j.set_status(task.id, status, message)
        if isinstance(exc, (AuthError, PaymentError)):
            raise exc
        self._note_failure()

    def _record_reply(self, task: Task, attempt_id: int, body: Any, result: wire.Result,
                      params: Mapping[str, Any]) -> None:
        with self.cv:
            self.spent += task.cost_usd or 0.0
            self.limit.success()
        rows = []
        if result.descriptions:
            for n, text in enumerate(result.descriptions):
                image_id = task.image_ids[0] if n == 0 else f"{task.image_ids[0]}-{n}"
                rows.append(_image_row(image_id, n, None, None, None, None, text, "ok", None))
        for n, image_id in enumerate(task.image_ids):
            if task.op == "describe":
                break
            item = result.images[n] if n < len(result.images) else None
            if item is None:
                rows.append(_image_row(image_id, n, None, None, None, None, None, "failed",
                                       task.outputs[n]))
                continue
            rows.append(_image_row(image_id, n, item.seed, item.prompt, item.url,
                                   item.is_image_safe, None,
                                   "pending" if item.url else "unsafe", task.outputs[n],
                                   item.resolution, item.style_type))
        self.journal.responded(task.id, attempt_id, body, rows, params)
        self._download_all(task, rows)

    def _redownload(self, task: Task) -> None:
        st = self.journal.states([task.id])[task.id]
        rows = [dict(img) for img in st.images]
        intact = {img["image_id"] for img in rows if img["status"] == "ok" and img["file"] and
                  jr.file_sha256(self.out_dir / img["file"]) == img["sha256"]}
        for img in rows:
            if img["image_id"] in intact:
                self._image_ready(img)
            elif img["status"] in ("ok", "pending", "failed"):
                img["status"] = "pending"
        self._download_all(task, [r for r in rows if r["status"] == "pending"])

    def _download_all(self, task: Task, rows: list[dict[str, Any]]) -> None:
        updates: list[dict[str, Any]] = []
        ready: list[dict[str, Any]] = []
        for img in rows:
            if img["status"] != "pending" or not img.get("url"):
                if img["status"] == "ok" and task.op == "describe":
                    ready.append(img)
                continue
            try:
                data = download.fetch(self.http, img["url"],
                                      (self.timeouts.connect, self.timeouts.read))
                saved = download.save(data, self.out_dir / img["file"])
            except DownloadError as exc:
                status = jr.EXPIRED if isinstance(exc, DownloadExpired) else "failed"
                updates.append({"image_id": img["image_id"], "status": status, "error": str(exc)})
                self._note_failure()
                continue
            updates.append({"image_id": img["image_id"], "status": "ok", "file": img["file"],
                            "sha256": saved.sha256, "width": saved.width,
                            "height": saved.height, "bytes": saved.size})
            ready.append({**img, "status": "ok", "sha256": saved.sha256})
        self.journal.task_done(task.id, updates)
        for img in ready:  # only now may children use them: the journal knows the files
            self._image_ready(img)

    def _image_ready(self, img: dict[str, Any]) -> None:
        with self.cv:
            self.image_ok[img["image_id"]] = img

    # -- inputs of one task ---------------------------------------------------

    def _render_deferred(self, task: Task) -> dict[str, Any]:
        params = dict(task.params)
        if not task.deferred:
            return params
        ctx = dict(task.context)
        parent = self.image_ok.get(task.parent_image_id or "")
        if parent is not None:
            ctx["input"] = {**ctx.get("input", {}), "api_prompt": parent.get("api_prompt") or "",
                            "seed": parent.get("seed")}
        ctx["steps"] = self._step_results(task)
        for name, source in task.deferred.items():
            try:
                value: Any = templating.render(source, ctx)
            except Exception as exc:
                raise InputError(f"steps: {name}: {templating.describe_error(exc)}") from exc
            params[name] = int(value) if name in ("num_images", "image_weight", "resemblance",
                                                   "detail") else value
        return params

    def _step_results(self, task: Task) -> dict[str, Any]:
        out: dict[str, Any] = {}
        states = None
        for dep in task.depends_on:
            other = self.tasks.get(dep)
            if other is None or (other.id == task.depends_on[0] and task.parent_image_id):
                continue
            states = states or self.journal.states([d for d in task.depends_on])
            st = states.get(dep)
            imgs = [i for i in (st.images if st else ()) if i["status"] == "ok"]
            entry = out.setdefault(other.step_id, {"texts": [], "prompts": [], "seeds": [],
                                                   "files": []})
            for img in imgs:
                if img.get("description"):
                    entry["texts"].append(img["description"])
                entry["prompts"].append(img.get("api_prompt"))
                entry["seeds"].append(img.get("seed"))
                entry["files"].append(img.get("file"))
        for entry in out.values():
            entry["text"] = entry["texts"][0] if entry["texts"] else ""
            entry["api_prompt"] = entry["prompts"][0] if entry["prompts"] else ""
            entry["seed"] = entry["seeds"][0] if entry["seeds"] else None
            entry["file"] = entry["files"][0] if entry["files"] else None
        return out

    def _input_images(self, task: Task) -> dict[str, list[wire.InputImage]]:
        allow_private = bool(self.plan.recipe.data.get("allow_private_urls"))
        out: dict[str, list[wire.InputImage]] = {}
        for role, refs in task.images.items():
            items = []
            for ref in refs:
                if ref.kind == "step":
                    img = self.image_ok[ref.value]
                    data = (self.out_dir / img["file"]).read_bytes()
                    url = img.get("url") if time.time() - (img.get("updated_at") or 0) < \
                        URL_FRESH_S else None
                    items.append(wire.InputImage(data, Path(img["file"]).name, "image/png", url))
                elif ref.kind == "file":
                    path = Path(ref.value)
                    items.append(wire.InputImage(path.read_bytes(), path.name,
                                                 _content_type(path.read_bytes()[:16])))
                else:
                    check_url(ref.value, allow_private, resolve=True)
                    data = _fetch_input(self.http, ref.value, allow_private)
                    items.append(wire.InputImage(data, "image", _content_type(data[:16]),
                                                 ref.value))
            out[role] = items
        if out.get("image") and out.get("mask"):  # the API would refuse a misfit mask
            why = check_mask(inspect_bytes(out["image"][0].data, "the input image"),
                             inspect_bytes(out["mask"][0].data, "the mask"))
            if why:
                raise ImageInputError(why)
        return out


def _fetch_input(http: requests.Session, url: str, allow_private: bool) -> bytes:
    """Fetch an input image URL, following redirects only to allowed hosts."""
    for _ in range(5):
        try:
            resp = http.get(url, timeout=(10, 60), allow_redirects=False)
        except requests.RequestException as exc:
            raise ImageInputError(f"cannot fetch {url[:80]}: {type(exc).__name__}") from exc
        if resp.is_redirect and resp.headers.get("Location"):
            url = requests.compat.urljoin(url, resp.headers["Location"])
            check_url(url, allow_private, resolve=True)
            continue
        if resp.status_code != 200:
            raise ImageInputError(f"{url[:80]} answered {resp.status_code}")
        if len(resp.content) > download.MAX_BYTES:
            raise ImageInputError(f"{url[:80]} is too large")
        download.verify(resp.content)
        return resp.content
    raise ImageInputError(f"{url[:80]}: too many redirects")


def _content_type(head: bytes) -> str:
    kind = download.sniff(head) or "PNG"
    return {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}[kind]


def _image_row(image_id: str, idx: int, seed: int | None, prompt: str | None, url: str | None,
               safe: bool | None, description: str | None, status: str, file: str | None,
               resolution: str | None = None, style_type: str | None = None) -> dict[str, Any]:
    return {"image_id": image_id, "idx": idx, "seed": seed, "api_prompt": prompt, "url": url,
            "is_image_safe": None if safe is None else int(safe), "resolution": resolution,
            "style_type": style_type, "description": description, "file": file,
            "status": status}


def _row_values(plan: Plan) -> dict[str, Mapping[str, Any]]:
    keys = {t.row_index: t.row_key for t in plan.tasks}
    return {keys[r.index]: r.values for r in plan.rows if r.index in keys}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


__all__ = ["RunOptions", "RunResult", "run"]
