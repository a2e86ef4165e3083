"""Progress while a run goes (a tqdm bar on a terminal, plain lines elsewhere) and its summary."""

from __future__ import annotations

import time
from typing import IO, Any

import pandas as pd
from tqdm import tqdm

PLAIN_EVERY_S = 5.0


class Progress:
    """Tasks done/total, USD spent vs planned, failures, the in-flight limit and an ETA."""

    def __init__(self, total: int, planned_usd: float, out: IO[str], quiet: bool = False):
        self.total = total
        self.planned = planned_usd
        self.out = out
        self.quiet = quiet
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self.bar = None
        if self.tty and not quiet:
            self.bar = tqdm(total=total, file=out, unit="task", dynamic_ncols=True, leave=True)
        self.last_line = 0.0
        self.done = 0
        self.started = time.monotonic()

    def update(self, done: int, spent: float = 0.0, limit: int = 0, failed: int = 0,
               rate_limited: int = 0) -> None:
        """Show the current state (called often; cheap)."""
        if self.quiet:
            return
        postfix = f"${spent:.2f}/${self.planned:.2f} failed {failed} limit {limit}" + \
            (f" 429s {rate_limited}" if rate_limited else "")
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
            self.bar.set_postfix_str(postfix, refresh=False)
            return
        now = time.monotonic()
        if done != self.done and (now - self.last_line >= PLAIN_EVERY_S or done == self.total):
            self.last_line = now
            rate = done / max(now - self.started, 1e-6)
            eta = (self.total - done) / rate if rate > 0 else 0
            print(f"progress: {done}/{self.total} tasks, {postfix}, eta {eta:.0f}s",
                  file=self.out, flush=True)
        self.done = done

    def close(self) -> None:
        """Finish the bar."""
        if self.bar is not None:
            self.bar.close()


COLUMNS = ("requests", "images", "ok", "cached", "failed", "in_doubt", "usd")


def summary_table(frame: pd.DataFrame) -> str:
    """Per step: requests, images, ok, cached, failed, in_doubt, USD; and the total."""
    if frame.empty:
        return "nothing to do: the plan is empty"

    def line(label: str, values: dict[str, Any]) -> str:
        cells = [f"{values[c]:>9.4f}" if c == "usd" else f"{values[c]:>8}" for c in COLUMNS]
        return f"{label:<16} " + " ".join(cells)

    lines = [f"{'step':<16} " + " ".join(f"{c.upper() if c == 'usd' else c:>8}"
                                         for c in COLUMNS)]
    totals: dict[str, Any] = dict.fromkeys(COLUMNS, 0)
    for step in dict.fromkeys(frame["step_id"]):
        part = frame[frame["step_id"] == step]
        status = part["status"]
        row = {
            "requests": int(part["task_id"].nunique()),
            "images": len(part),
            "ok": int((status == "ok").sum()),
            "cached": int((status == "cached").sum()),
            "in_doubt": int((status == "in_doubt").sum()),
            "usd": float(part.loc[status != "cached", "cost_usd"].fillna(0).sum()),
        }
        row["failed"] = row["images"] - row["ok"] - row["cached"] - row["in_doubt"]
        for k in COLUMNS:
            totals[k] += row[k]
        lines.append(line(step, row))
    lines.append(line("total", totals))
    return "\n".join(lines)
