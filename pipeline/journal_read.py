"""Reading the run journal: task states, answers, attempts, runs (see pipeline.journal)."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .status import Status
from .store import file_sha256, stat_key


@dataclass(frozen=True)
class TaskState:
    """What the journal knows of one task."""

    task_id: str
    status: str
    attempts: int
    error: str | None
    images: tuple[dict[str, Any], ...]


class JournalReader:
    """Reading a journal (a run's, or a read-only one)."""

    def __init__(self, conn: sqlite3.Connection, lock_fd: int | None):
        self.conn = conn
        self.lock_fd = lock_fd
        self.mutex = threading.Lock()

    @staticmethod
    def path_for(out_dir: Path) -> Path:
        """Where the journal of an output directory lives."""
        return Path(out_dir) / ".ideopipe" / "state.db"

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Rows of a read query, as dicts."""
        with self.mutex:
            cur = self.conn.execute(sql, args)
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, row)) for row in cur.fetchall()]

    def runs(self) -> list[dict[str, Any]]:
        """Every run recorded, oldest first."""
        return self.query("SELECT * FROM runs ORDER BY started_at")

    def run(self, run_id: str | None = None) -> dict[str, Any] | None:
        """One run (the latest when run_id is None)."""
        runs = self.runs()
        if run_id is None:
            return runs[-1] if runs else None
        return next((r for r in runs if r["run_id"] == run_id), None)

    def states(self, task_ids: Iterable[str] | None = None) -> dict[str, TaskState]:
        """The state of the given tasks (all when None), with their images."""
        wanted = None if task_ids is None else set(task_ids)
        where, args = "", tuple[str, ...]()
        if wanted is not None and len(wanted) <= 200:  # a few: ask for just those
            where, args = f" WHERE task_id IN ({','.join('?' * len(wanted))})", tuple(wanted)
        with self.mutex:
            rows = self.conn.execute(
                "SELECT task_id, status, attempts, error FROM tasks" + where, args
            ).fetchall()
        by_task: dict[str, list[dict[str, Any]]] = {}
        for rec in self.query(f"SELECT * FROM images{where} ORDER BY task_id, idx", args):
            by_task.setdefault(rec["task_id"], []).append(rec)
        return {
            r[0]: TaskState(r[0], r[1], r[2], r[3], tuple(by_task.get(r[0], ())))
            for r in rows
            if wanted is None or r[0] in wanted
        }

    def spec(self, task_id: str) -> dict[str, Any] | None:
        """The task's planned request as recorded."""
        with self.mutex:
            row = self.conn.execute("SELECT spec FROM tasks WHERE task_id=?", (task_id,)).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    def answered(self, task_ids: Iterable[str] | None = None) -> set[str]:
        """Tasks whose answer is recorded: they are never sent again."""
        with self.mutex:
            found = {r[0] for r in self.conn.execute("SELECT task_id FROM responses")}
        return found if task_ids is None else found & set(task_ids)

    def response(self, task_id: str) -> dict[str, Any] | None:
        """The recorded answer of a task: raw text, parsed body, why it was unusable."""
        rows = self.query("SELECT * FROM responses WHERE task_id=?", (task_id,))
        return rows[0] if rows else None

    def last_change(self) -> float:
        """When any task last changed (seconds since the epoch), 0 for none."""
        with self.mutex:
            row = self.conn.execute("SELECT MAX(updated_at) FROM tasks").fetchone()
        return float(row[0] or 0)

    def sent_params(self, task_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The parameters each answered task was sent with (run-time templates rendered)."""
        wanted = set(task_ids)
        with self.mutex:
            rows = self.conn.execute("SELECT task_id, params FROM responses").fetchall()
        return {tid: json.loads(p) for tid, p in rows if tid in wanted and p}

    def attempts(self, task_ids: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """Per task: attempts, first start, last finish, the last attempt's latency and run."""
        with self.mutex:
            rows = self.conn.execute(
                "SELECT task_id, started_at, finished_at, latency_s, run_id FROM attempts ORDER BY attempt_id"
            ).fetchall()
        wanted = None if task_ids is None else set(task_ids)
        out: dict[str, dict[str, Any]] = {}
        for tid, started, finished, latency, run_id in rows:
            if wanted is not None and tid not in wanted:
                continue
            rec = out.get(tid)
            if rec is None:
                out[tid] = {
                    "attempts": 1,
                    "started_at": started,
                    "finished_at": finished,
                    "latency_s": latency,
                    "run_id": run_id,
                }
            else:
                rec["attempts"] += 1
                rec["finished_at"] = finished or rec["finished_at"]
                rec["latency_s"] = latency
                rec["run_id"] = run_id
        return out

    def referenced(self) -> set[str]:
        """Every image sha256 any task of the journal records."""
        with self.mutex:
            rows = self.conn.execute("SELECT DISTINCT sha256 FROM images WHERE sha256 IS NOT NULL")
            return {r[0] for r in rows}

    def completed_ids(self, task_ids: set[str], out_dir: Path) -> set[str]:
        """Tasks that are done with every file present and matching its sha256."""
        states = self.states(task_ids)
        return {
            tid for tid, st in states.items() if st.status == Status.DONE and files_intact(st.images, out_dir)
        }


@dataclass(frozen=True)
class Answer:
    """A 200 answer as the journal keeps it: raw text, parsed body, why it is unusable."""

    text: str
    body: Any
    problem: str | None = None


def files_intact(images: Iterable[Mapping[str, Any]], out_dir: Path, verify: bool = True) -> bool:
    """True if every ok image of a task is on disk as recorded.

    With `verify` each file is hashed; without, a file whose size and mtime are the ones
    recorded at download is trusted (resume of a large run stays fast).
    """
    for img in images:
        if img["status"] == Status.OK and img["file"]:
            path = Path(out_dir) / img["file"]
            if (
                not verify
                and img.get("mtime_ns") is not None
                and stat_key(path) == (img.get("bytes"), img["mtime_ns"])
            ):
                continue
            if file_sha256(path) != img["sha256"]:
                return False
    return True
