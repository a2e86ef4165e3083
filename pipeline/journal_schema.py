"""The journal's tables, their version, migrations, and how server values are stored.

Every journal records `schema_version` in its `meta` table. Opening one checks it: an
older journal is migrated in place (in one transaction), a newer one is refused, and a
file SQLite cannot read is reported with the way to recover (`ideopipe doctor OUT`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

from .errors import JournalCorrupt
from .status import Status

SCHEMA_VERSION = 2
INT64 = (-(2**63), 2**63 - 1)

TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, recipe TEXT, recipe_sha256 TEXT, recipe_name TEXT,
    description TEXT, provider TEXT, started_at TEXT, finished_at TEXT, status TEXT,
    planned_usd REAL, budget_usd REAL, spent_usd REAL DEFAULT 0, info TEXT);
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY, run_id TEXT, step_id TEXT, op TEXT, row_key TEXT,
    status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, error TEXT,
    cost_usd REAL, spec TEXT, updated_at REAL);
CREATE TABLE IF NOT EXISTS attempts (
    attempt_id INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT NOT NULL, run_id TEXT,
    started_at REAL, finished_at REAL, status TEXT, http_status INTEGER, error TEXT,
    latency_s REAL);
CREATE TABLE IF NOT EXISTS responses (
    task_id TEXT PRIMARY KEY, attempt_id INTEGER, body TEXT, received_at REAL, params TEXT,
    raw TEXT, problem TEXT);
CREATE TABLE IF NOT EXISTS images (
    image_id TEXT PRIMARY KEY, task_id TEXT NOT NULL, idx INTEGER, seed INTEGER,
    api_prompt TEXT, url TEXT, is_image_safe INTEGER, resolution TEXT, style_type TEXT,
    description TEXT, file TEXT, sha256 TEXT, width INTEGER, height INTEGER, bytes INTEGER,
    status TEXT, error TEXT, updated_at REAL, mtime_ns INTEGER);
CREATE INDEX IF NOT EXISTS images_task ON images(task_id);
CREATE INDEX IF NOT EXISTS attempts_task ON attempts(task_id);
"""


class RunStatus(StrEnum):
    """How a run stands in the journal's `runs` table."""

    RUNNING = "running"  # begun; still so after a kill -9 until the next run
    OK = "ok"  # every planned image is ok
    FAILED = "failed"  # it ran to the end with some images not ok
    INTERRUPTED = "interrupted"  # stopped from outside (a signal, a notebook, stop())
    STOPPED = "stopped"  # stopped by itself (auth, credit, full disk, --fail-fast)
    KILLED = "killed"  # the process died while running (found by a later run)


def _v1_to_v2(conn: sqlite3.Connection) -> None:
    """Version 2 keeps the raw answer text, why it was unusable, and each file's mtime."""
    conn.execute("ALTER TABLE responses ADD COLUMN raw TEXT")
    conn.execute("ALTER TABLE responses ADD COLUMN problem TEXT")
    conn.execute("ALTER TABLE images ADD COLUMN mtime_ns INTEGER")
    conn.execute("UPDATE images SET status=? WHERE status='cached'", (Status.OK,))  # v1's word


#: from version N to N + 1
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _v1_to_v2}


def recovery(db: Path) -> str:
    """The sentence that tells a user how to get out of a broken journal."""
    out = db.parent.parent
    return (
        f"run `ideopipe doctor {out}` to check it, and `ideopipe doctor {out} --repair` "
        "to rebuild it from the files and the manifest"
    )


def prepare(conn: sqlite3.Connection, db: Path, writable: bool) -> None:
    """Check the journal's version; create or migrate it when `writable`."""
    try:
        known = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        version = None
        if "meta" in known:
            row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row[0]) if row else None
    except (sqlite3.DatabaseError, ValueError) as exc:
        raise JournalCorrupt(f"{db}: the journal is damaged ({exc}); {recovery(db)}") from exc
    if version is not None and version > SCHEMA_VERSION:
        raise JournalCorrupt(
            f"{db}: written by a newer ideopipe (journal version {version}, "
            f"this one reads up to {SCHEMA_VERSION}); upgrade ideopipe"
        )
    if not writable:
        return
    try:
        if version is None or not known:
            conn.executescript(TABLES)
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            return
        conn.execute("BEGIN IMMEDIATE")
        while version < SCHEMA_VERSION:
            MIGRATIONS[version](conn)
            version += 1
        conn.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(version),))
        conn.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise JournalCorrupt(f"{db}: the journal could not be prepared ({exc}); {recovery(db)}") from exc


# -- storing what a server sent, whatever it sent -----------------------------


def int_cell(value: Any) -> int | None:
    """An integer SQLite can hold, else None (the raw answer keeps the real value)."""
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            value = int(str(value)) if value is not None and str(value).lstrip("-").isdigit() else None
        except ValueError:
            return None
    if value is None or not INT64[0] <= value <= INT64[1]:
        return None
    return int(value)


def text_cell(value: Any) -> str | None:
    """Text for a TEXT column: strings as they are, anything else as JSON."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, default=str, sort_keys=True)


IMAGE_INTS = ("idx", "seed", "is_image_safe", "width", "height", "bytes", "mtime_ns")


def image_cells(img: Mapping[str, Any]) -> dict[str, Any]:
    """An image row with every value made storable."""
    return {
        k: int_cell(v) if k in IMAGE_INTS else v if isinstance(v, float) else text_cell(v)
        for k, v in img.items()
    }
