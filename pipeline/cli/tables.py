"""Text tables the verbs print: a plan's cost per step, and the runs of an output folder."""

from __future__ import annotations

from typing import Any


def format_plan(s: dict[str, Any]) -> str:
    """A plan summary as a text table."""
    lines = [
        f"{s['recipe']} · provider {s['provider']} · {s['rows']} rows · price table {s['price_table']}",
        f"{'step':<16} {'op':<19} {'requests':>9} {'images':>7} {'done':>6} {'USD':>10}",
    ]
    if s.get("description"):
        lines.insert(1, str(s["description"]))
    for sid, st in s["steps"].items():
        usd = f"{st['cost_usd']:.4f}" + ("+?" if st["unknown_cost_requests"] else "")
        lines.append(
            f"{sid:<16} {st['op']:<19} {st['requests']:>9} {st['images']:>7} {st['done']:>6} {usd:>10}"
        )
    lines.append(
        f"{'total':<36} {s['requests']:>9} {s['images']:>7} {s['done_requests']:>6} {s['cost_usd']:>10.4f}"
    )
    if s["unknown_cost_requests"]:
        lines.append(
            f"{s['unknown_cost_requests']} request(s) have no known price: add them "
            "under `prices:` (e.g. describe: 0.01) for an exact estimate"
        )
    if s["budget_usd"] is not None:
        verdict = "fits" if s["fits_budget"] else "DOES NOT FIT"
        lines.append(f"budget ${s['budget_usd']:.2f}: {verdict} (left to spend: ${s['cost_usd']:.4f})")
    return "\n".join(lines)


def format_runs(runs: list[dict[str, Any]]) -> str:
    """One line per recorded run: id, start, images made, dollars spent, status."""
    lines = [f"{'run_id':<26} {'started':<26} {'images':>7} {'USD':>9}  status"]
    for r in runs:
        lines.append(
            f"{r['run_id']:<26} {r['started_at'] or '':<26} {r['images']:>7} "
            f"{r['spent_usd'] or 0:>9.4f}  {r['status']}"
        )
    return "\n".join(lines)
