"""Sending one task and recording its answer (or why there is none) in the journal."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .. import ops, wire
from ..client import Reply
from ..errors import (
    ApiError,
    AuthError,
    DownloadError,
    InputError,
    OutcomeUnknown,
    PaymentError,
    SafetyRejected,
    ServerError,
    StorageError,
)
from ..inputs import BadImage
from ..journal import Answer
from ..planner import Task
from ..planner.rerun import reproduce_params
from ..status import Status
from ..transport import Deadline
from .context import RunContext
from .downloads import Downloader
from .inputs import input_images, render_deferred
from .scheduler import Phase


class TaskWorker:
    """Runs one task: renders its inputs, sends it, journals the answer, downloads."""

    def __init__(self, ctx: RunContext):
        self.ctx = ctx
        self.downloads = Downloader(ctx)

    def __call__(self, task: Task, mode: Phase) -> None:
        """Run a task; every outcome ends in the journal, never as an exception."""
        ctx = self.ctx
        try:
            if mode == Phase.DOWNLOAD:
                self.downloads.redownload(task)
            else:
                self.send(task)
        except (StorageError, AuthError, PaymentError) as exc:
            with contextlib.suppress(StorageError):  # the disk may refuse this write too
                self._settle(task, f"not written: {exc}", None)
            ctx.stop(str(exc))
        except Exception as exc:  # a bug must not lose the journal: record it on the task
            why = f"internal error: {type(exc).__name__}: {ctx.redact(str(exc))}"
            try:
                self._settle(task, why, Status.FAILED)
            except StorageError as storage:
                ctx.stop(str(storage))

    def _settle(self, task: Task, why: str, otherwise: Status | None) -> None:
        """After a local failure, the task's status; a request that left never ends as failed.

        An answered task keeps its answer (unwritten images become `not_saved`); a task
        whose sending was committed with no answer recorded is `in_doubt` (it may have
        run and been billed); only a task that never left becomes `otherwise`.
        """
        if self._keep_paid(task, why):
            return
        st = self.ctx.journal.states([task.id]).get(task.id)
        if st is not None and st.status in (Status.SENDING, Status.IN_DOUBT):
            self.ctx.journal.set_status(task.id, Status.IN_DOUBT, f"{why}; the request may have run")
            with self.ctx.cv:
                self.ctx.at_risk += task.cost_usd or 0.0
        elif otherwise is not None:
            self.ctx.journal.set_status(task.id, otherwise, why)

    def _keep_paid(self, task: Task, why: str) -> bool:
        """After a local failure: an answered task's unwritten images become `not_saved`.

        Returns True when the task's answer is recorded (it is never sent again).
        """
        journal = self.ctx.journal
        if not journal.answered([task.id]):
            return False
        st = journal.states([task.id]).get(task.id)
        left = [i["image_id"] for i in (st.images if st else ()) if i["status"] == Status.PENDING]
        if left:
            journal.not_saved(task.id, left, why)
        return True

    def send(self, task: Task) -> None:
        """Send the task's request (or its recorded reproductions) and record the outcome."""
        ctx = self.ctx
        try:
            params = render_deferred(ctx, task)
            images = input_images(ctx, task)
        except (InputError, BadImage, DownloadError) as exc:
            ctx.journal.set_status(task.id, Status.FAILED, ctx.redact(str(exc)))
            ctx.note_failure()
            return
        endpoint = ops.endpoint_for(ops.Op(task.op), task.model)
        if endpoint is None:
            raise InputError(f"{task.op} has no endpoint for model {task.model}")
        reproduce = ctx.o.reproduce.get(task.id)
        if reproduce:
            self._send_reproduce(task, endpoint, params, images, reproduce)
            return
        deadline = Deadline(ctx.timeouts.total)  # the task's: its request and its downloads
        attempt_ids: list[int] = []

        def build() -> wire.WireRequest:
            return wire.build(ctx.provider, endpoint, task.model, params, task.seed, task.num_images, images)

        def before_send(n: int) -> None:
            ctx.take_slots_back(task)
            attempt_ids.append(ctx.journal.sending(task.id, ctx.run_id))

        ctx.local.task = task
        try:
            reply = ctx.client.call(endpoint, build, before_send, deadline)
        except ApiError as exc:
            self._api_failed(task, exc, attempt_ids[-1] if attempt_ids else 0)
            return
        finally:
            ctx.local.task = None
            ctx.out_of_flight(task)
        self._record_reply(task, attempt_ids[-1], reply, params, deadline)

    def _send_reproduce(
        self,
        task: Task,
        endpoint: ops.Endpoint,
        params: dict[str, Any],
        images: Mapping[str, list[wire.InputImage]],
        recorded: list[dict[str, Any]],
    ) -> None:
        """Re-create recorded images: one request each, with its seed and the API's prompt."""
        ctx = self.ctx
        replies: list[Reply] = []
        items: list[wire.ResultImage] = []
        attempt_id = 0
        deadline = Deadline(ctx.timeouts.total)  # the task's: every request and its downloads
        try:
            for rec in recorded:
                p = reproduce_params(endpoint, params, rec)

                def build(p: dict[str, Any] = p, seed: int | None = rec.get("seed")) -> wire.WireRequest:
                    return wire.build(ctx.provider, endpoint, task.model, p, seed, 1, images)

                ids: list[int] = []

                def before_send(n: int, ids: list[int] = ids) -> None:
                    ctx.take_slots_back(task)
                    ids.append(ctx.journal.sending(task.id, ctx.run_id))

                ctx.local.task = task
                reply = ctx.client.call(endpoint, build, before_send, deadline)
                attempt_id = ids[-1]
                replies.append(reply)
                items.extend(reply.result.images[:1] if reply.result else ())
        except ApiError as exc:
            self._api_failed(task, exc, attempt_id)
            return
        finally:
            ctx.local.task = None
            ctx.out_of_flight(task)
        result = wire.Result(images=tuple(replace(r, index=i) for i, r in enumerate(items)))
        problems = [r.problem for r in replies if r.problem]
        joined = Reply(
            result,
            [r.body for r in replies],
            len(replies),
            0.0,
            "\n".join(r.text for r in replies),
            "; ".join(problems) or None,
        )
        self._record_reply(task, attempt_id, joined, params, deadline)

    def _api_failed(self, task: Task, exc: ApiError, attempt_id: int) -> None:
        ctx = self.ctx
        message = ctx.redact(str(exc))
        if isinstance(exc, (OutcomeUnknown, ServerError)):
            status = Status.IN_DOUBT
            with ctx.cv:
                ctx.at_risk += task.cost_usd or 0.0
        elif isinstance(exc, SafetyRejected):
            status = Status.UNSAFE
        elif isinstance(exc, (AuthError, PaymentError)):
            status = Status.PENDING  # not run, not billed: the next run sends it
        else:
            status = Status.FAILED
        if attempt_id:
            ctx.journal.attempt_failed(task.id, attempt_id, type(exc).__name__, exc.status, message, status)
        else:
            ctx.journal.set_status(task.id, status, message)
        if isinstance(exc, (AuthError, PaymentError)):
            raise exc
        ctx.note_failure()

    def _record_reply(
        self, task: Task, attempt_id: int, reply: Reply, params: Mapping[str, Any], deadline: Deadline
    ) -> None:
        """Journal the answer first (the transaction that ends `sending`), then download."""
        ctx = self.ctx
        try:
            rows = answer_rows(task, reply)
        except Exception as exc:  # never let a bug here lose the answer: record it bare
            rows = [
                image_row(
                    i,
                    n,
                    status=Status.NOT_SAVED,
                    file=_output(task, n),
                    error=f"internal error: {type(exc).__name__}",
                )
                for n, i in enumerate(task.image_ids)
            ]
        ctx.journal.responded(
            task.id, attempt_id, Answer(reply.text, reply.body, reply.problem), rows, params
        )
        with ctx.cv:
            ctx.spent += task.cost_usd or 0.0
            ctx.limit.success()
        if reply.problem:
            ctx.note_failure()
        self.downloads.download_all(task, rows, deadline)


def answer_rows(task: Task, reply: Reply) -> list[dict[str, Any]]:
    """The image rows an answer announces (failed ones when it is unusable or short)."""
    result = reply.result
    rows = []
    if result is not None and result.descriptions:
        for n, text in enumerate(result.descriptions):
            image_id = task.image_ids[0] if n == 0 else f"{task.image_ids[0]}-{n}"
            rows.append(image_row(image_id, n, description=text, status=Status.OK))
    if task.op == "describe" and rows:
        return rows
    images = result.images if result is not None else ()
    for n, image_id in enumerate(task.image_ids):
        item = images[n] if n < len(images) else None
        if item is None:
            why = reply.problem or "the answer has no image here"
            rows.append(
                image_row(image_id, n, status=Status.FAILED, file=_output(task, n), error=f"paid, but {why}")
            )
            continue
        rows.append(
            image_row(
                image_id,
                n,
                seed=item.seed,
                prompt=item.prompt,
                url=item.url,
                safe=item.is_image_safe,
                status=Status.PENDING if item.url else Status.UNSAFE,
                file=_output(task, n),
                resolution=item.resolution,
                style_type=item.style_type,
            )
        )
    return rows


def _output(task: Task, n: int) -> str | None:
    return task.outputs[n] if n < len(task.outputs) else None


def image_row(
    image_id: str,
    idx: int,
    *,
    seed: int | None = None,
    prompt: str | None = None,
    url: str | None = None,
    safe: bool | None = None,
    description: str | None = None,
    status: Status,
    file: str | None = None,
    resolution: str | None = None,
    style_type: str | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """One image as the journal records it."""
    return {
        "image_id": image_id,
        "idx": idx,
        "seed": seed,
        "api_prompt": prompt,
        "url": url,
        "is_image_safe": None if safe is None else int(safe),
        "resolution": resolution,
        "style_type": style_type,
        "description": description,
        "file": file,
        "status": status,
        "error": error,
    }
