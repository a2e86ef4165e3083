"""The contact sheet: one self-contained HTML page showing every image of a run.

The page is written next to the outputs and links to them by relative path, so it
opens from the file system with no server and no network: CSS and JS are inline,
and a Content-Security-Policy forbids anything else. Thumbnails are cached under
`.ideopipe/thumbs/` and rebuilt only when missing or older than their source.

Each row of the input gets a section; inside it, every chain is drawn as a lineage
tree (generate → remix → upscale) from `image_id` / `parent_image_id`. Anything
that is not a readable image on disk is drawn as a labelled placeholder.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import json
import math
import os
import re
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import jinja2
import numpy as np
import pandas as pd
from PIL import Image, ImageOps

from .files import write_atomic

__all__ = ["REPORT_NAME", "THUMB_DIR", "write_report"]

REPORT_NAME = "report.html"
THUMB_DIR = Path(".ideopipe") / "thumbs"
THUMB_MAX = 320  # pixels on the long side
THUMB_QUALITY = 80
PROMPT_FOLD = 140  # prompts longer than this many characters are folded into <details>
MAX_DEPTH = 24  # deeper lineage is drawn as a new root, to keep the page (and Jinja) shallow

REQUIRED_COLUMNS = ("run_id", "row_key", "step_id", "image_id", "status")
IMAGE_STATUSES = frozenset({"ok", "cached"})
# Statuses where a request ran, so a missing cost means the price is unknown.
PRICED_STATUSES = frozenset({"ok", "unsafe", "in_doubt", "download_expired"})
FAILED_STATUSES = frozenset({"failed", "unsafe", "download_expired"})
SKIPPED_STATUSES = frozenset({"skipped_budget", "skipped_parent"})

# status -> (label, icon, what it means when the manifest gives no error text)
STATUSES: dict[str, tuple[str, str, str]] = {
    "ok": ("OK", "✓", ""),
    "cached": ("Cached", "✓", "Reused from an earlier run."),
    "failed": ("Failed", "×", "The request failed."),
    "unsafe": ("Unsafe", "!", "The provider flagged this image as unsafe."),
    "in_doubt": ("In doubt", "?",
                 "Sent, but no answer came back: it may have run and been billed."),
    "download_expired": ("Download expired", "!",
                         "The result URL expired before the image was saved."),
    "skipped_budget": ("Skipped: budget", "–", "Not sent: the budget was reached."),
    "skipped_parent": ("Skipped: no input", "–", "Not sent: its input image failed."),
}
MISSING_FILE = ("File missing", "?", "The manifest lists this image but its file is not on disk.")
UNREADABLE_FILE = ("Unreadable", "?", "The file exists but is not an image Pillow can read.")
RUN_STATUS_TONE = {"ok": "good", "failed": "bad", "interrupted": "warn", "stopped": "warn"}

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,100}")


@dataclass
class Card:
    """One manifest entry as drawn on the sheet, with the entries derived from it."""

    image_id: str
    step_id: str
    op: str
    status: str
    label: str
    kind: Literal["image", "text", "placeholder"]
    icon: str = ""
    note: str = ""  # the error, or what the placeholder means
    href: str | None = None  # the full file, relative to the report
    thumb: str | None = None
    thumb_size: tuple[int, int] | None = None
    description: str = ""
    prompt: str = ""
    prompt_label: str = "Prompt"
    facts: list[str] = field(default_factory=list)
    matrix: list[tuple[str, str]] = field(default_factory=list)
    origin: str = ""  # a parent that is not drawn above this card
    search: str = ""
    children: list[Card] = field(default_factory=list)

    @property
    def prompt_folded(self) -> bool:
        """Whether the prompt is long enough to sit in a <details>."""
        return len(self.prompt) > PROMPT_FOLD

    @property
    def prompt_head(self) -> str:
        """The start of a folded prompt, shown as its summary."""
        return self.prompt[:PROMPT_FOLD].rsplit(" ", 1)[0] + "…"


@dataclass(frozen=True)
class RowSection:
    """One input row: its values and the lineage trees of its entries."""

    key: str
    index: int | None
    values: list[tuple[str, str]]
    counts: list[tuple[str, str, int]]  # (status, label, n)
    roots: list[Card]
    search: str


@dataclass(frozen=True)
class StepSummary:
    """Totals for one step of the recipe."""

    step_id: str
    op: str
    entries: int
    ok: int
    failed: int
    in_doubt: int
    skipped: int
    cost: float
    unknown_cost: int  # entries that ran but have no price


@dataclass(frozen=True)
class _Entry:
    """A manifest record, cleaned of NA, with its position in the manifest."""

    position: int
    values: Mapping[str, Any]

    def text(self, column: str) -> str:
        value = self.values.get(column)
        return "" if value is None else str(value)

    def get(self, column: str) -> Any:
        return self.values.get(column)


def write_report(out_dir: Path, manifest: pd.DataFrame, run: Mapping[str, Any],
                 rows: Mapping[str, Mapping[str, Any]] | None = None) -> Path:
    """Write `<out_dir>/report.html`, a contact sheet of the run, and return its path."""
    out_dir = Path(out_dir)
    entries = _entries(manifest)
    steps = _step_order(run, entries)
    thumbs = _thumbnails(out_dir, entries)
    sections = _sections(out_dir, entries, steps, rows or {}, thumbs)
    summaries = [_summarise(step, [e for e in entries if e.text("step_id") == step])
                 for step in steps]
    html = _render(run, entries, steps, sections, summaries)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / REPORT_NAME
    write_atomic(target, html.encode("utf-8"))
    return target


# ---------------------------------------------------------------- manifest


def _clean(value: Any) -> Any:
    """None for every flavour of missing (None, NaN, NA, NaT); plain Python scalars."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    return value


def _entries(manifest: pd.DataFrame) -> list[_Entry]:
    missing = [c for c in REQUIRED_COLUMNS if c not in manifest.columns]
    if missing:
        raise ValueError(f"manifest lacks required column(s): {', '.join(missing)}")
    return [_Entry(i, {str(k): _clean(v) for k, v in record.items()})
            for i, record in enumerate(manifest.to_dict("records"))]


def _step_order(run: Mapping[str, Any], entries: Sequence[_Entry]) -> list[str]:
    """The run's declared step order, then any other step in order of appearance."""
    declared = [str(s) for s in run.get("steps") or ()]
    seen = [e.text("step_id") for e in entries]
    present = set(seen)
    ordered = [s for s in dict.fromkeys(declared) if s in present]
    return ordered + [s for s in dict.fromkeys(seen) if s not in ordered]


# -------------------------------------------------------------- thumbnails


def _thumb_name(image_id: str, file: str, duplicate: bool) -> str:
    if _SAFE_NAME.fullmatch(image_id) and not duplicate:
        return image_id + ".jpg"
    digest = hashlib.sha256(f"{image_id}\0{file}".encode()).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", image_id)[:60].strip("._") or "image"
    return f"{slug}-{digest}.jpg"


def _thumbnails(out_dir: Path, entries: Sequence[_Entry]) -> dict[int, tuple[str, tuple[int, int]]]:
    """Build missing or stale thumbnails; map entry position -> (relative URL, size)."""
    ids = Counter(e.text("image_id") for e in entries)
    jobs: dict[int, tuple[Path, Path]] = {}
    small: dict[int, tuple[str, tuple[int, int]]] = {}
    for e in entries:
        file = e.text("file")
        if e.text("status") not in IMAGE_STATUSES or not file or _is_text_entry(e):
            continue
        source = out_dir / file
        size = _recorded_size(e)
        if size and max(size) <= THUMB_MAX and source.is_file():
            small[e.position] = (quote(Path(file).as_posix()), size)  # already thumbnail-sized
        elif source.is_file():
            name = _thumb_name(e.text("image_id"), file, ids[e.text("image_id")] > 1)
            jobs[e.position] = (source, out_dir / THUMB_DIR / name)
    if not jobs:
        return small
    (out_dir / THUMB_DIR).mkdir(parents=True, exist_ok=True)
    unique = sorted(set(jobs.values()))
    workers = min(8, os.cpu_count() or 1, len(unique))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        sizes = dict(zip(unique, pool.map(lambda job: _thumbnail(*job), unique), strict=True))
    result = dict(small)
    for position, job in jobs.items():
        size = sizes[job]
        if size is not None:
            rel = job[1].relative_to(out_dir).as_posix()
            result[position] = (quote(rel), size)
    return result


def _recorded_size(e: _Entry) -> tuple[int, int] | None:
    """The image's width and height as the manifest records them, if it does."""
    try:
        width, height = int(e.get("width")), int(e.get("height"))
    except (TypeError, ValueError):
        return None
    return (width, height) if width > 0 and height > 0 else None


def _thumbnail(source: Path, dest: Path) -> tuple[int, int] | None:
    """Make `dest` from `source` unless it is fresh; its size, or None if unreadable."""
    try:
        if dest.is_file() and dest.stat().st_mtime >= source.stat().st_mtime:
            with Image.open(dest) as thumb:
                return thumb.size
        with Image.open(source) as img:
            img.draft("RGB", (THUMB_MAX, THUMB_MAX))  # cheap JPEG downscale while decoding
            small = ImageOps.exif_transpose(img)
            if small.mode in ("RGBA", "LA", "PA", "P") or "transparency" in small.info:
                rgba = small.convert("RGBA")
                small = Image.new("RGB", rgba.size, "white")
                small.paste(rgba, mask=rgba.getchannel("A"))
            elif small.mode != "RGB":
                small = small.convert("RGB")
            # A box-filter reduce to 1.5x, then bicubic: as sharp as Lanczos, 3-5x faster.
            small.thumbnail((THUMB_MAX, THUMB_MAX), Image.Resampling.BICUBIC, reducing_gap=1.5)
            buffer = _jpeg_bytes(small)
        write_atomic(dest, buffer)
        return small.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def _jpeg_bytes(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, "JPEG", quality=THUMB_QUALITY, optimize=True, progressive=True)
    return out.getvalue()


# ------------------------------------------------------------------- cards


def _is_text_entry(e: _Entry) -> bool:
    return e.text("op") == "describe" or (not e.text("file") and bool(e.text("description")))


def _card(out_dir: Path, e: _Entry, thumbs: Mapping[int, tuple[str, tuple[int, int]]]) -> Card:
    status = e.text("status")
    label, icon, meaning = STATUSES.get(status, (status.replace("_", " ").capitalize(), "?", ""))
    file = e.text("file")
    href = None
    if file and (out_dir / file).is_file():
        href = quote(Path(os.path.relpath(out_dir / file, out_dir)).as_posix())
    card = Card(image_id=e.text("image_id"), step_id=e.text("step_id"), op=e.text("op"),
                status=status, label=label, kind="placeholder", icon=icon, href=href,
                note=e.text("error") or meaning)
    if status in IMAGE_STATUSES:
        if _is_text_entry(e):
            card.kind = "text"
            card.description = e.text("description")
        elif e.position in thumbs:
            card.kind = "image"
            card.thumb, card.thumb_size = thumbs[e.position]
        else:
            card.label, card.icon, card.note = UNREADABLE_FILE if href else MISSING_FILE
            if file:
                card.note += f" ({file})"
    elif _is_text_entry(e) and e.text("description"):
        card.description = e.text("description")

    api_prompt, prompt = e.text("api_prompt"), e.text("prompt")
    card.prompt = api_prompt or prompt
    if api_prompt and prompt and api_prompt != prompt:
        card.prompt_label = "Prompt sent (magic prompt)"
    card.facts = _facts(e)
    card.matrix = _matrix(e.get("matrix"))
    card.search = " ".join(
        t for t in (prompt, api_prompt, e.text("description"), card.image_id) if t).lower()
    return card


def _facts(e: _Entry) -> list[str]:
    facts = []
    index = e.get("image_index")
    if index is not None:
        facts.append(f"#{_number(index)}")
    seed = e.get("seed")
    if seed is not None:
        facts.append(f"seed {_number(seed)}")
    model = " ".join(t for t in (e.text("model"), e.text("rendering_speed").capitalize()) if t)
    if model:
        facts.append(model)
    width, height = e.get("width"), e.get("height")
    if width is not None and height is not None:
        facts.append(f"{_number(width)}×{_number(height)}")
    elif e.text("resolution") or e.text("aspect_ratio"):
        facts.append(e.text("resolution") or e.text("aspect_ratio"))
    cost = e.get("cost_usd")
    if cost is not None:
        facts.append(_usd(cost))
    elif e.text("status") in PRICED_STATUSES:
        facts.append("price unknown")
    attempts = e.get("attempts")
    if isinstance(attempts, (int, float)) and attempts > 1:
        facts.append(f"{_number(attempts)} attempts")
    return facts


def _matrix(raw: Any) -> list[tuple[str, str]]:
    if raw is None or raw == "":
        return []
    value = raw
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except ValueError:
            return [("matrix", raw)]
    if isinstance(value, Mapping):
        return [(str(k), _plain(v)) for k, v in value.items()]
    return [] if not value else [("matrix", _plain(value))]


def _sections(out_dir: Path, entries: Sequence[_Entry], steps: Sequence[str],
              rows: Mapping[str, Mapping[str, Any]],
              thumbs: Mapping[int, tuple[str, tuple[int, int]]]) -> list[RowSection]:
    groups: dict[str, list[_Entry]] = defaultdict(list)
    for e in entries:
        groups[e.text("row_key")].append(e)
    rank = {s: i for i, s in enumerate(steps)}

    def order(e: _Entry) -> tuple[int, float, int]:
        index = e.get("image_index")
        number = float(index) if isinstance(index, (int, float)) else math.inf
        return rank.get(e.text("step_id"), len(rank)), number, e.position

    def row_order(key: str) -> tuple[float, int]:
        indexes = [e.get("row_index") for e in groups[key]]
        numbers = [float(i) for i in indexes if isinstance(i, (int, float))]
        return min(numbers, default=math.inf), groups[key][0].position

    sections = []
    for key in sorted(groups, key=row_order):
        group = sorted(groups[key], key=order)
        cards = {e.position: _card(out_dir, e, thumbs) for e in group}
        roots = _forest(group, cards)
        values = [(str(k), _plain(v)) for k, v in (rows.get(key) or {}).items()]
        counts = Counter(e.text("status") for e in group)
        index = group[0].get("row_index")
        sections.append(RowSection(
            key=key,
            index=int(index) if isinstance(index, (int, float)) else None,
            values=values,
            counts=[(s, STATUSES.get(s, (s,))[0], counts[s]) for s in _status_order(counts)],
            roots=roots,
            search=" ".join([key, *(v for _, v in values)]).lower(),
        ))
    return sections


def _forest(group: Sequence[_Entry], cards: Mapping[int, Card]) -> list[Card]:
    """Nest each card under its parent's; a missing parent, a cycle or MAX_DEPTH makes a root."""
    first: dict[str, int] = {}
    for e in group:
        first.setdefault(e.text("image_id"), e.position)
    kids: dict[int, list[int]] = defaultdict(list)
    has_parent: set[int] = set()
    for e in group:
        parent = first.get(e.text("parent_image_id"))
        if parent is not None and parent != e.position:
            kids[parent].append(e.position)
            has_parent.add(e.position)
        elif e.text("parent_image_id"):
            cards[e.position].origin = e.text("parent_image_id")
    placed: set[int] = set()

    def attach(position: int, depth: int) -> Card:
        placed.add(position)
        card = cards[position]
        if depth < MAX_DEPTH:
            card.children.extend(attach(child, depth + 1)
                                 for child in kids[position] if child not in placed)
        return card

    roots = [attach(e.position, 0) for e in group if e.position not in has_parent]
    for e in group:  # whatever a cycle or the depth cap left out
        if e.position not in placed:
            cards[e.position].origin = e.text("parent_image_id")
            roots.append(attach(e.position, 0))
    return roots


# ----------------------------------------------------------------- summary


def _summarise(step: str, entries: Sequence[_Entry]) -> StepSummary:
    statuses = Counter(e.text("status") for e in entries)
    costs = [e.get("cost_usd") for e in entries]
    return StepSummary(
        step_id=step,
        op=next((e.text("op") for e in entries if e.text("op")), ""),
        entries=len(entries),
        ok=sum(statuses[s] for s in IMAGE_STATUSES),
        failed=sum(statuses[s] for s in FAILED_STATUSES),
        in_doubt=statuses["in_doubt"],
        skipped=sum(statuses[s] for s in SKIPPED_STATUSES),
        cost=sum(float(c) for c in costs if c is not None),
        unknown_cost=sum(1 for e, c in zip(entries, costs, strict=True)
                         if c is None and e.text("status") in PRICED_STATUSES),
    )


def _status_order(counts: Mapping[str, int]) -> list[str]:
    known = [s for s in STATUSES if counts.get(s)]
    return known + sorted(s for s in counts if s not in STATUSES and counts[s])


def _chart(summaries: Sequence[StepSummary]) -> dict[str, Any]:
    """Geometry of the per-step cost bar chart (drawn as inline SVG by the template)."""
    top = max((s.cost for s in summaries), default=0.0)
    bar_x, bar_w, row_h = 132, 190, 26
    bars = []
    for i, s in enumerate(summaries):
        width = max(2.0, s.cost / top * bar_w) if s.cost > 0 else 0.0
        label = s.step_id if len(s.step_id) <= 18 else s.step_id[:17] + "…"
        value = _usd(s.cost) + (" +?" if s.unknown_cost else "")
        bars.append({"y": 8 + i * row_h, "width": round(width, 1), "label": label,
                     "title": s.step_id, "value": value})
    return {"bars": bars, "x": bar_x, "bar_w": bar_w, "width": bar_x + bar_w + 72,
            "height": 16 + len(summaries) * row_h}


def _budget(run: Mapping[str, Any], spent: float) -> dict[str, Any]:
    """Percentages for the spent / planned / budget meter."""
    planned = _float(_first(run, "planned_cost_usd", "planned_usd"))
    budget = _float(run.get("budget_usd"))
    scale = max(v for v in (spent, planned or 0.0, budget or 0.0, 1e-9))

    def pct(v: float | None) -> float | None:
        return None if v is None else round(min(100.0, v / scale * 100), 2)

    return {"spent": _usd(spent), "planned": _usd(planned) if planned is not None else None,
            "budget": _usd(budget) if budget is not None else None,
            "spent_pct": pct(spent), "planned_pct": pct(planned), "budget_pct": pct(budget),
            "over_budget": budget is not None and spent > budget}


# -------------------------------------------------------------- rendering


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
        autoescape=True, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["usd"] = _usd
    return env


@functools.lru_cache(maxsize=1)
def _assets() -> tuple[str, str, str]:
    """The inline stylesheet and script, and the script's SHA-256 (base64) for the CSP."""
    folder = Path(__file__).with_name("templates")
    css = (folder / "report.css").read_text(encoding="utf-8")
    js = (folder / "report.js").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(js.encode("utf-8")).digest()).decode("ascii")
    return css, js, digest


def _render(run: Mapping[str, Any], entries: Sequence[_Entry], steps: Sequence[str],
            sections: Sequence[RowSection], summaries: Sequence[StepSummary]) -> str:
    statuses = Counter(e.text("status") for e in entries)
    manifest_cost = sum(s.cost for s in summaries)
    spent = _float(run.get("spent_usd"))
    first = entries[0] if entries else None
    css, js, script_sha256 = _assets()
    run_status = str(run.get("status") or "")
    header = {
        "title": str(run.get("recipe_name") or (first.text("recipe") if first else "") or "Run"),
        "description": _plain(run.get("description")),
        "run_id": _plain(run.get("run_id")) or (first.text("run_id") if first else ""),
        "provider": _plain(run.get("provider")) or (first.text("provider") if first else ""),
        "started": _when(run.get("started_at")),
        "finished": _when(run.get("finished_at")),
        "duration": _duration(_float(run.get("duration_s"))
                              or _elapsed(run.get("started_at"), run.get("finished_at"))),
        "status": run_status,
        "tone": RUN_STATUS_TONE.get(run_status, "warn" if run_status else "muted"),
        "recipe_file": first.text("recipe") if first else "",
        "recipe_sha": first.text("recipe_sha256")[:12] if first else "",
    }
    totals = {
        "entries": len(entries),
        "rows": len(sections),
        "steps": len(steps),
        "ok": sum(statuses[s] for s in IMAGE_STATUSES),
        "cached": statuses["cached"],
        "failed": sum(statuses[s] for s in FAILED_STATUSES),
        "in_doubt": statuses["in_doubt"],
        "skipped": sum(statuses[s] for s in SKIPPED_STATUSES),
        "unknown_cost": sum(s.unknown_cost for s in summaries),
    }
    return _environment().get_template("report.html.j2").render(
        header=header, totals=totals,
        budget=_budget(run, spent if spent is not None else manifest_cost),
        summaries=summaries, chart=_chart(summaries), manifest_cost=manifest_cost,
        steps=[(s, sum(1 for e in entries if e.text("step_id") == s)) for s in steps],
        statuses=[(s, STATUSES.get(s, (s,))[0], statuses[s]) for s in _status_order(statuses)],
        sections=sections, css=css, js=js, script_sha256=script_sha256,
        generated=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    )


# ------------------------------------------------------------- formatting


def _plain(value: Any) -> str:
    """A value as display text; '' for missing."""
    value = _clean(value)
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _float(value: Any) -> float | None:
    value = _clean(value)
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _first(run: Mapping[str, Any], *keys: str) -> Any:
    """The first of `keys` that `run` has a value for."""
    return next((run[k] for k in keys if _clean(run.get(k)) is not None), None)


def _elapsed(start: Any, end: Any) -> float | None:
    """Seconds between two ISO timestamps, when both parse."""
    try:
        begun, ended = (datetime.fromisoformat(_plain(t).replace("Z", "+00:00"))
                        for t in (start, end))
        return (ended - begun).total_seconds()
    except (TypeError, ValueError):
        return None


def _usd(value: float | None) -> str:
    """$0.08, $0.025, $1,234.50; a dash when unknown."""
    if value is None:
        return "—"
    text = f"{value:,.3f}"
    if text.endswith("0"):
        text = text[:-1]
    return "$" + text


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s"


def _when(value: Any) -> str:
    """An ISO timestamp shown as '2025-11-21 15:41:03 UTC'; other text as given."""
    text = _plain(value)
    if not text:
        return ""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    offset = moment.utcoffset()
    zone = "UTC" if not offset else moment.strftime("UTC%z")
    return moment.strftime("%Y-%m-%d %H:%M:%S ") + zone
