"""The page itself: the Jinja template, the inline stylesheet and script, the header facts."""

from __future__ import annotations

import base64
import functools
import hashlib
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from ..money import Money, usd
from . import fmt
from .entries import Entry, label, status_order
from .lineage import RowSection
from .summary import StepSummary, chart, count, meter

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
COMPACT_FROM = 300  # entries: a page this big opens in the compact grid
RUN_STATUS_TONE = {"ok": "good", "failed": "bad", "interrupted": "warn", "stopped": "warn"}


@dataclass(frozen=True)
class Page:
    """Everything the template draws, already computed."""

    run: Mapping[str, Any]
    entries: Sequence[Entry]
    steps: Sequence[str]
    sections: Sequence[RowSection]
    summaries: Sequence[StepSummary]
    money: Money
    bundle: bool


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["usd"] = fmt.usd
    env.filters["money"] = usd
    return env


@functools.lru_cache(maxsize=1)
def _assets() -> tuple[str, str, str]:
    """The inline stylesheet and script, and the script's SHA-256 (base64) for the CSP."""
    css = (TEMPLATES / "report.css").read_text(encoding="utf-8")
    js = (TEMPLATES / "report.js").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(js.encode("utf-8")).digest()).decode("ascii")
    return css, js, digest


def render(page: Page) -> str:
    """The HTML of the contact sheet."""
    run, entries = page.run, page.entries
    statuses = Counter(e.status for e in entries)
    css, js, script_sha256 = _assets()
    counts = count(entries)
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            header=_header(run, entries),
            counts=counts,
            rows=len(page.sections),
            money=page.money,
            meter=meter(run, page.money),
            summaries=page.summaries,
            chart=chart(page.summaries),
            steps=[(s, sum(1 for e in entries if e.text("step_id") == s)) for s in page.steps],
            statuses=[(s, label(s)[0], statuses[s]) for s in status_order(statuses)],
            sections=page.sections,
            compact=counts.entries >= COMPACT_FROM,
            bundle=page.bundle,
            css=css,
            js=js,
            script_sha256=script_sha256,
            generated=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        )
    )


def _header(run: Mapping[str, Any], entries: Sequence[Entry]) -> dict[str, Any]:
    first = entries[0] if entries else None
    run_status = str(run.get("status") or "")
    return {
        "title": str(run.get("recipe_name") or (first.text("recipe") if first else "") or "Run"),
        "description": fmt.plain(run.get("description")),
        "run_id": fmt.plain(run.get("run_id")) or (first.text("run_id") if first else ""),
        "provider": fmt.plain(run.get("provider")) or (first.text("provider") if first else ""),
        "started": fmt.when(run.get("started_at")),
        "finished": fmt.when(run.get("finished_at")),
        "duration": fmt.duration(
            fmt.as_float(run.get("duration_s")) or fmt.elapsed(run.get("started_at"), run.get("finished_at"))
        ),
        "status": run_status,
        "tone": RUN_STATUS_TONE.get(run_status, "warn" if run_status else "muted"),
        "recipe_file": first.text("recipe") if first else "",
        "recipe_sha": first.text("recipe_sha256")[:12] if first else "",
    }
