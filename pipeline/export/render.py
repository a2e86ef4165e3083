"""Rendering one source image to all its sizes: decoded once, and only when something changed."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from ..errors import Problem
from . import imaging, target
from .jobs import Delivered, Job

KEY_VERSION = 1


@dataclass
class Outcome:
    """What one source image gave: its files (new ones staged as temp files) or a problem."""

    files: list[tuple[Delivered, str]] = field(default_factory=list)  # (line, index key)
    staged: list[tuple[Path, Path]] = field(default_factory=list)  # (temp file, final path)
    problem: Problem | None = None

    def discard(self) -> None:
        """Remove the temp files this source staged."""
        for tmp, _ in self.staged:
            target.discard(tmp)


def job_key(job: Job, source_sha256: str) -> str:
    """The identity of an exported file: its source bytes and every option that shapes it."""
    return _sha256_json(
        {
            "v": KEY_VERSION,
            "source_sha256": source_sha256,
            "width": job.width,
            "height": job.height,
            "note": [job.note.software, job.note.description],
            **job.settings,
        }
    )


def render_source(dest: Path, source: Path, jobs: list[Job], old: dict[str, dict[str, Any]]) -> Outcome:
    """Stage every changed file of one source image; unchanged ones (per the index and sha256) stay."""
    out = Outcome()
    try:
        _render(dest, source, jobs, old, out)
    except BaseException:
        out.discard()
        raise
    if out.problem:
        out.discard()
    return out


def _render(dest: Path, source: Path, jobs: list[Job], old: dict[str, dict[str, Any]], out: Outcome) -> None:
    source_sha = target.sha256_file(source) or ""
    image: Image.Image | None = None
    for job in jobs:
        key = job_key(job, source_sha)
        final = dest / job.name
        have = target.sha256_file(final)
        seen = old.get(job.name) or {}
        if have and seen.get("key") == key and seen.get("sha256") == have:
            out.files.append((job.delivered(have, final.stat().st_size, source_sha, written=False), key))
            continue
        settings = job.settings
        try:
            if image is None:
                image = imaging.open_srgb(str(source))
            fitted = imaging.fit(image, job.width, job.height, settings["fit"], settings["rgba"])
            data = imaging.encode(fitted, settings["format"], settings["quality"], settings["rgba"], job.note)
        except imaging.ImageProblem as exc:
            out.problem = Problem(f"{job.what}: {exc}", file=str(job.row.get("file")))
            return
        sha = hashlib.sha256(data).hexdigest()
        if have != sha:
            out.staged.append((target.stage(target.make_dirs(dest, job.name), data), final))
        out.files.append((job.delivered(sha, len(data), source_sha, written=have != sha), key))


def _sha256_json(value: Any) -> str:
    """sha256 of canonical JSON (sorted keys, no whitespace)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
