"""The local photos and masks a task read, so that the sheet can start each chain with them.

The manifest names the images a run made, not the files it read; those are in the plan
(`Task.images`) and in the journal's record of each task. A run passes them from its
plan; `ideopipe report` reads them back from the journal.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import IdeopipeError

#: task id -> role ("image" or "mask") -> absolute paths of local files
Inputs = Mapping[str, Mapping[str, Sequence[str]]]
ROLES = ("image", "mask")  # the inputs a result is an "after" of; references are not


def from_plan(plan: Any) -> dict[str, dict[str, list[str]]]:
    """The local image and mask files of every task of a plan."""
    found: dict[str, dict[str, list[str]]] = {}
    for task in plan.tasks:
        roles = {
            role: [ref.value for ref in task.images.get(role, ()) if ref.kind == "file"] for role in ROLES
        }
        if roles["image"]:
            found[task.id] = roles
    return found


def from_journal(out_dir: Path, task_ids: Iterable[str]) -> dict[str, dict[str, list[str]]]:
    """The same, from the tasks the journal of `out_dir` recorded; {} if it cannot be read."""
    from ..journal import Journal

    if not Journal.path_for(out_dir).is_file():
        return {}
    found: dict[str, dict[str, list[str]]] = {}
    try:
        with Journal.open_readonly(out_dir) as journal:
            for task_id in dict.fromkeys(task_ids):
                roles = _roles((journal.spec(task_id) or {}).get("images"))
                if roles["image"]:
                    found[task_id] = roles
    except (sqlite3.Error, OSError, ValueError, IdeopipeError):
        return {}  # the sources are a help for the eye; a page without them is still right
    return found


def _roles(images: Any) -> dict[str, list[str]]:
    """{"image": [...], "mask": [...]} from a recorded spec's {"image": ["file:/x.png"]}."""
    roles: dict[str, list[str]] = {role: [] for role in ROLES}
    if not isinstance(images, Mapping):
        return roles
    for role in ROLES:
        for ref in images.get(role) or ():
            kind, _, value = str(ref).partition(":")
            if kind == "file" and value:
                roles[role].append(value)
    return roles


def chain_start(inputs: Inputs, task_id: str) -> tuple[str, str | None] | None:
    """(photo, mask or None) that a task's result is the "after" of, if it read a local photo."""
    roles = inputs.get(task_id)
    if not roles or not roles.get("image"):
        return None
    masks = roles.get("mask") or ()
    return roles["image"][0], (masks[0] if masks else None)
