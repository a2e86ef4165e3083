"""Totals for the header and the per-step table: counts by status and the three money figures.

Every money figure on the page comes from `money.totals`, the function every other view
(progress bar, summary, manifest) uses, so the report cannot tell a different story.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..money import Money, totals, usd
from ..status import Status
from .entries import FAILED, NOT_RUN, Entry
from .fmt import as_float, first


@dataclass(frozen=True)
class Counts:
    """How many entries stand where."""

    entries: int
    ok: int
    reused: int
    failed: int
    in_doubt: int
    not_run: int


@dataclass(frozen=True)
class StepSummary:
    """Totals for one step of the recipe."""

    step_id: str
    op: str
    counts: Counts
    money: Money


def count(found: Sequence[Entry]) -> Counts:
    """Counts by status of some entries."""
    statuses = Counter(e.status for e in found)
    return Counts(
        entries=len(found),
        ok=statuses[Status.OK],
        reused=sum(1 for e in found if e.status == Status.OK and e.reused),
        failed=sum(statuses[s] for s in FAILED),
        in_doubt=statuses[Status.IN_DOUBT],
        not_run=sum(statuses[s] for s in NOT_RUN),
    )


def steps(
    frame: pd.DataFrame, found: Sequence[Entry], order: Sequence[str], run_id: str, simulated: bool
) -> list[StepSummary]:
    """One summary per step, its money from `money.totals` over that step's rows."""
    step_of = frame["step_id"].astype("string")
    result = []
    for step in order:
        mine = [e for e in found if e.text("step_id") == step]
        result.append(
            StepSummary(
                step_id=step,
                op=next((e.text("op") for e in mine if e.text("op")), ""),
                counts=count(mine),
                money=totals(frame[step_of.eq(step).fillna(False)], run_id, simulated=simulated),
            )
        )
    return result


def chart(summaries: Sequence[StepSummary]) -> dict[str, Any]:
    """Geometry of the per-step cost bar chart (the batch's cost; drawn as inline SVG)."""
    top = max((s.money.batch_cost for s in summaries), default=0.0)
    bar_x, bar_w, row_h = 132, 190, 26
    bars = []
    for i, s in enumerate(summaries):
        cost = s.money.batch_cost
        width = max(2.0, cost / top * bar_w) if cost > 0 else 0.0
        name = s.step_id if len(s.step_id) <= 18 else s.step_id[:17] + "…"
        value = usd(cost) + (" +?" if s.money.unknown else "")
        bars.append(
            {"y": 8 + i * row_h, "width": round(width, 1), "label": name, "title": s.step_id, "value": value}
        )
    return {
        "bars": bars,
        "x": bar_x,
        "bar_w": bar_w,
        "width": bar_x + bar_w + 96,
        "height": 16 + len(summaries) * row_h,
    }


def meter(run: Mapping[str, Any], money: Money) -> dict[str, Any]:
    """Percentages for the meter: spent this run, the batch, the plan and the budget."""
    planned = as_float(first(run, "planned_cost_usd", "planned_usd"))
    budget = as_float(run.get("budget_usd"))
    scale = max(v for v in (money.batch_cost, money.run_spent, planned or 0.0, budget or 0.0, 1e-9))

    def pct(v: float | None) -> float | None:
        return None if v is None else round(min(100.0, v / scale * 100), 2)

    return {
        "planned": usd(planned) if planned is not None else None,
        "budget": usd(budget) if budget is not None else None,
        "spent_pct": pct(money.run_spent),
        "batch_pct": pct(money.batch_cost),
        "planned_pct": pct(planned),
        "budget_pct": pct(budget),
        "over_budget": budget is not None and money.run_spent > budget,
    }
