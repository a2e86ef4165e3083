"""Downloading a task's result images and journaling each outcome."""

from __future__ import annotations

from typing import Any

from .. import download
from .. import journal as jr
from ..errors import DownloadError, DownloadExpired
from ..planner import Task
from ..status import Status
from .context import RunContext


class Downloader:
    """Fetches announced images to their output names; children see them once journaled."""

    def __init__(self, ctx: RunContext):
        self.ctx = ctx

    def redownload(self, task: Task) -> None:
        """A task paid for earlier: keep intact files, fetch the others again."""
        ctx = self.ctx
        st = ctx.journal.states([task.id])[task.id]
        rows = [dict(img) for img in st.images]
        intact = {
            img["image_id"]
            for img in rows
            if img["status"] == Status.OK
            and img["file"]
            and jr.file_sha256(ctx.out_dir / img["file"]) == img["sha256"]
        }
        for img in rows:
            if img["image_id"] in intact:
                ctx.image_ready(img)
            elif img["status"] in (Status.OK, Status.PENDING, Status.FAILED):
                img["status"] = Status.PENDING
        self.download_all(task, [r for r in rows if r["status"] == Status.PENDING])

    def download_all(self, task: Task, rows: list[dict[str, Any]]) -> None:
        """Download every pending image of `rows`, then record all outcomes in one commit."""
        ctx = self.ctx
        updates: list[dict[str, Any]] = []
        ready: list[dict[str, Any]] = []
        for img in rows:
            if img["status"] != Status.PENDING or not img.get("url"):
                if img["status"] == Status.OK and task.op == "describe":
                    ready.append(img)
                continue
            try:
                data = download.get(ctx.fetcher, img["url"], ctx.timeouts)
                saved = download.save(data, ctx.out_dir / img["file"])
            except DownloadError as exc:
                status = Status.DOWNLOAD_EXPIRED if isinstance(exc, DownloadExpired) else Status.FAILED
                updates.append({"image_id": img["image_id"], "status": status, "error": str(exc)})
                ctx.note_failure()
                continue
            updates.append(
                {
                    "image_id": img["image_id"],
                    "status": Status.OK,
                    "file": img["file"],
                    "sha256": saved.sha256,
                    "width": saved.width,
                    "height": saved.height,
                    "bytes": saved.size,
                }
            )
            ready.append({**img, "status": Status.OK, "sha256": saved.sha256})
        ctx.journal.task_done(task.id, updates)
        for img in ready:  # only now may children use them: the journal knows the files
            ctx.image_ready(img)
