"""The run journal: a SQLite file that is the source of truth about what was paid for.

`<out>/.ideopipe/state.db`, in WAL mode. A task is written as `sending`, in a committed
transaction with synchronous=FULL, before its request leaves this machine; the answer
(its raw text and parsed fields) is written in the transaction that ends `sending`,
before anything else can fail. After a crash the journal therefore tells, for every task,
whether it was never sent, sent with no answer (in doubt: it may have been billed),
answered, or finished with files on disk. A recorded answer is never sent again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import stat
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

from .errors import JournalCorrupt, PathError, RunLocked, StorageError
from .files import own_folder
from .journal_read import Answer, JournalReader, TaskState, files_intact
from .journal_schema import SCHEMA_VERSION, RunStatus, image_cells, prepare, recovery
from .scrub import storable_value
from .status import Status
from .store import file_sha256

__all__ = [
    "SCHEMA_VERSION",
    "Answer",
    "Journal",
    "JournalCorrupt",
    "TaskState",
    "file_sha256",
    "files_intact",
]


#: every column an announced image row binds (a missing one is stored as NULL)
_ANNOUNCED: dict[str, Any] = dict.fromkeys(
    (
        "idx",
        "seed",
        "api_prompt",
        "url",
        "is_image_safe",
        "resolution",
        "style_type",
        "description",
        "file",
        "error",
    )
)


_W = TypeVar("_W", bound="_Writer")


class _Writer(JournalReader):
    """Opening a journal for a run, and its transactions."""

    @classmethod
    def open(cls: type[_W], out_dir: Path) -> _W:
        """Open for a run: take the directory's lock, create or migrate the schema."""
        state = own_folder(out_dir, ".ideopipe")  # never through a planted link
        try:
            for name in ("state.db", "state.db-wal", "state.db-shm"):
                if _is_link(state, name):
                    raise PathError(
                        f"{Path(out_dir) / '.ideopipe' / name} is a symbolic link: ideopipe "
                        "writes its journal only to a real file, so remove the link"
                    )
            fd = os.open("lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644, dir_fd=state)
        finally:
            os.close(state)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunLocked(
                f"{out_dir} is in use by another ideopipe run ({holder}); "
                "wait for it to finish or use another --out"
            ) from exc
        # The lock dies with the process (kill -9 included), so a stale lock never blocks.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {time.strftime('%H:%M:%S')}".encode(), 0)
        db = cls.path_for(out_dir)
        try:
            conn = sqlite3.connect(db, check_same_thread=False, isolation_level=None, timeout=30)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                prepare(conn, db, writable=True)
            except BaseException:
                conn.close()
                raise
        except sqlite3.DatabaseError as exc:
            os.close(fd)
            raise JournalCorrupt(f"{db}: the journal is damaged ({exc}); {recovery(db)}") from exc
        except BaseException:
            os.close(fd)
            raise
        return cls(conn, fd)

    @classmethod
    @contextmanager
    def open_readonly(cls, out_dir: Path) -> Iterator[JournalReader]:
        """Open an existing journal to read it, without taking the run lock."""
        db = cls.path_for(out_dir)
        conn = sqlite3.connect(db.resolve().as_uri() + "?mode=ro", uri=True, check_same_thread=False)
        try:
            prepare(conn, db, writable=False)
            yield JournalReader(conn, None)
        finally:
            conn.close()

    def close(self) -> None:
        """Close the database and release the directory lock."""
        with self.mutex:
            self.conn.close()
            if self.lock_fd is not None:
                os.close(self.lock_fd)
                self.lock_fd = None

    def transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """One write transaction (for repairs); see _tx."""
        return self._tx()

    def mark_runs(self, run_ids: Iterable[str], status: str) -> None:
        """Set how runs ended (doctor marks killed ones)."""
        with self._tx() as c:
            c.executemany("UPDATE runs SET status=? WHERE run_id=?", [(status, r) for r in run_ids])

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction; a full or failing disk becomes StorageError (nothing half-written).

        Every value bound inside it passes through `scrub.storable`, so no text a server
        sent (a lone surrogate included) can make a write fail.
        """
        with self.mutex:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                try:
                    yield cast(sqlite3.Connection, _Storable(self.conn))
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


class _Storable:
    """A connection whose execute and executemany make every bound value storable."""

    def __init__(self, conn: sqlite3.Connection):
        self._conn = conn

    def execute(self, sql: str, args: Any = ()) -> sqlite3.Cursor:
        """As sqlite3.Connection.execute, with the values cleaned."""
        return self._conn.execute(sql, _cleaned(args))

    def executemany(self, sql: str, rows: Iterable[Any]) -> sqlite3.Cursor:
        """As sqlite3.Connection.executemany, with every row's values cleaned."""
        return self._conn.executemany(sql, (_cleaned(r) for r in rows))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _is_link(folder: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False


def _cleaned(args: Any) -> Any:
    if isinstance(args, Mapping):
        return {k: storable_value(v) for k, v in args.items()}
    return tuple(storable_value(v) for v in args)


def _json(value: Any) -> str | None:
    """Decoded JSON as text again, or None when it cannot be (the raw text is kept anyway)."""
    if value is None:
        return None
    try:
        return json.dumps(value, default=str)
    except (ValueError, TypeError, RecursionError):
        return None


class Journal(_Writer):
    """One output directory's journal, opened for a run; thread-safe, one writer at a time."""

    def begin_run(self, run: Mapping[str, Any]) -> None:
        """Record the start of a run."""
        with self._tx() as c:
            c.execute(
                "INSERT INTO runs (run_id, recipe, recipe_sha256, recipe_name, description,"
                " provider, started_at, status, planned_usd, budget_usd, info)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    run["run_id"],
                    run["recipe"],
                    run["recipe_sha256"],
                    run["recipe_name"],
                    run.get("description"),
                    run["provider"],
                    run["started_at"],
                    RunStatus.RUNNING,
                    run.get("planned_usd"),
                    run.get("budget_usd"),
                    json.dumps(run.get("info", {}), default=str),
                ),
            )

    def finish_run(self, run_id: str, status: str, finished_at: str, spent_usd: float) -> None:
        """Record how a run ended."""
        with self._tx() as c:
            c.execute(
                "UPDATE runs SET status=?, finished_at=?, spent_usd=? WHERE run_id=?",
                (status, finished_at, spent_usd, run_id),
            )

    def register(self, tasks: Iterable[tuple[str, str, str, str, float | None, str]], run_id: str) -> None:
        """Add tasks not seen before as pending: (task_id, step_id, op, row_key, cost, spec)."""
        now = time.time()
        with self._tx() as c:
            c.executemany(
                "INSERT INTO tasks (task_id, run_id, step_id, op, row_key, status, cost_usd, spec,"
                " updated_at) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(task_id) DO NOTHING",
                [(t[0], run_id, t[1], t[2], t[3], Status.PENDING, t[4], t[5], now) for t in tasks],
            )

    def set_status(self, task_id: str, status: Status, error: str | None = None) -> None:
        """Set a task's status."""
        self.set_statuses([task_id], status, error)

    def set_statuses(self, task_ids: Iterable[str], status: Status, error: str | None = None) -> None:
        """Set many tasks' status in one transaction."""
        now = time.time()
        with self._tx() as c:
            c.executemany(
                "UPDATE tasks SET status=?, error=?, updated_at=? WHERE task_id=?",
                [(status, error, now, t) for t in task_ids],
            )

    def sending(self, task_id: str, run_id: str) -> int:
        """Durably record that a request is about to be sent; returns the attempt id."""
        now = time.time()
        with self._tx() as c:
            c.execute(
                "UPDATE tasks SET status=?, attempts=attempts+1, error=NULL,"
                " run_id=?, updated_at=? WHERE task_id=?",
                (Status.SENDING, run_id, now, task_id),
            )
            cur = c.execute(
                "INSERT INTO attempts (task_id, run_id, started_at, status) VALUES (?,?,?,?)",
                (task_id, run_id, now, Status.SENDING),
            )
            return int(cur.lastrowid or 0)

    def attempt_failed(
        self,
        task_id: str,
        attempt_id: int,
        status: str,
        http_status: int | None,
        error: str,
        task_status: Status,
    ) -> None:
        """Record an attempt that ended without an answer."""
        now = time.time()
        with self._tx() as c:
            c.execute(
                "UPDATE attempts SET finished_at=?, status=?, http_status=?, error=?,"
                " latency_s=?-started_at WHERE attempt_id=?",
                (now, status, http_status, error, now, attempt_id),
            )
            c.execute(
                "UPDATE tasks SET status=?, error=?, updated_at=? WHERE task_id=?",
                (task_status, error, now, task_id),
            )

    def responded(
        self,
        task_id: str,
        attempt_id: int,
        answer: Answer,
        images: list[dict[str, Any]],
        params: Mapping[str, Any] | None = None,
    ) -> None:
        """End `sending`: record the answer (raw and parsed), the parameters as sent, and
        the images it announced, in one transaction. Whatever the server sent is stored."""
        now = time.time()
        body = _json(answer.body)
        with self._tx() as c:
            c.execute(
                "UPDATE attempts SET finished_at=?, status=?, http_status=200,"
                " latency_s=?-started_at WHERE attempt_id=?",
                (now, Status.OK, now, attempt_id),
            )
            c.execute(
                "INSERT OR REPLACE INTO responses (task_id, attempt_id, body, received_at,"
                " params, raw, problem) VALUES (?,?,?,?,?,?,?)",
                (
                    task_id,
                    attempt_id,
                    body,
                    now,
                    json.dumps(dict(params or {}), default=str),
                    answer.text,
                    answer.problem,
                ),
            )
            c.execute("DELETE FROM images WHERE task_id=?", (task_id,))
            c.executemany(
                "INSERT OR REPLACE INTO images (image_id, task_id, idx, seed, api_prompt, url,"
                " is_image_safe, resolution, style_type, description, file, status, error,"
                " updated_at) VALUES (:image_id, :task_id, :idx, :seed, :api_prompt, :url,"
                " :is_image_safe, :resolution, :style_type, :description, :file, :status,"
                " :error, :now)",
                [image_cells({**_ANNOUNCED, **img, "task_id": task_id, "now": now}) for img in images],
            )
            c.execute(
                "UPDATE tasks SET status=?, error=?, updated_at=? WHERE task_id=?",
                (Status.RESPONDED, answer.problem, now, task_id),
            )

    def task_done(self, task_id: str, images: list[dict[str, Any]]) -> None:
        """Record every image's download outcome and the task as done, in one transaction.

        Each dict has image_id and status, and for saved files file, sha256, width,
        height, bytes and mtime_ns. An image whose file could not be written is
        `not_saved`: the next run writes it again from the store or the URL, never
        by sending the request again.
        """
        now = time.time()
        with self._tx() as c:
            c.executemany(
                "UPDATE images SET status=:status, file=COALESCE(:file, file),"
                " sha256=COALESCE(:sha256, sha256),"
                " width=:width, height=:height, bytes=:bytes, mtime_ns=:mtime_ns, error=:error,"
                " updated_at=:now WHERE image_id=:image_id",
                [
                    image_cells(
                        {
                            "file": None,
                            "sha256": None,
                            "width": None,
                            "height": None,
                            "bytes": None,
                            "mtime_ns": None,
                            "error": None,
                            **img,
                            "now": now,
                        }
                    )
                    for img in images
                ],
            )
            c.execute("UPDATE tasks SET status=?, updated_at=? WHERE task_id=?", (Status.DONE, now, task_id))

    def not_saved(self, task_id: str, image_ids: Iterable[str], error: str) -> None:
        """Images answered and paid for whose file is not on disk (a local failure)."""
        now = time.time()
        with self._tx() as c:
            c.executemany(
                "UPDATE images SET status=?, error=?, updated_at=? WHERE image_id=? AND task_id=?",
                [(Status.NOT_SAVED, error, now, i, task_id) for i in image_ids],
            )
            c.execute("UPDATE tasks SET updated_at=? WHERE task_id=?", (now, task_id))
