"""A sample manifest for the report tests: two rows, chains of three steps, every way to go wrong."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image, ImageDraw

from pipeline.report import write_report

XSS = "<script>alert(1)</script>"
LONG_PROMPT = (
    "A sunlit product shot of a ceramic mug on an oak table, soft window light, "
    "shallow depth of field, steam rising, muted earthy palette, 35mm photograph, "
    "clean negative space on the left for copy"
)

COLUMNS = [
    "schema_version",
    "run_id",
    "recipe",
    "recipe_sha256",
    "row_index",
    "row_key",
    "matrix",
    "step_id",
    "op",
    "provider",
    "endpoint",
    "model",
    "image_id",
    "parent_image_id",
    "image_index",
    "prompt",
    "api_prompt",
    "negative_prompt",
    "seed",
    "seed_source",
    "aspect_ratio",
    "resolution",
    "rendering_speed",
    "style_type",
    "magic_prompt",
    "is_image_safe",
    "description",
    "status",
    "error",
    "cost_usd",
    "file",
    "sha256",
    "width",
    "height",
    "bytes",
    "url",
    "attempts",
    "latency_s",
    "started_at",
    "finished_at",
    "task_id",
]
# The manifest's nullable dtypes, so missing values arrive as pd.NA as in a real run.
DTYPES = (
    {c: "string" for c in COLUMNS}
    | {
        c: "Int64"
        for c in (
            "schema_version",
            "row_index",
            "image_index",
            "seed",
            "width",
            "height",
            "bytes",
            "attempts",
        )
    }
    | {"cost_usd": "Float64", "latency_s": "Float64", "is_image_safe": "boolean"}
)
STEP_COLOURS = {"hero": (79, 70, 229), "variant": (14, 116, 144), "big": (190, 18, 60)}
RUN = {
    "run_id": "20251121-154103-ab12",
    "recipe_name": "Spring launch heroes",
    "description": "Two hero shots per product, one remix each, upscaled for print.",
    "provider": "ideogram",
    "started_at": "2025-11-21T15:41:03Z",
    "finished_at": "2025-11-21T15:44:15Z",
    "duration_s": 192.4,
    "planned_cost_usd": 1.2,
    "budget_usd": 5.0,
    "spent_usd": 0.93,
    "status": "ok",
    "steps": ["hero", "variant", "big"],
}


def png(path: Path, size: tuple[int, int], colour: tuple[int, int, int], label: str) -> None:
    """A small but recognisable picture: a gradient, a disc and a label."""
    img = Image.new("RGB", size)
    draw = ImageDraw.Draw(img)
    w, h = size
    for y in range(h):
        t = y / h
        draw.line([(0, y), (w, y)], fill=tuple(int(c * (1 - t) + 245 * t) for c in colour))
    r = min(w, h) // 4
    draw.ellipse([w // 2 - r, h // 2 - r, w // 2 + r, h // 2 + r], fill=(250, 250, 250))
    draw.text((16, 16), label, fill=(255, 255, 255), font_size=max(14, h // 14))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def entry(
    row: int,
    key: str,
    step: str,
    op: str,
    image_id: str,
    parent: str | None,
    index: int,
    status: str = "ok",
    **extra: Any,
) -> dict[str, Any]:
    entry: dict[str, Any] = dict.fromkeys(COLUMNS)
    entry.update(
        schema_version=1,
        run_id=RUN["run_id"],
        recipe="recipes/launch.yaml",
        recipe_sha256="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        row_index=row,
        row_key=key,
        matrix=json.dumps({"style": "photo"}),
        step_id=step,
        op=op,
        provider="ideogram",
        model="V_3",
        image_id=image_id,
        parent_image_id=parent,
        image_index=index,
        prompt=f"{key}: a {op} of the product",
        seed=1000 + row * 100 + index,
        seed_source="derived",
        aspect_ratio="4x3",
        rendering_speed="TURBO",
        status=status,
        cost_usd=0.03 if op == "generate" else 0.06,
        attempts=1,
        task_id=f"task-{image_id}",
    )
    if status == "ok" and op != "describe":
        size = (1024, 768) if op != "upscale" else (2048, 1536)
        entry.update(file=f"{key}/{step}/{image_id}.png", width=size[0], height=size[1])
    entry.update(extra)
    return entry


def sample_manifest(out: Path) -> pd.DataFrame:
    """Two rows: generate 2 → remix each → upscale each; plus the ways things go wrong."""
    entries = []
    for row, key in enumerate(["mug-blue", "mug-red"]):
        for i in range(2):
            gen, remix, up = f"{key}-g{i}", f"{key}-r{i}", f"{key}-u{i}"
            entries += [
                entry(row, key, "hero", "generate", gen, None, i),
                entry(row, key, "variant", "remix", remix, gen, 0),
                entry(row, key, "big", "upscale", up, remix, 0),
            ]
    entries[0]["api_prompt"] = LONG_PROMPT  # magic prompt rewrote it
    entries[1]["cost_usd"] = None  # unknown price
    entries += [
        entry(
            0,
            "mug-blue",
            "variant",
            "remix",
            "mug-blue-r0b",
            "mug-blue-g0",
            1,
            "unsafe",
            error="422: image failed the safety check",
            is_image_safe=False,
        ),
        entry(
            1,
            "mug-red",
            "hero",
            "generate",
            "mug-red-g2",
            None,
            2,
            "failed",
            error="400 Bad Request: <b>prompt</b> too long",
        ),
        entry(
            1,
            "mug-red",
            "big",
            "upscale",
            "mug-red-u1b",
            "mug-red-r1",
            1,
            "in_doubt",
            error="read timed out after 120 s",
        ),
        entry(
            1,
            "mug-red",
            "describe",
            "describe",
            "mug-red-d0",
            "mug-red-u0",
            0,
            description="A red ceramic mug on a wooden table, morning light.",
            cost_usd=0.01,
        ),
    ]
    for e in entries:
        if e["file"]:
            colour = STEP_COLOURS[e["step_id"]]
            png(out / e["file"], (e["width"] // 4, e["height"] // 4), colour, e["image_id"])
    return pd.DataFrame(entries, columns=COLUMNS).astype(DTYPES)


CLEAN_ROWS = {
    "mug-blue": {"product": "Mug", "colour": "blue", "headline": "Morning, made better"},
    "mug-red": {"product": "Mug", "colour": "red", "headline": "Red is the new blue"},
}
# One CSV cell is a script; another would set a flag if it ever ran.
ROWS = {
    **CLEAN_ROWS,
    "mug-red": {**CLEAN_ROWS["mug-red"], "headline": XSS, "note": "<script>window.__xss = 1</script>"},
}


class Cards(HTMLParser):
    """Each card's image id, status, whether it has an <img>, and its ancestors' ids."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str | None] = []  # one slot per open <li class="node">
        self.depth: list[str] = []  # open tags, to know which <li> closes
        self.cards: dict[str, dict[str, Any]] = {}
        self.current: str | None = None
        self.imgs: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "li":
            self.depth.append("node" if "node" in (a.get("class") or "").split() else "li")
            if self.depth[-1] == "node":
                self.stack.append(None)
        if tag == "article":
            image_id = a["data-image-id"] or ""
            ancestors = [s for s in self.stack[:-1] if s]
            self.cards[image_id] = {
                "status": a["data-status"],
                "classes": a["class"],
                "img": None,
                "imgs": [],
                "role": a.get("data-role"),
                "ancestors": ancestors,
            }
            self.stack[-1] = image_id
            self.current = image_id
        if tag == "img":
            self.imgs.append(a["src"] or "")
            if self.current:
                self.cards[self.current]["imgs"].append(a["src"])
                if self.cards[self.current]["img"] is None:
                    self.cards[self.current]["img"] = a["src"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "article":
            self.current = None
        if tag == "li" and self.depth.pop() == "node":
            self.stack.pop()


def sample_report(out: Path) -> Path:
    """Write the report of the sample manifest into `out`."""
    return write_report(out, sample_manifest(out), RUN, ROWS)


def parse(path: Path) -> Cards:
    parser = Cards()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def large_manifest(out: Path, rows: int, *, size: tuple[int, int] = (48, 36)) -> pd.DataFrame:
    """`rows` rows x 2 matrix values x (generate 2 -> remix -> upscale): 12 images a row.

    The files are small and their recorded size is their real size, so no thumbnail is
    needed: the page itself is what is measured.
    """
    colours = list(STEP_COLOURS.values())
    entries = []
    for row in range(rows):
        key = f"SKU-{row:04d}"
        for ratio in ("16x9", "1x1"):
            for i in range(2):
                ids = [f"{key}-{ratio}-{step}{i}" for step in ("g", "r", "u")]
                chain = [("hero", "generate", None), ("variant", "remix", ids[0]), ("big", "upscale", ids[1])]
                for n, (step, op, parent) in enumerate(chain):
                    e = entry(row, key, step, op, ids[n], parent, i, matrix=json.dumps({"ratio": ratio}))
                    e.update(file=f"{key}/{ratio}/{ids[n]}.png", width=size[0], height=size[1])
                    entries.append(e)
    img = Image.new("RGB", size)
    for n, e in enumerate(entries):
        img.paste(colours[n % 3], (0, 0, *size))
        path = out / e["file"]
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(path)
    return pd.DataFrame(entries, columns=COLUMNS).astype(DTYPES)
