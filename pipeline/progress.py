"""Progress while a run goes (a tqdm bar on a terminal, plain lines elsewhere) and its summary."""

from __future__ import annotations

import time
from typing import IO, Any

from .money import usd

PLAIN_EVERY_S = 5.0
#: fits an 80-column terminal with the counters and the money after it
BAR_FORMAT = "{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} {remaining} {postfix}"


def counters(event: Any) -> str:
    """The short money and health line of an engine event, e.g. '$0.12/$0.50 2 failed'."""
    money = f"{usd_short(event.spent_usd)}/{usd_short(event.planned_usd)}"
    if event.simulated:
        money = f"sim {money}"
    text = f"{money} lim {event.limit}"
    if event.failed:
        text += f" {event.failed} failed"
    if event.rate_limited:
        text += f" {event.rate_limited}×429"
    return text


def usd_short(value: float) -> str:
    """Dollars with two decimals (cents) for the bar, four below a cent."""
    return f"${value:,.2f}" if value >= 0.01 or value == 0 else usd(value)


class Progress:
    """Tasks done/total, USD spent vs planned, failures, the in-flight limit and an ETA."""

    def __init__(self, out: IO[str], quiet: bool = False, ncols: int | None = None):
        self.out = out
        self.quiet = quiet
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self.ncols = ncols
        self.bar: Any = None
        self.total = 0
        self.last_line = 0.0
        self.done = -1
        self.started = time.monotonic()

    def update(self, event: Any) -> None:
        """Show the state an engine event carries (called often; cheap)."""
        if self.quiet:
            return
        self.total = event.total
        postfix = counters(event)
        if self.tty or self.ncols:
            self._bar(event).update(event.done - self.bar.n)
            self.bar.set_postfix_str(postfix, refresh=False)
            return
        now = time.monotonic()
        if event.done != self.done and (now - self.last_line >= PLAIN_EVERY_S or event.done == self.total):
            self.last_line = now
            rate = event.done / max(now - self.started, 1e-6)
            eta = (self.total - event.done) / rate if rate > 0 else 0
            print(
                f"progress: {event.done}/{self.total} tasks, {postfix}, eta {eta:.0f}s",
                file=self.out,
                flush=True,
            )
        self.done = event.done

    def _bar(self, event: Any) -> Any:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(
                total=event.total,
                file=self.out,
                unit="task",
                leave=True,
                bar_format=BAR_FORMAT,
                ncols=self.ncols,
                dynamic_ncols=self.ncols is None,
            )
        return self.bar

    def write(self, text: str) -> None:
        """Print a line above the bar."""
        if self.bar is not None:
            self.bar.write(text, file=self.out)
        else:
            print(text, file=self.out, flush=True)

    def close(self) -> None:
        """Finish the bar."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
