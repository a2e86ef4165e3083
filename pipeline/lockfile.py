"""The lock file is input too: each entry is checked when it is read, before anything is sent.

An entry maps a task id to at most `num_images` records, each `{"seed": int in the API's
range, "api_prompt": str or null}`. A tampered entry could otherwise send one paid request
per record, past the plan and the cost cap.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .errors import Problem, RecipeError

API_MAX_SEED = 2**31 - 1  # the Ideogram API's seed range is 0..2**31-1
Entries = dict[str, list[dict[str, Any]]]


def read_entries(path: Path, tasks: Iterable[Any]) -> Entries:
    """The checked entries of `tasks` (objects with `id` and `num_images`) in the lock at `path`."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise RecipeError([Problem(f"unreadable lock file: {exc}", file=str(path))]) from exc
    recorded = data.get("tasks") if isinstance(data, dict) else None
    if not isinstance(recorded, dict):
        why = "expected a JSON object with a 'tasks' object (task id -> records)"
        raise RecipeError([Problem(f"not a lock file: {why}", file=str(path))])
    out: Entries = {}
    problems: list[Problem] = []
    for task in tasks:
        if task.id not in recorded:
            continue
        found = entry_problems(recorded[task.id], int(task.num_images))
        problems += [Problem(f"tasks.{task.id}: {why}", file=str(path)) for why in found]
        if not found:
            out[task.id] = [{"seed": r["seed"], "api_prompt": r.get("api_prompt")} for r in recorded[task.id]]
    if problems:
        problems.append(
            Problem(
                "the lock file was edited or damaged: fix it, or run with --relock to write it afresh",
                file=str(path),
            )
        )
        raise RecipeError(problems)
    return out


def entry_problems(entry: Any, num_images: int) -> list[str]:
    """Why one task's lock entry cannot be used (every reason), or an empty list."""
    if not isinstance(entry, list):
        return [f"expected a list of records, got {type(entry).__name__}"]
    problems = []
    if len(entry) > num_images:
        problems.append(f"{len(entry)} records, but the task makes {num_images} image(s)")
    for i, rec in enumerate(entry):
        problems += [f"[{i}]: {why}" for why in _record_problems(rec)]
    return problems


def _record_problems(rec: Any) -> list[str]:
    if not isinstance(rec, Mapping):
        return [f"expected a record {{seed, api_prompt}}, got {type(rec).__name__}"]
    problems = []
    seed = rec.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int):
        problems.append(f"seed: expected an integer, got {type(seed).__name__}")
    elif not 0 <= seed <= API_MAX_SEED:
        problems.append(f"seed: {seed} is outside 0..{API_MAX_SEED}")
    prompt = rec.get("api_prompt")
    if prompt is not None and not isinstance(prompt, str):
        problems.append(f"api_prompt: expected text or null, got {type(prompt).__name__}")
    return problems
