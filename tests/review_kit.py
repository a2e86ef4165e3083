"""Helpers for the outside review's break tests: a scripted provider, recipes, journal reads."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

from badserver import BadServer, Reply
from PIL import Image

KEY = "sk-review-SECRET-7c3e91d04b"
GEN = "/v1/ideogram-v3/generate"
IMG = "/img.png"


def png(color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A small real PNG."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buf, "PNG")
    return buf.getvalue()


def answer(url: str, seed: int = 11, **extra: Any) -> dict[str, Any]:
    """A v3 generate answer with one image."""
    item = {
        "url": url,
        "seed": seed,
        "prompt": "p",
        "resolution": "1024x1024",
        "is_image_safe": True,
        **extra,
    }
    return {"created": "2026-11-22T00:00:00Z", "data": [item]}


ONE = """
version: 1
name: review
provider: ideogram
rows:
  - {sku: A1, product: kettle}
seed: derive
defaults: {model: V_3, rendering_speed: TURBO, magic_prompt: "OFF"}
steps:
  - id: hero
    op: generate
    prompt: "A {{ product }}"
output:
  dir: out
"""


def serve_one(bad: BadServer, body: Any = None, image: bytes | None = None) -> None:
    """Script a good generate answer and its image."""
    bad.script(
        GEN,
        Reply(200, body if body is not None else answer(bad.url(IMG)), {"Content-Type": "application/json"}),
    )
    bad.script(IMG, Reply(200, image or png(), {"Content-Type": "image/png"}))


def posts(bad: BadServer) -> int:
    """API requests the server received."""
    return sum(1 for s in bad.seen if s.method == "POST")


def options(base_url: str, **kw: Any) -> Any:
    """RunOptions for a scripted provider with the review key."""
    from pipeline.runner import RunOptions

    return RunOptions(base_url=base_url, environ={"IDEOGRAM_API_KEY": KEY}, yes=True, quiet=True, **kw)


def rows(out: Path, sql: str) -> list[tuple]:
    """Rows of the journal."""
    with closing(sqlite3.connect(out / ".ideopipe" / "state.db")) as conn:
        return conn.execute(sql).fetchall()


def cli(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 60,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `python -m pipeline ARGS` for real."""
    full = {**os.environ, **(env or {})}
    full.pop("IDEOPIPE_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        env=full,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin if stdin is not None else "",
    )


def everything_under(folder: Path) -> bytes:
    """Every byte of every file under a folder (to grep for a key)."""
    out = bytearray()
    for p in folder.rglob("*"):
        if p.is_file() and not p.is_symlink():
            out += p.read_bytes()
    return bytes(out)


def dumps(v: Any) -> str:
    return json.dumps(v)
