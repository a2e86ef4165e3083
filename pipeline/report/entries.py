"""The manifest as the report reads it: one `Entry` per row, statuses and their meaning.

Manifests from before the `reused` / `produced_by_run` columns say `cached` for an image
an earlier run made; `normalise` reads that as `ok` + reused, so old and new manifests
draw (and count money) the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..status import Status
from .fmt import clean

REQUIRED_COLUMNS = ("run_id", "row_key", "step_id", "image_id", "status")
LEGACY_CACHED = "cached"

# status -> (label, icon, what it means when the manifest gives no error text)
STATUSES: dict[str, tuple[str, str, str]] = {
    Status.OK: ("OK", "✓", ""),
    Status.FAILED: ("Failed", "×", "The request failed."),
    Status.UNSAFE: ("Unsafe", "!", "The provider flagged this image as unsafe."),
    Status.IN_DOUBT: ("In doubt", "?", "Sent, but no answer came back: it may have run and been billed."),
    Status.DOWNLOAD_EXPIRED: ("Download expired", "!", "The result URL expired before the image was saved."),
    Status.NOT_SAVED: (
        "Not saved",
        "!",
        "Billed and answered, but the image could not be saved on this machine.",
    ),
    Status.PENDING: ("Pending", "…", "Not run yet: the next run sends it."),
    Status.SKIPPED_BUDGET: ("Skipped: budget", "–", "Not sent: the budget was reached."),
    Status.SKIPPED_PARENT: ("Skipped: no input", "–", "Not sent: its input image failed."),
}
MISSING_FILE = ("File missing", "?", "The manifest lists this image but its file is not on disk.")
UNREADABLE_FILE = ("Unreadable", "?", "The file exists but is not an image Pillow can read.")

FAILED = frozenset({Status.FAILED, Status.UNSAFE, Status.DOWNLOAD_EXPIRED, Status.NOT_SAVED})
NOT_RUN = frozenset({Status.PENDING, Status.SKIPPED_BUDGET, Status.SKIPPED_PARENT})
# Statuses where a request ran, so a missing cost means the price is unknown.
PRICED = frozenset({Status.OK, Status.UNSAFE, Status.IN_DOUBT, Status.DOWNLOAD_EXPIRED, Status.NOT_SAVED})


@dataclass(frozen=True)
class Entry:
    """A manifest record, cleaned of NA, with its position in the manifest."""

    position: int
    values: Mapping[str, Any]

    def text(self, column: str) -> str:
        """The value as text; '' when missing."""
        value = self.values.get(column)
        return "" if value is None else str(value)

    def get(self, column: str) -> Any:
        """The value, None when missing."""
        return self.values.get(column)

    @property
    def status(self) -> str:
        """The manifest status (`cached` already read as `ok`)."""
        return self.text("status")

    @property
    def reused(self) -> bool:
        """Whether an earlier run made this image."""
        return bool(self.get("reused"))

    @property
    def is_text(self) -> bool:
        """Whether this entry is a description rather than an image."""
        return self.text("op") == "describe" or (not self.text("file") and bool(self.text("description")))


def normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """The manifest with a boolean `reused` column and `cached` read as `ok` + reused."""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"manifest lacks required column(s): {', '.join(missing)}")
    frame = frame.copy()
    status = frame["status"].astype("string")
    cached = status.eq(LEGACY_CACHED).fillna(False).astype(bool)
    reused = (
        frame["reused"].astype("boolean").fillna(False).astype(bool)
        if "reused" in frame.columns
        else pd.Series(False, index=frame.index)
    )
    frame["reused"] = reused | cached
    frame["status"] = status.mask(cached, Status.OK.value)
    if "cost_usd" not in frame.columns:
        frame["cost_usd"] = pd.Series(pd.NA, index=frame.index, dtype="Float64")
    return frame


def entries(frame: pd.DataFrame) -> list[Entry]:
    """Every row of a normalised manifest as an Entry."""
    return [
        Entry(i, {str(k): clean(v) for k, v in record.items()})
        for i, record in enumerate(frame.to_dict("records"))
    ]


def step_order(run: Mapping[str, Any], found: Sequence[Entry]) -> list[str]:
    """The run's declared step order, then any other step in order of appearance."""
    declared = [str(s) for s in run.get("steps") or ()]
    seen = [e.text("step_id") for e in found]
    present = set(seen)
    ordered = [s for s in dict.fromkeys(declared) if s in present]
    return ordered + [s for s in dict.fromkeys(seen) if s not in ordered]


def status_order(counts: Mapping[str, int]) -> list[str]:
    """Statuses present in `counts`: the known ones in table order, then the rest sorted."""
    known = [str(s) for s in STATUSES if counts.get(s)]
    return known + sorted(s for s in counts if s not in STATUSES and counts[s])


def label(status: str) -> tuple[str, str, str]:
    """(label, icon, meaning) of a status, also for one this version does not know."""
    return STATUSES.get(status, (status.replace("_", " ").capitalize(), "?", ""))
