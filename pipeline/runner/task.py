"""Sending one task and recording its answer (or why there is none) in the journal."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import ops, wire
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
from ..planner import Task
from ..status import Status
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
            ctx.stop(str(exc))
        except Exception as exc:  # a bug must not lose the journal: record it on the task
            try:
                ctx.journal.set_status(
                    task.id, Status.FAILED, f"internal error: {type(exc).__name__}: {ctx.redact(str(exc))}"
                )
            except StorageError as storage:
                ctx.stop(str(storage))

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
        attempt_ids: list[int] = []

        def build() -> wire.WireRequest:
            return wire.build(ctx.provider, endpoint, task.model, params, task.seed, task.num_images, images)

        def before_send(n: int) -> None:
            attempt_ids.append(ctx.journal.sending(task.id, ctx.run_id))

        try:
            reply = ctx.client.call(endpoint, build, before_send)
        except ApiError as exc:
            self._api_failed(task, exc, attempt_ids[-1] if attempt_ids else 0)
            return
        finally:
            ctx.out_of_flight(task)
        self._record_reply(task, attempt_ids[-1], reply.body, reply.result, params)

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
                    return wire.build(ctx.provider, endpoint, task.model, p, seed, 1, images)

                ids: list[int] = []

                def before_send(n: int, ids: list[int] = ids) -> None:
                    ids.append(ctx.journal.sending(task.id, ctx.run_id))

                reply = ctx.client.call(endpoint, build, before_send)
                attempt_id = ids[-1]
                bodies.append(reply.body)
                items.extend(reply.result.images[:1])
        except ApiError as exc:
            self._api_failed(task, exc, attempt_id)
            return
        finally:
            ctx.out_of_flight(task)
        result = wire.Result(
            images=tuple(
                wire.ResultImage(
                    i,
                    r.url,
                    r.prompt,
                    r.resolution,
                    r.seed,
                    r.is_image_safe,
                    r.style_type,
                    r.upscaled_resolution,
                )
                for i, r in enumerate(items)
            )
        )
        self._record_reply(task, attempt_id, bodies, result, params)

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
        self, task: Task, attempt_id: int, body: Any, result: wire.Result, params: Mapping[str, Any]
    ) -> None:
        ctx = self.ctx
        with ctx.cv:
            ctx.spent += task.cost_usd or 0.0
            ctx.limit.success()
        rows = []
        if result.descriptions:
            for n, text in enumerate(result.descriptions):
                image_id = task.image_ids[0] if n == 0 else f"{task.image_ids[0]}-{n}"
                rows.append(image_row(image_id, n, description=text, status=Status.OK))
        for n, image_id in enumerate(task.image_ids):
            if task.op == "describe":
                break
            item = result.images[n] if n < len(result.images) else None
            if item is None:
                rows.append(image_row(image_id, n, status=Status.FAILED, file=task.outputs[n]))
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
                    file=task.outputs[n],
                    resolution=item.resolution,
                    style_type=item.style_type,
                )
            )
        ctx.journal.responded(task.id, attempt_id, body, rows, params)
        self.downloads.download_all(task, rows)


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
    }
