"""Planning an export without writing: one job per (image, size), named, checked all at once."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from PIL import Image

from .. import __version__
from ..errors import Problem
from . import imaging, names, target
from .presets import Target

_ROTATED = (5, 6, 7, 8)  # EXIF orientations that swap width and height


@dataclass(frozen=True)
class Delivered:
    """One exported file, as delivery.csv lists it."""

    file: str
    image_id: str
    row_key: str
    step_id: str
    preset: str
    width: int
    height: int
    format: str
    fit: str
    bytes: int
    sha256: str
    source_file: str
    source_sha256: str
    seed: int | None
    written: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class Job:
    """One file to export: which source, at which size, under which name."""

    source: Path
    row: dict[str, Any] = field(repr=False)
    name: str
    width: int
    height: int
    preset: str
    settings: dict[str, Any] = field(repr=False)
    note: imaging.Note = field(repr=False)

    @property
    def what(self) -> str:
        """How messages name this job: image id and size."""
        return f"image {self.row.get('image_id')} {self.width}x{self.height}"

    def delivered(self, sha256: str, size: int, source_sha256: str, written: bool) -> Delivered:
        """The delivery.csv line of this job's file."""
        r = self.row
        return Delivered(
            self.name,
            str(r.get("image_id") or ""),
            str(r.get("row_key") or ""),
            str(r.get("step_id") or ""),
            self.preset,
            self.width,
            self.height,
            self.settings["format"],
            self.settings["fit"],
            size,
            sha256,
            str(r.get("file") or ""),
            source_sha256,
            r.get("seed"),
            written,
        )


def note_for(row: dict[str, Any]) -> imaging.Note:
    """The provenance note an exported file carries: recipe, step, row and seed."""
    recipe = PurePosixPath(str(row.get("recipe") or "?").replace("\\", "/")).name  # no local paths
    desc = (
        f"ideopipe export of image {row.get('image_id')}: recipe {recipe}, "
        f"step {row.get('step_id')}, row {row.get('row_key')}, seed {row.get('seed')}"
    )
    return imaging.Note(software=f"ideopipe {__version__}", description=desc)


def plan_jobs(
    out: Path,
    dest: Path,
    rows: list[dict[str, Any]],
    targets: list[Target],
    template: str,
    settings: dict[str, Any],
) -> tuple[list[Job], list[Problem]]:
    """Every job, and every problem (sources, names, clashes, target paths) found on the way."""
    problems: list[Problem] = []
    refused: dict[str, list[str]] = {}
    jobs: list[Job] = []
    sources: set[Path] = set()
    ext = imaging.EXTENSIONS[settings["format"]]
    for row in rows:
        found = _source(out, row)
        if isinstance(found, Problem):
            problems.append(found)
            continue
        source, (sw, sh) = found
        sources.add(source.resolve())
        for t in targets:
            width, height = (sw, sh) if t.original else (t.width, t.height)
            context = {k: ("" if v is None else v) for k, v in row.items()}
            context.update(
                width=width,
                height=height,
                ext=ext,
                preset=t.preset or f"{width}x{height}",
                format=settings["format"],
                fit=settings["fit"],
                source_width=sw,
                source_height=sh,
            )
            what = f"image {row.get('image_id')} {width}x{height}"
            try:
                name = names.sanitize(names.render(template, context))
            except names.NameRefused as exc:
                refused.setdefault(str(exc), []).append(what)
                continue
            jobs.append(Job(source, row, name, width, height, t.preset, settings, note_for(row)))
    for reason, whats in refused.items():  # one line per reason, not one per file
        more = f" (and {len(whats) - 1} more)" if len(whats) > 1 else ""
        problems.append(Problem(f"{whats[0]}{more}: the name {reason}", path="--name"))
    problems += names.clashes((j.name, j.what) for j in jobs)
    problems += _path_problems(out, dest, jobs, sources)
    return jobs, problems


def _path_problems(out: Path, dest: Path, jobs: list[Job], sources: set[Path]) -> list[Problem]:
    """Symlinks or non-folders on the way, and names reaching into the run's own files."""
    problems = []
    run, root = out.resolve(), dest.resolve()
    for job in jobs:
        why = target.check_path(dest, job.name)
        final = (dest / job.name).resolve()
        if why:
            problems.append(Problem(why, file=str(dest), path="--to"))
        elif final in sources or (final.is_relative_to(run) and not root.is_relative_to(run)):
            message = f"{job.name!r} would write into the run's own files ({out})"
            problems.append(Problem(message, file=str(dest), path="--name"))
    return problems


def _source(out: Path, row: dict[str, Any]) -> tuple[Path, tuple[int, int]] | Problem:
    """The source image of a manifest row and its upright size, or why it is unusable."""
    rel = str(row.get("file") or "")
    where = f"image {row.get('image_id')}"
    pure = PurePosixPath(rel.replace("\\", "/"))
    if not rel or pure.is_absolute() or ".." in pure.parts:
        return Problem(f"{where}: file {rel!r} is not a path inside the run folder", file=str(out))
    path = out / pure
    try:
        inside = path.resolve().is_relative_to(out.resolve())
    except OSError:
        inside = False
    if not inside:
        return Problem(f"{where}: {rel!r} leads outside the run folder", file=str(out))
    if not path.is_file():
        return Problem(
            f"{where}: {rel!r} is missing",
            file=str(out),
            hint="the manifest lists it as a good image; was it moved or deleted?",
        )
    try:
        with Image.open(path) as im:
            size = im.size
            if _orientation(im.info.get("exif")) in _ROTATED:
                size = (size[1], size[0])
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        return Problem(f"{where}: {rel!r} is not a readable image ({exc})", file=str(out))
    return path, size


def _orientation(raw: Any) -> int | None:
    """The EXIF orientation read at open time, without decoding the pixels."""
    if not isinstance(raw, bytes | bytearray):
        return None
    exif = Image.Exif()
    try:
        exif.load(bytes(raw))
    except (OSError, ValueError, SyntaxError, struct.error):
        return None
    value = exif.get(0x0112)
    return value if isinstance(value, int) else None
