"""Result images: downloaded once into the store, materialised at their output names.

An answered task is paid for: from here on no local failure (a name the file system
refuses, a file-versus-folder clash, a full disk, a bug) makes it be sent again. Such an
image is journaled `not_saved`; the next run writes it from the store, or downloads it
again while its URL lives (`download_expired` after).

Each image is decoded once, here: that check also gives its true format (a JPEG or WebP
answer is stored under the planned stem with its own extension) and the report's
thumbnail, made at once from the decoded pixels so the report only reads it.
"""

from __future__ import annotations

import os
from pathlib import PurePosixPath
from typing import Any

from .. import download, images
from ..errors import DownloadError, DownloadExpired, StorageError
from ..files import PathRefused
from ..planner import Task
from ..report.thumbs import THUMB_MAX, save_thumbnail
from ..status import Status
from ..store import Store, file_sha256
from ..transport import Deadline
from .context import RunContext

#: image statuses the next visit tries to write again (from the store or the URL)
REDO = frozenset({Status.OK, Status.PENDING, Status.FAILED, Status.NOT_SAVED})
#: the extension each true format is stored with (the planned one is kept when it fits)
EXTENSIONS = {"PNG": (".png",), "JPEG": (".jpg", ".jpeg"), "WEBP": (".webp",)}


class Downloader:
    """Fetches announced images into the store; children see them once journaled."""

    def __init__(self, ctx: RunContext):
        self.ctx = ctx
        self.store = Store(ctx.out_dir)

    def redownload(self, task: Task) -> None:
        """A task paid for earlier: keep intact files, restore or fetch the others."""
        ctx = self.ctx
        st = ctx.journal.states([task.id])[task.id]
        rows = [dict(img) for img in st.images]
        for img in rows:
            if (
                img["status"] == Status.OK
                and img["file"]
                and file_sha256(ctx.out_dir / img["file"]) == img["sha256"]
            ):
                ctx.image_ready(img)
            elif img["status"] in REDO and img["file"]:
                img["status"] = Status.PENDING
        self.download_all(task, [r for r in rows if r["status"] == Status.PENDING])

    def download_all(self, task: Task, rows: list[dict[str, Any]], deadline: Deadline | None = None) -> None:
        """Write every pending image of `rows`, then record all outcomes in one commit.

        Every download shares `deadline` (the task's, started with its request): together
        they get what is left of timeouts.total, never a fresh allowance each.
        """
        ctx = self.ctx
        deadline = deadline or Deadline(ctx.timeouts.total)
        updates: list[dict[str, Any]] = []
        ready: list[dict[str, Any]] = []
        stopped: StorageError | None = None
        for img in rows:
            if img["status"] != Status.PENDING or (not img.get("url") and not img.get("sha256")):
                if img["status"] == Status.OK and task.op == "describe":
                    ready.append(img)
                continue
            if stopped is not None:
                updates.append(_not_saved(img, None, f"not written: {stopped}"))
                continue
            try:
                update = self._one(img, deadline)
            except DownloadError as exc:
                status = Status.DOWNLOAD_EXPIRED if isinstance(exc, DownloadExpired) else Status.FAILED
                updates.append({"image_id": img["image_id"], "status": status, "error": str(exc)})
                ctx.note_failure()
                continue
            except StorageError as exc:
                sha = getattr(exc, "sha256", None)
                updates.append(_not_saved(img, sha, str(exc)))
                ctx.note_failure()
                if not isinstance(exc, PathRefused):
                    stopped = exc  # the disk itself refuses: stop after recording this task
                continue
            updates.append(update)
            ready.append({**img, **update})
        ctx.journal.task_done(task.id, updates)
        for img in ready:  # only now may children use them: the journal knows the files
            ctx.image_ready(img)
        if stopped is not None:
            raise stopped

    def _one(self, img: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        """Put one image in the store (from the store itself when it is there) and name it."""
        ctx = self.ctx
        sha = img.get("sha256")
        if sha and self.store.has(sha, verify=True):
            with open(self.store.path(sha), "rb") as f:
                data = f.read()
        else:
            if not img.get("url"):
                raise DownloadError("no stored copy and no URL to download it from")
            data = download.get(ctx.fetcher, img["url"], ctx.timeouts, deadline=deadline)
        try:
            decoded = images.decode(data, "the downloaded image")
        except images.BadImageData as exc:
            raise DownloadError(str(exc)) from exc
        file = true_name(img["file"], decoded.format)
        sha = self.store.put(data)
        try:
            path = self.store.materialise(sha, file)
        except StorageError as exc:
            exc.sha256 = sha  # type: ignore[attr-defined]  # kept: the next run needs no download
            raise
        st = os.stat(path, follow_symlinks=False)
        self._thumbnail(img["image_id"], file, decoded)
        return {
            "image_id": img["image_id"],
            "status": Status.OK,
            "file": file,
            "sha256": sha,
            "width": decoded.width,
            "height": decoded.height,
            "bytes": len(data),
            "mtime_ns": st.st_mtime_ns,
        }

    def _thumbnail(self, image_id: str, file: str, decoded: images.Decoded) -> None:
        """The report's thumbnail, from pixels already decoded; the report remakes any missing."""
        if max(decoded.width, decoded.height) <= THUMB_MAX:
            return  # the report shows such an image as it is
        try:
            save_thumbnail(self.ctx.out_dir, image_id, file, decoded.image)
        except (OSError, ValueError, StorageError):
            pass  # only a convenience: the report makes it from the file


def true_name(file: str, fmt: str) -> str:
    """`file` with the extension of the image's true format (the same stem)."""
    path = PurePosixPath(file)
    allowed = EXTENSIONS.get(fmt)
    if not allowed or path.suffix.lower() in allowed:
        return file
    return str(path.with_suffix(allowed[0]))


def _not_saved(img: dict[str, Any], sha: str | None, error: str) -> dict[str, Any]:
    return {"image_id": img["image_id"], "status": Status.NOT_SAVED, "sha256": sha, "error": error}
