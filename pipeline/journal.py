"""The run journal: a SQLite file that is the source of truth about what was paid for.

`<out>/.ideopipe/state.db`, in WAL mode. A task is written as `sending`, in a committed
transaction with synchronous=FULL, before its request leaves this machine; the response
and every downloaded file are written as soon as they arrive. After a crash the journal
therefore tells, for every task, whether it was never sent, sent with no answer
(in doubt: it may have been billed), answered, or finished with files on disk.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import RunLocked, StorageError

SCHEMA_VERSION = 1

_SCHEMA = """
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
    task_id TEXT PRIMARY KEY, attempt_id INTEGER, body TEXT, received_at REAL, params TEXT);
CREATE TABLE IF NOT EXISTS images (
    image_id TEXT PRIMARY KEY, task_id TEXT NOT NULL, idx INTEGER, seed INTEGER,
    api_prompt TEXT, url TEXT, is_image_safe INTEGER, resolution TEXT, style_type TEXT,
    description TEXT, file TEXT, sha256 TEXT, width INTEGER, height INTEGER, bytes INTEGER,
    status TEXT, error TEXT, updated_at REAL);
CREATE INDEX IF NOT EXISTS images_task ON images(task_id);
CREATE INDEX IF NOT EXISTS attempts_task ON attempts(task_id);
"""

# Task statuses. Terminal ones are never changed by a plain rerun.
PENDING, SENDING, RESPONDED, DONE = "pending", "sending", "responded", "done"
FAILED, UNSAFE, IN_DOUBT, EXPIRED = "failed", "unsafe", "in_doubt", "download_expired"
SKIPPED_BUDGET, SKIPPED_PARENT = "skipped_budget", "skipped_parent"


@dataclass(frozen=True)
class TaskState:
    """What the journal knows of one task."""

    task_id: str
    status: str
    attempts: int
    error: str | None
    images: tuple[dict[str, Any], ...]


class Journal:
    """One output directory's journal; thread-safe, one writer at a time."""

    def __init__(self, conn: sqlite3.Connection, lock_fd: int | None):
        self.conn = conn
        self.lock_fd = lock_fd
        self.mutex = threading.Lock()

    # -- opening --------------------------------------------------------------

    @staticmethod
    def path_for(out_dir: Path) -> Path:
        """Where the journal of an output directory lives."""
        return Path(out_dir) / ".ideopipe" / "state.db"

    @classmethod
    def open(cls, out_dir: Path) -> Journal:
        """Open for a run: take the directory's lock, create the schema if needed."""
        state = Path(out_dir) / ".ideopipe"
        state.mkdir(parents=True, exist_ok=True)
        fd = os.open(state / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunLocked(f"{out_dir} is in use by another ideopipe run ({holder}); "
                            "wait for it to finish or use another --out") from exc
        # The lock dies with the process (kill -9 included), so a stale lock never blocks.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {time.strftime('%H:%M:%S')}".encode(), 0)
        conn = sqlite3.connect(cls.path_for(out_dir), check_same_thread=False,
                               isolation_level=None, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(_SCHEMA)
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                     (str(SCHEMA_VERSION),))
        return cls(conn, fd)

    @classmethod
    @contextmanager
    def open_readonly(cls, out_dir: Path) -> Iterator[Journal]:
        """Open an existing journal to read it, without taking the run lock."""
        uri = cls.path_for(out_dir).resolve().as_uri() + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        try:
            yield cls(conn, None)
        finally:
            conn.close()

    def close(self) -> None:
        """Close the database and release the directory lock."""
        with self.mutex:
            self.conn.close()
            if self.lock_fd is not None:
                os.close(self.lock_fd)
                self.lock_fd = None

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction; a full or failing disk becomes StorageError (nothing half-written)."""
        with self.mutex:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self.conn
                except BaseException:
                    if self.conn.in_transaction:
                        self.conn.execute("ROLLBACK")
                    raise
                self.conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                if self.conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self.conn.execute("ROLLBACK")
                raise StorageError(f"the journal could not be written: {exc}") from exc

    # -- runs -----------------------------------------------------------------

    def begin_run(self, run: Mapping[str, Any]) -> None:
        """Record the start of a run."""
        with self._tx() as c:
            c.execute("INSERT INTO runs (run_id, recipe, recipe_sha256, recipe_name, description,"
                      " provider, started_at, status, planned_usd, budget_usd, info)"
                      " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                      (run["run_id"], run["recipe"], run["recipe_sha256"], run["recipe_name"],
                       run.get("description"), run["provider"], run["started_at"], "running",
                       run.get("planned_usd"), run.get("budget_usd"),
                       json.dumps(run.get("info", {}), default=str)))

    def finish_run(self, run_id: str, status: str, finished_at: str, spent_usd: float) -> None:
        """Record how a run ended."""
        with self._tx() as c:
            c.execute("UPDATE runs SET status=?, finished_at=?, spent_usd=? WHERE run_id=?",
                      (status, finished_at, spent_usd, run_id))

    def runs(self) -> list[dict[str, Any]]:
        """Every run recorded, oldest first."""
        cur = self.conn.execute("SELECT * FROM runs ORDER BY started_at")
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row)) for row in cur.fetchall()]

    def run(self, run_id: str | None = None) -> dict[str, Any] | None:
        """One run (the latest when run_id is None)."""
        runs = self.runs()
        if run_id is None:
            return runs[-1] if runs else None
        return next((r for r in runs if r["run_id"] == run_id), None)

    # -- tasks ----------------------------------------------------------------

    def register(self, tasks: Iterable[tuple[str, str, str, str, float | None, str]],
                 run_id: str) -> None:
        """Add tasks not seen before as pending: (task_id, step_id, op, row_key, cost, spec)."""
        now = time.time()
        with self._tx() as c:
            c.executemany(
                "INSERT INTO tasks (task_id, run_id, step_id, op, row_key, status, cost_usd, spec,"
                " updated_at) VALUES (?,?,?,?,?,'pending',?,?,?) ON CONFLICT(task_id) DO UPDATE"
                " SET run_id=excluded.run_id",
                [(t[0], run_id, t[1], t[2], t[3], t[4], t[5], now) for t in tasks])

    def states(self, task_ids: Iterable[str] | None = None) -> dict[str, TaskState]:
        """The state of the given tasks (all when None), with their images."""
        wanted = None if task_ids is None else set(task_ids)
        where, args = "", tuple[str, ...]()
        if wanted is not None and len(wanted) <= 200:  # a few: ask for just those
            marks = ",".join("?" * len(wanted))
            where, args = f" WHERE task_id IN ({marks})", tuple(wanted)
        with self.mutex:
            rows = self.conn.execute(
                "SELECT task_id, status, attempts, error FROM tasks" + where, args).fetchall()
            images = self.conn.execute(f"SELECT * FROM images{where} ORDER BY task_id, idx", args)
            cols = [d[0] for d in images.description]
            by_task: dict[str, list[dict[str, Any]]] = {}
            for row in images.fetchall():
                rec = dict(zip(cols, row))
                by_task.setdefault(rec["task_id"], []).append(rec)
        return {r[0]: TaskState(r[0], r[1], r[2], r[3], tuple(by_task.get(r[0], ())))
                for r in rows if wanted is None or r[0] in wanted}

    def spec(self, task_id: str) -> dict[str, Any] | None:
        """The task's planned request as recorded."""
        with self.mutex:
            row = self.conn.execute("SELECT spec FROM tasks WHERE task_id=?", (task_id,)).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    def set_status(self, task_id: str, status: str, error: str | None = None) -> None:
        """Set a task's status."""
        with self._tx() as c:
            c.execute("UPDATE tasks SET status=?, error=?, updated_at=? WHERE task_id=?",
                      (status, error, time.time(), task_id))

    def set_statuses(self, task_ids: Iterable[str], status: str, error: str | None = None) -> None:
        """Set many tasks' status in one transaction."""
        now = time.time()
        with self._tx() as c:
            c.executemany("UPDATE tasks SET status=?, error=?, updated_at=? WHERE task_id=?",
                          [(status, error, now, t) for t in task_ids])

    def sending(self, task_id: str, run_id: str) -> int:
        """Durably record that a request is about to be sent; returns the attempt id."""
        now = time.time()
        with self._tx() as c:
            c.execute("UPDATE tasks SET status='sending', attempts=attempts+1, error=NULL,"
                      " run_id=?, updated_at=? WHERE task_id=?", (run_id, now, task_id))
            cur = c.execute("INSERT INTO attempts (task_id, run_id, started_at, status)"
                            " VALUES (?,?,?,'sending')", (task_id, run_id, now))
            return int(cur.lastrowid or 0)

    def attempt_failed(self, task_id: str, attempt_id: int, status: str, http_status: int | None,
                       error: str, task_status: str) -> None:
        """Record an attempt that ended without a usable response."""
        now = time.time()
        with self._tx() as c:
            c.execute("UPDATE attempts SET finished_at=?, status=?, http_status=?, error=?,"
                      " latency_s=?-started_at WHERE attempt_id=?",
                      (now, status, http_status, error, now, attempt_id))
            c.execute("UPDATE tasks SET status=?, error=?, updated_at=? WHERE task_id=?",
                      (task_status, error, now, task_id))

    def responded(self, task_id: str, attempt_id: int, body: Any,
                  images: list[dict[str, Any]], params: Mapping[str, Any] | None = None) -> None:
        """Record a successful response, the parameters as sent, and the images it announced."""
        now = time.time()
        with self._tx() as c:
            c.execute("UPDATE attempts SET finished_at=?, status='ok', http_status=200,"
                      " latency_s=?-started_at WHERE attempt_id=?", (now, now, attempt_id))
            c.execute("INSERT OR REPLACE INTO responses VALUES (?,?,?,?,?)",
                      (task_id, attempt_id, json.dumps(body), now,
                       json.dumps(dict(params or {}), default=str)))
            c.execute("DELETE FROM images WHERE task_id=?", (task_id,))
            c.executemany(
                "INSERT OR REPLACE INTO images (image_id, task_id, idx, seed, api_prompt, url,"
                " is_image_safe, resolution, style_type, description, file, status, updated_at)"
                " VALUES (:image_id, :task_id, :idx, :seed, :api_prompt, :url, :is_image_safe,"
                " :resolution, :style_type, :description, :file, :status, :now)",
                [{**img, "task_id": task_id, "now": now} for img in images])
            c.execute("UPDATE tasks SET status='responded', updated_at=? WHERE task_id=?",
                      (now, task_id))

    def task_done(self, task_id: str, images: list[dict[str, Any]]) -> None:
        """Record every image's download outcome and the task as done, in one transaction.

        Each dict has image_id and status, and for saved files file, sha256, width,
        height and bytes. A crash before this commit leaves the task `responded`, so
        the next run downloads its images again instead of sending the request again.
        """
        now = time.time()
        with self._tx() as c:
            c.executemany(
                "UPDATE images SET status=:status, file=COALESCE(:file, file), sha256=:sha256,"
                " width=:width, height=:height, bytes=:bytes, error=:error, updated_at=:now"
                " WHERE image_id=:image_id",
                [{"file": None, "sha256": None, "width": None, "height": None, "bytes": None,
                  "error": None, **img, "now": now} for img in images])
            c.execute("UPDATE tasks SET status='done', updated_at=? WHERE task_id=?",
                      (now, task_id))

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
            rows = self.conn.execute("SELECT task_id, started_at, finished_at, latency_s, run_id"
                                     " FROM attempts ORDER BY attempt_id").fetchall()
        wanted = None if task_ids is None else set(task_ids)
        out: dict[str, dict[str, Any]] = {}
        for tid, started, finished, latency, run_id in rows:
            if wanted is not None and tid not in wanted:
                continue
            rec = out.get(tid)
            if rec is None:
                out[tid] = {"attempts": 1, "started_at": started, "finished_at": finished,
                            "latency_s": latency, "run_id": run_id}
            else:
                rec["attempts"] += 1
                rec["finished_at"] = finished or rec["finished_at"]
                rec["latency_s"] = latency
                rec["run_id"] = run_id
        return out

    def completed_ids(self, task_ids: set[str], out_dir: Path) -> set[str]:
        """Tasks that are done with every file present and matching its sha256."""
        states = self.states(task_ids)
        return {tid for tid, st in states.items()
                if st.status == DONE and files_intact(st.images, out_dir)}


def files_intact(images: Iterable[Mapping[str, Any]], out_dir: Path) -> bool:
    """True if every ok image of a task is on disk with its recorded sha256."""
    for img in images:
        if img["status"] in ("ok", "cached") and img["file"]:
            if file_sha256(Path(out_dir) / img["file"]) != img["sha256"]:
                return False
    return True


def file_sha256(path: Path) -> str | None:
    """sha256 of a file, or None if it cannot be read."""
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError:
        return None
