"""What a person reads at the end of a run: a table per step, and failures in words."""

from __future__ import annotations

from collections import Counter
from typing import Any

from .status import Status

COLUMNS = ("requests", "images", "ok", "reused", "failed", "pending", "in_doubt", "usd")

#: why images did not come out, in words
_CAUSES: dict[Status, str] = {
    Status.UNSAFE: "blocked by the safety check (prompts in manifest)",
    Status.SKIPPED_PARENT: "not run because their input image failed",
    Status.SKIPPED_BUDGET: "not run because starting them would pass the budget cap",
    Status.IN_DOUBT: "sent without an answer: they may have been billed "
    "(not resent; --retry-in-doubt pays for them again)",
    Status.DOWNLOAD_EXPIRED: "paid for, but their download link expired",
    Status.NOT_SAVED: "paid for but not saved on this disk (the next run downloads them again)",
    Status.PENDING: "not started (the run stopped first; the next run sends them)",
}


def summary_table(frame: Any) -> str:
    """Per step: requests, images, ok (of which reused), failed, pending, in_doubt, USD.

    Each line fits an 80-column terminal.
    """
    if frame is None or len(frame) == 0:
        return "nothing to do: the plan is empty"

    widths = {c: 9 if c == "usd" else max(len(c), 6) for c in COLUMNS}

    def line(label: str, values: dict[str, Any]) -> str:
        cells = [f"{values[c]:>9.4f}" if c == "usd" else f"{values[c]:>{widths[c]}}" for c in COLUMNS]
        return f"{label[:14]:<14} " + " ".join(cells)

    header = " ".join(f"{c.upper() if c == 'usd' else c:>{widths[c]}}" for c in COLUMNS)
    lines = [f"{'step':<14} " + header]
    totals: dict[str, Any] = dict.fromkeys(COLUMNS, 0)
    for step in dict.fromkeys(frame["step_id"]):
        part = frame[frame["step_id"] == step]
        status = part["status"].astype("string")
        reused = part["reused"].astype("boolean").fillna(False).astype(bool)
        row = {
            "requests": int(part["task_id"].nunique()),
            "images": len(part),
            "ok": int((status == Status.OK).sum()),
            "reused": int(reused.sum()),
            "pending": int((status == Status.PENDING).sum()),
            "in_doubt": int((status == Status.IN_DOUBT).sum()),
            "usd": float(part.loc[~reused.to_numpy(), "cost_usd"].fillna(0).sum()),
        }
        row["failed"] = row["images"] - row["ok"] - row["pending"] - row["in_doubt"]
        for k in COLUMNS:
            totals[k] += row[k]
        lines.append(line(step, row))
    lines.append(line("total", totals))
    return "\n".join(lines)


def explain(frame: Any) -> list[str]:
    """Why images did not come out, grouped by cause, one sentence each (largest first)."""
    if frame is None or len(frame) == 0:
        return []
    counts: Counter[str] = Counter()
    for status, error in zip(frame["status"].astype("string"), frame["error"].astype("string")):
        if status == Status.OK:
            continue
        if status == Status.FAILED:
            counts[f"failed: {_first_line(error)}"] += 1
        else:
            counts[_CAUSES.get(Status(status), str(status))] += 1
    return [f"{n} {cause}" for cause, n in counts.most_common()]


def explanation(frame: Any) -> str:
    """The failure sentences joined into one line, '' when every image is ok."""
    return "; ".join(explain(frame))


def _first_line(error: Any) -> str:
    """The kind of an error: its text up to the first ': ' (details differ per image)."""
    if not isinstance(error, str) or not error.strip():
        return "no reason recorded"
    text = error.strip().splitlines()[0].split(": ", 1)[0]
    return text if len(text) <= 80 else text[:79] + "…"
