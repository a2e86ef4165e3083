"""A task's inputs at run time: templates that need earlier results, and its input images."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import requests

from .. import download, templating, wire
from ..errors import ImageInputError, InputError
from ..inputs import check_mask, check_url, inspect_bytes
from ..planner import Task
from ..status import Status
from .context import RunContext

URL_FRESH_S = 15 * 60  # pass a result URL straight through while it is this young
_INTS = ("num_images", "image_weight", "resemblance", "detail")


def render_deferred(ctx: RunContext, task: Task) -> dict[str, Any]:
    """The task's parameters with its run-time templates rendered."""
    params = dict(task.params)
    if not task.deferred:
        return params
    context = dict(task.context)
    parent = ctx.image_ok.get(task.parent_image_id or "")
    if parent is not None:
        context["input"] = {
            **context.get("input", {}),
            "api_prompt": parent.get("api_prompt") or "",
            "seed": parent.get("seed"),
        }
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
    out: dict[str, Any] = {}
    states = None
    for dep in task.depends_on:
        other = ctx.tasks.get(dep)
        if other is None or (other.id == task.depends_on[0] and task.parent_image_id):
            continue
        states = states or ctx.journal.states(list(task.depends_on))
        st = states.get(dep)
        imgs = [i for i in (st.images if st else ()) if i["status"] == Status.OK]
        entry = out.setdefault(other.step_id, {"texts": [], "prompts": [], "seeds": [], "files": []})
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


def input_images(ctx: RunContext, task: Task) -> dict[str, list[wire.InputImage]]:
    """The task's input images by role, read (or fetched) and checked."""
    allow_private = bool(ctx.plan.recipe.data.get("allow_private_urls"))
    out: dict[str, list[wire.InputImage]] = {}
    for role, refs in task.images.items():
        items = []
        for ref in refs:
            if ref.kind == "step":
                img = ctx.image_ok[ref.value]
                data = (ctx.out_dir / img["file"]).read_bytes()
                url = img.get("url") if time.time() - (img.get("updated_at") or 0) < URL_FRESH_S else None
                items.append(wire.InputImage(data, Path(img["file"]).name, "image/png", url))
            elif ref.kind == "file":
                path = Path(ref.value)
                data = path.read_bytes()
                items.append(wire.InputImage(data, path.name, content_type(data[:16])))
            else:
                check_url(ref.value, allow_private, resolve=True)
                data = fetch_input(ctx.http, ref.value, allow_private)
                items.append(wire.InputImage(data, "image", content_type(data[:16]), ref.value))
        out[role] = items
    if out.get("image") and out.get("mask"):  # the API would refuse a misfit mask
        why = check_mask(
            inspect_bytes(out["image"][0].data, "the input image"),
            inspect_bytes(out["mask"][0].data, "the mask"),
        )
        if why:
            raise ImageInputError(why)
    return out


def fetch_input(http: requests.Session, url: str, allow_private: bool) -> bytes:
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


def content_type(head: bytes) -> str:
    """The MIME type of image bytes (PNG when unknown)."""
    kind = download.sniff(head) or "PNG"
    return {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}[kind]
