"""One money story: the three totals every view shows (progress, summary, manifest, report).

- `run_spent`: what this run was billed for (images it produced, billed failures included);
- `batch_cost`: what the batch's images cost, earlier runs included;
- `in_doubt`: what may have been billed (requests sent without an answer).

All three are computed here from the manifest frame, so no two views can disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .status import BILLED, Status


@dataclass(frozen=True)
class Money:
    """The three totals of a batch, in US dollars."""

    run_spent: float
    batch_cost: float
    in_doubt: float
    unknown: int = 0  # billed images whose price is not known
    simulated: bool = False  # an emulator run: nothing real was charged

    def describe(self) -> str:
        """One line for people, e.g. 'spent this run $0.12 · batch $1.20 · in doubt $0.06'."""
        text = f"spent this run {usd(self.run_spent)} · batch {usd(self.batch_cost)}"
        if self.in_doubt:
            text += f" · in doubt {usd(self.in_doubt)}"
        if self.unknown:
            text += f" · {self.unknown} image(s) of unknown price"
        if self.simulated:
            text = f"simulated: {text}, no real charge"
        return text


def usd(value: float) -> str:
    """Dollars as every view prints them."""
    return f"${value:,.4f}"


def totals(frame: Any, run_id: str | None, simulated: bool = False) -> Money:
    """The three totals of a manifest frame (pandas), for the run `run_id`."""
    if frame is None or len(frame) == 0:
        return Money(0.0, 0.0, 0.0, 0, simulated)
    status = frame["status"].astype("string")
    cost = frame["cost_usd"].astype("Float64")
    doubt = status == Status.IN_DOUBT.value
    billed = ~doubt & cost.fillna(0).gt(0)
    mine = (
        frame["produced_by_run"].astype("string").eq(run_id)
        if "produced_by_run" in frame
        else frame["run_id"].astype("string").eq(run_id)
    )
    if "reused" in frame:
        mine &= ~frame["reused"].astype("boolean").fillna(False)
    unknown = int((cost.isna() & status.isin([s.value for s in BILLED])).sum())
    return Money(
        run_spent=round(float(cost[billed & mine.fillna(False)].sum()), 6),
        batch_cost=round(float(cost[billed].sum()), 6),
        in_doubt=round(float(cost[doubt].fillna(0).sum()), 6),
        unknown=unknown,
        simulated=simulated,
    )
