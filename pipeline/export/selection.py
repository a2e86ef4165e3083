"""Which manifest rows an export takes: good images, narrowed by review decisions and steps."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import Problem
from ..status import Status
from .errors import ExportError

#: statuses of a good image on disk ("cached" is how older manifests said ok)
GOOD = frozenset({Status.OK.value, "cached"})
_STARS = re.compile(r"^stars\s*>=\s*([1-5])$")


@dataclass(frozen=True)
class Only:
    """The `--only` filter: every good image, the approved ones, or those with enough stars."""

    kind: str  # all | approved | stars
    min_stars: int = 0

    @classmethod
    def parse(cls, text: str) -> Only:
        """'all', 'approved' or 'stars>=N' (N 1-5); ExportError otherwise."""
        text = text.strip()
        if text in ("all", "approved"):
            return cls(text)
        m = _STARS.match(text)
        if m:
            return cls("stars", int(m[1]))
        raise ExportError(
            [Problem(f"{text!r}: expected all, approved or stars>=N (N 1 to 5)", path="--only")]
        )


def load(out_dir: Path) -> pd.DataFrame:
    """The manifest of `out_dir`, or ExportError if there is none."""
    found = [out_dir / f"manifest.{ext}" for ext in ("csv", "parquet", "jsonl")]
    if not any(p.is_file() for p in found):
        raise ExportError(
            [
                Problem(
                    "no manifest.csv/.parquet/.jsonl here: is this the output directory of a run?",
                    file=str(out_dir),
                )
            ]
        )
    from .. import read_manifest  # the public reader, whichever module implements it

    try:
        return read_manifest(out_dir)
    except (ValueError, OSError, KeyError) as exc:
        raise ExportError([Problem(f"cannot read the manifest: {exc}", file=str(out_dir))]) from exc


def select(frame: pd.DataFrame, only: Only, steps: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The rows to export, as plain dicts (missing values as None), in manifest order."""
    problems = []
    for col in ("image_id", "status", "file"):
        if col not in frame.columns:
            problems.append(Problem(f"the manifest has no {col!r} column", path="manifest"))
    needed = {"approved": "review", "stars": "stars"}.get(only.kind)
    if needed and needed not in frame.columns:
        problems.append(
            Problem(
                f"--only {only.kind}{'>=' + str(only.min_stars) if only.min_stars else ''}"
                f": this manifest has no {needed!r} column (no review decisions "
                "recorded)",
                path="--only",
                hint="review the run first (ideopipe review / ideopipe pick), or pass --only all",
            )
        )
    known = set(frame["step_id"].dropna()) if "step_id" in frame.columns else set()
    for step in steps:
        if step not in known:
            problems.append(
                Problem(
                    f"unknown step {step!r}; the manifest has {', '.join(sorted(known)) or 'none'}",
                    path="--step",
                )
            )
    if problems:
        raise ExportError(problems)
    keep = frame["status"].isin(GOOD) & frame["file"].notna()
    if steps:
        keep &= frame["step_id"].isin(list(steps))
    if only.kind == "approved":
        keep &= frame["review"].astype("string") == "approved"
    elif only.kind == "stars":
        keep &= pd.to_numeric(frame["stars"], errors="coerce").fillna(0) >= only.min_stars
    rows = frame[keep.fillna(False).astype(bool)]
    return [{k: _plain(v) for k, v in row.items()} for row in rows.to_dict("records")]


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value
