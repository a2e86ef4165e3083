"""A task's inputs at run time: templates that need earlier results, and its input images."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

from .. import images, templating, wire
from ..errors import ImageInputError, InputError
from ..fetch import FetchError
from ..inputs import MAX_INPUT_BYTES, BadImage, VerifiedImage, check_mask, inspect_bytes, read_image_file
from ..planner import Task, runtime
from ..status import Status
from .context import RunContext

URL_FRESH_S = 15 * 60  # pass a result URL straight through while it is this young
_INTS = ("num_images", "image_weight", "resemblance", "detail")


def render_deferred(ctx: RunContext, task: Task) -> dict[str, Any]:
    """The task's parameters with its run-time templates rendered (rules: planner/runtime.py)."""
    params = dict(task.params)
    if not task.deferred:
        return params
    context = dict(task.context)
    parent = ctx.image_ok.get(task.parent_image_id or "")
    if parent is not None:
        context["input"] = runtime.parent_input(context.get("input", {}), parent)
    context["steps"] = step_results(ctx, task)
    for name, source in task.deferred.items():
        try:
            value: Any = templating.render(source, context)
        except Exception as exc:
            raise InputError(f"steps: {name}: {templating.describe_error(exc)}") from exc
        params[name] = int(value) if name in _INTS else value
    return params


def step_results(ctx: RunContext, task: Task) -> dict[str, Any]:
    """What earlier steps of the row produced, as templates see it (`steps.<id>.text`, ...)."""
    by_step: dict[str, list[dict[str, Any]]] = {}
    states = None
    for dep in task.depends_on:
        other = ctx.tasks.get(dep)
        if other is None or (other.id == task.depends_on[0] and task.parent_image_id):
            continue
        states = states or ctx.journal.states(list(task.depends_on))
        st = states.get(dep)
        good = [i for i in (st.images if st else ()) if i["status"] == Status.OK]
        by_step.setdefault(other.step_id, []).extend(good)
    return {step: runtime.step_results(images) for step, images in by_step.items()}


def input_images(ctx: RunContext, task: Task) -> dict[str, list[wire.InputImage]]:
    """The task's input images by role: read once (or fetched through the guard) and checked.

    The bytes checked are the bytes sent: files are opened once without following links
    and must still match the digest taken when planning.
    """
    out: dict[str, list[wire.InputImage]] = {}
    for role, refs in task.images.items():
        items = []
        for ref in refs:
            if ref.kind == "step":
                img = ctx.image_ok[ref.value]
                data, content_type = read_result(ctx.out_dir / img["file"], img.get("sha256") or "")
                url = img.get("url") if time.time() - (img.get("updated_at") or 0) < URL_FRESH_S else None
                items.append(wire.InputImage(data, Path(img["file"]).name, content_type, url))
            elif ref.kind == "file":
                got = read_image_file(ref.value, ref.digest, ref.root)
                items.append(wire.InputImage(got.data, Path(ref.value).name, got.content_type))
            else:
                got = fetch_input(ctx, ref.value)
                items.append(wire.InputImage(got.data, "image", got.content_type, ref.value))
        out[role] = items
    if out.get("image") and out.get("mask"):  # the API would refuse a misfit mask
        why = check_mask(
            inspect_bytes(out["image"][0].data, "the input image"),
            inspect_bytes(out["mask"][0].data, "the mask"),
        )
        if why:
            raise ImageInputError(why)
    return out


def read_result(path: Path, sha256: str) -> tuple[bytes, str]:
    """An earlier result's bytes and true content type, read once without following a link.

    Its bytes were decoded and checked when they were downloaded; matching that digest
    proves they are the same bytes, so they are not decoded a second time. A result
    without a recorded digest is checked in full.
    """
    if not sha256:
        got = read_image_file(str(path))
        return got.data, got.content_type
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
        with os.fdopen(fd, "rb") as f:
            data = f.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise BadImage(f"cannot read {path}: {exc.strerror or exc}") from exc
    kind = images.sniff(data)
    if hashlib.sha256(data).hexdigest() != sha256 or kind is None or len(data) > MAX_INPUT_BYTES:
        raise BadImage(f"{path} changed since it was downloaded; run again to restore it")
    return data, images.CONTENT_TYPES[kind]


def fetch_input(ctx: RunContext, url: str) -> VerifiedImage:
    """Fetch an input image URL through the guarded fetch and check its bytes."""
    try:
        fetched = ctx.fetcher.get(url, ctx.timeouts, MAX_INPUT_BYTES)
    except FetchError as exc:
        raise ImageInputError(f"cannot use {url[:80]}: {exc}") from exc
    info = inspect_bytes(fetched.data, url[:80])
    return VerifiedImage(fetched.data, images.CONTENT_TYPES[info.format], info)
