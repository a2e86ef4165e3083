"""Step ordering: each step after the steps it reads, with unknown steps and cycles reported."""

from __future__ import annotations

import graphlib
import heapq
from typing import Any

import jinja2

from .. import templating
from .session import Session, close_match, refs, strings


def dependencies(s: Session) -> dict[str, set[str]]:
    """step id -> the ids of the steps it reads (`input:` and `steps.x` in templates)."""
    deps: dict[str, set[str]] = {}
    for i, step in enumerate(s.steps):
        if step["id"] in deps:
            s.problem(("steps", i, "id"), f"duplicate step id {step['id']!r}")
        needed: set[str] = set()
        if "input" in step:
            target = step["input"]
            if target not in s.step_index:
                s.problem(
                    ("steps", i, "input"), f"unknown step {target!r}", close_match(target, s.step_index)
                )
            else:
                needed.add(target)
        for name, value in step.items():
            for ref in refs(value):
                if not ref.startswith("steps."):
                    continue
                target = ref.split(".", 1)[1]
                if target not in s.step_index:
                    s.problem(
                        ("steps", i, name),
                        f"unknown step {target!r} in steps.{target}",
                        close_match(target, s.step_index),
                    )
                else:
                    needed.add(target)
        deps[step["id"]] = needed
    return deps


def order_steps(s: Session) -> list[dict[str, Any]]:
    """Steps in dependency order, earliest recipe position first among the ready ones."""
    sorter = graphlib.TopologicalSorter(dependencies(s))
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        _report_cycle(s, list(exc.args[1]))
        return []
    order: list[str] = []
    ready: list[tuple[int, str]] = []
    while sorter.is_active():
        for node in sorter.get_ready():
            heapq.heappush(ready, (s.step_index[node], node))
        _, node = heapq.heappop(ready)  # the earliest step in the recipe among the ready ones
        order.append(node)
        sorter.done(node)
    return [s.steps[s.step_index[sid]] for sid in order]


def _report_cycle(s: Session, cycle: list[str]) -> None:
    """'cycle: a -> c -> b -> a', read as 'a needs c', from the cycle's earliest step."""
    nodes = list(reversed(cycle[:-1]))  # graphlib lists each node before the one needing it
    first = min(range(len(nodes)), key=lambda n: s.step_index[nodes[n]])
    nodes = nodes[first:] + nodes[:first]
    text = " -> ".join([*nodes, nodes[0]])
    s.problem(("steps", s.step_index[nodes[0]], "input"), f"cycle: {text}")


def check_syntax(s: Session) -> None:
    """Report every template in the steps and output.file that does not parse."""
    values: list[tuple[tuple[Any, ...], Any]] = [
        (("steps", i, name), raw) for i, step in enumerate(s.steps) for name, raw in step.items()
    ]
    values.append((("output", "file"), s.file_template))
    for path, raw in values:
        for text in strings(raw):
            if templating.is_template(text):
                try:
                    templating.compile_template(text)
                except jinja2.TemplateSyntaxError as exc:
                    s.problem(path, templating.describe_error(exc))
