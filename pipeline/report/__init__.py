"""The contact sheet: one HTML page showing every image of a run, opened straight from disk.

CSS and JS are inline and a Content-Security-Policy forbids anything else, so the page
needs no server and no network. By default it links to its thumbnails (cached under
`.ideopipe/thumbs/`) and to the full images by relative path; `bundle=True` embeds the
thumbnails as data: URIs instead, so the one file can be mailed alone.

The rooms: `entries` reads the manifest, `thumbs` makes thumbnails, `sources` finds the
local photos a chain starts from, `cards` and `lineage` arrange the sheet, `summary`
counts (money from `pipeline.money`), `render` draws, `output` writes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..money import totals
from ..status import Status
from . import summary
from .bundle import Linker
from .entries import Entry, entries, normalise, step_order
from .lineage import Pictures, sections
from .output import write_public
from .render import Page, render
from .sources import Inputs, from_journal, from_plan
from .thumbs import THUMB_DIR, THUMB_MAX, Size, build, save_thumbnail, thumb_path, thumbnail_image

__all__ = [
    "REPORT_NAME",
    "THUMB_DIR",
    "THUMB_MAX",
    "inputs_of_plan",
    "save_thumbnail",
    "thumb_path",
    "thumbnail_image",
    "write_report",
]

REPORT_NAME = "report.html"
inputs_of_plan = from_plan


def write_report(
    out_dir: Path,
    manifest: pd.DataFrame,
    run: Mapping[str, Any],
    rows: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    bundle: bool = False,
    inputs: Inputs | None = None,
) -> Path:
    """Write `<out_dir>/report.html`, a contact sheet of the run, and return its path.

    `bundle=True` makes it one self-contained file (thumbnails embedded). `inputs` maps
    task ids to their local photo and mask files (`inputs_of_plan(plan)`); when None they
    are read from the journal in `out_dir`, if there is one.
    """
    out_dir = Path(out_dir)
    frame = normalise(manifest)
    found = entries(frame)
    order = step_order(run, found)
    run_id = str(run.get("run_id") or (found[0].text("run_id") if found else ""))
    simulated = is_simulated(run)
    if inputs is None:
        inputs = from_journal(out_dir, (e.text("task_id") for e in found if e.text("task_id")))
    pictures = _pictures(out_dir, found, inputs, Linker(out_dir, bundle))
    html = render(
        Page(
            run=run,
            entries=found,
            steps=order,
            sections=sections(found, order, rows or {}, pictures),
            summaries=summary.steps(frame, found, order, run_id, simulated),
            money=totals(frame, run_id, simulated=simulated),
            bundle=bundle,
        )
    )
    target = out_dir / REPORT_NAME
    write_public(target, html.encode("utf-8"))
    return target


def is_simulated(run: Mapping[str, Any]) -> bool:
    """Whether the run went to the emulator, so no money really changed hands."""
    info = run.get("info")
    if isinstance(info, str):
        try:
            info = json.loads(info)
        except ValueError:
            info = None
    recorded = run.get("simulated")
    if recorded is None and isinstance(info, Mapping):
        recorded = info.get("simulated")
    return bool(recorded) or str(run.get("provider") or "") == "emulator"


def _pictures(out_dir: Path, found: Sequence[Entry], inputs: Inputs, links: Linker) -> Pictures:
    """Make the thumbnails that are missing or stale, for entries and for source files."""
    small: dict[int, tuple[Path, Size]] = {}
    jobs: dict[int, tuple[Path, Path]] = {}
    used: set[str] = set()
    for e in found:
        roles = inputs.get(e.text("task_id")) if e.text("task_id") else None
        for paths in (roles or {}).values():
            used.update(paths)
        file = e.text("file")
        if e.status != Status.OK or not file or e.is_text:
            continue
        source = out_dir / file
        size = _recorded_size(e)
        if size and max(size) <= THUMB_MAX and source.is_file():
            small[e.position] = (source, size)  # already thumbnail-sized
        elif source.is_file():
            jobs[e.position] = (source, thumb_path(out_dir, e.text("image_id"), file))
    source_jobs = {p: (Path(p), thumb_path(out_dir, "source", p)) for p in sorted(used)}
    sizes = build([*jobs.values(), *source_jobs.values()])

    def made(job: tuple[Path, Path]) -> tuple[Path, Size] | None:
        size = sizes.get(job)
        return None if size is None else (job[1], size)

    thumbs = dict(small)
    for position, job in jobs.items():
        if (picture := made(job)) is not None:
            thumbs[position] = picture
    return Pictures(
        out_dir=out_dir,
        entries=thumbs,
        inputs=inputs,
        links=links,
        sources={p: made(job) for p, job in source_jobs.items()},
    )


def _recorded_size(e: Entry) -> Size | None:
    """The image's width and height as the manifest records them, if it does."""
    try:
        width, height = int(e.get("width")), int(e.get("height"))
    except (TypeError, ValueError):
        return None
    return (width, height) if width > 0 and height > 0 else None
