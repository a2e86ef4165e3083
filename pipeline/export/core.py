"""`export`: channel-ready copies of a run's good images, at exact sizes, with a delivery.csv."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, get_args

from PIL import ImageColor

from ..errors import Problem, RecipeError
from . import imaging, names, presets, selection, target
from .defaults import DEFAULT_TEMPLATE
from .errors import ExportError
from .jobs import Delivered, Job, plan_jobs
from .render import Outcome, render_source

DELIVERY_COLUMNS = (
    "file",
    "image_id",
    "row_key",
    "step_id",
    "preset",
    "width",
    "height",
    "format",
    "fit",
    "bytes",
    "sha256",
    "source_file",
    "source_sha256",
    "seed",
)
T = TypeVar("T")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class ExportResult:
    """What an export wrote: every file, how many changed, and where the lists are."""

    to: Path
    files: list[Delivered]
    delivery_csv: Path
    zip: Path | None = None
    stale: list[str] = field(default_factory=list)
    meta_written: int = 0

    @property
    def written(self) -> int:
        """Image files written (new or changed) by this export."""
        return sum(f.written for f in self.files)

    @property
    def unchanged(self) -> int:
        """Image files already up to date, left untouched."""
        return len(self.files) - self.written

    @property
    def changed(self) -> bool:
        """False when the export found everything up to date and rewrote nothing."""
        return bool(self.written or self.meta_written)


def export(
    out_dir: str | Path,
    to: str | Path,
    *,
    only: str = "all",
    sizes: str | Sequence[str] = "",
    fit: str = "cover",
    fmt: str = "png",
    quality: int = 90,
    name: str = DEFAULT_TEMPLATE,
    zip: bool = False,
    presets_file: str | Path | None = None,
    background: str = "#ffffff",
    steps: Sequence[str] = (),
) -> ExportResult:
    """Export a run's good images to `to`; ExportError (exit 2) lists every problem before any write."""
    out, dest = Path(out_dir), Path(to)
    problems: list[Problem] = []
    bg = _gather(problems, _options, fit, fmt, quality, background)
    table = _gather(problems, presets.load_presets, presets_file)
    targets = _gather(problems, presets.parse_targets, sizes, table) if table else None
    only_filter = _gather(problems, selection.Only.parse, only)
    problems += filter(None, [names.check_template(name)])
    frame = _gather(problems, selection.load, out)
    rows = (
        _gather(problems, selection.select, frame, only_filter or selection.Only("all"), steps)
        if frame is not None
        else None
    )
    if rows == [] and only_filter:
        steps_note = f" and --step {', '.join(steps)}" if steps else ""
        message = f"no image to export: no good image of the manifest matches --only {only}{steps_note}"
        problems.append(Problem(message, file=str(out)))
    problems += target.check_root(dest, out)
    if problems or not (rows and targets and bg):
        raise ExportError(problems)
    settings = {"fit": fit, "format": fmt, "quality": quality, "rgba": bg}
    jobs, problems = plan_jobs(out, dest, rows, targets, name, settings)
    if problems:
        raise ExportError(problems)
    return _write(dest, jobs, zip)


def _gather(problems: list[Problem], fn: Callable[..., T], *args: Any) -> T | None:
    """fn(*args), or None with its problems added to `problems` (to report them all at once)."""
    try:
        return fn(*args)
    except (ExportError, RecipeError) as exc:
        problems += exc.problems
        return None


def _options(fit: str, fmt: str, quality: int, background: str) -> imaging.RGBA:
    problems = []
    if fit not in get_args(imaging.Fit):
        problems.append(Problem(f"{fit!r}: expected cover or contain", path="--fit"))
    if fmt not in get_args(imaging.Format):
        problems.append(Problem(f"{fmt!r}: expected png, jpeg or webp", path="--format"))
    if not isinstance(quality, int) or not 1 <= quality <= 100:
        problems.append(Problem(f"{quality!r}: expected a number from 1 to 100", path="--quality"))
    rgba: imaging.RGBA = (255, 255, 255, 255)
    try:
        c = ImageColor.getrgb(background)
        rgba = (c[0], c[1], c[2], c[3] if len(c) == 4 else 255)
    except ValueError:
        problems.append(
            Problem(
                f"{background!r} is not a colour (e.g. '#ffffff', '#00000000' for transparent, 'white')",
                path="--background",
            )
        )
    if problems:
        raise ExportError(problems)
    return rgba


def _write(dest: Path, jobs: list[Job], want_zip: bool) -> ExportResult:
    created = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    old = target.read_index(dest)
    groups: dict[Path, list[Job]] = {}
    for job in jobs:
        groups.setdefault(job.source, []).append(job)
    outcomes: list[Outcome] = []
    failure: BaseException | None = None
    # Pillow releases the GIL while it resizes and encodes: one worker per core
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        futures = [pool.submit(render_source, dest, src, group, old) for src, group in groups.items()]
        for future in futures:
            try:
                outcomes.append(future.result())
            except BaseException as exc:
                failure = failure or exc
    problems = [o.problem for o in outcomes if o.problem]
    if failure or problems:
        _abandon(outcomes, dest, created)
        if failure:
            raise failure
        raise ExportError([p for p in problems if p])
    for outcome in outcomes:
        for tmp, final in outcome.staged:
            target.commit(tmp, final)
    done = sorted((d for o in outcomes for d, _ in o.files), key=lambda d: d.file)
    index = {d.file: {"key": key, "sha256": d.sha256} for o in outcomes for d, key in o.files}
    stale = sorted(n for n in old if n not in index and (dest / n).is_file())
    # files of earlier exports stay in the index (not in delivery.csv) until they are deleted
    kept = {**{n: old[n] for n in stale}, **index}
    meta = int(target.write_if_changed(dest / target.INDEX, target.index_bytes(kept)))
    csv_path = dest / "delivery.csv"
    meta += target.write_if_changed(csv_path, delivery_csv(done))
    zip_path = None
    if want_zip:
        zip_path = dest / "delivery.zip"
        meta += target.write_zip(dest, zip_path, [d.file for d in done])
    if not want_zip and (dest / "delivery.zip").is_file():
        stale.append("delivery.zip")  # from an earlier --zip: it no longer matches delivery.csv
    return ExportResult(dest, done, csv_path, zip_path, stale, meta)


def _abandon(outcomes: list[Outcome], dest: Path, created: bool) -> None:
    for outcome in outcomes:
        outcome.discard()
    if created:
        for folder in sorted((p for p in dest.rglob("*") if p.is_dir()), reverse=True):
            _rmdir(folder)
        _rmdir(dest)


def _rmdir(folder: Path) -> None:
    try:
        os.rmdir(folder)
    except OSError:
        pass


def delivery_csv(files: list[Delivered]) -> bytes:
    """delivery.csv: one line per exported file, sorted by file name."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(DELIVERY_COLUMNS)
    for d in files:
        # file names are safe by construction and stay verbatim; other text is neutralised
        writer.writerow([_cell(getattr(d, c)) if c != "file" else d.file for c in DELIVERY_COLUMNS])
    return buf.getvalue().encode("utf-8")


def _cell(value: Any) -> Any:
    """Keep spreadsheets from running a cell as a formula."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value
    return value
