"""Looking after an output folder: `doctor` (check, and repair) and `gc` (free the store)."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import store as st
from .errors import InputError
from .journal import Journal, JournalCorrupt
from .journal_schema import SCHEMA_VERSION, RunStatus, image_cells
from .status import Status

RESTORE_COLUMNS = (
    "task_id",
    "image_id",
    "step_id",
    "op",
    "row_key",
    "status",
    "file",
    "sha256",
    "image_index",
    "seed",
    "api_prompt",
    "url",
    "matrix",
)


@dataclass
class Checkup:
    """What `doctor` found, and what it repaired."""

    problems: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    images: int = 0

    @property
    def healthy(self) -> bool:
        """True when nothing is left to fix."""
        return not self.problems or len(self.repaired) >= len(self.problems)


def doctor(out_dir: Path, repair: bool = False) -> Checkup:
    """Check an output folder's journal and its files against the store; repair with `repair`."""
    out_dir = Path(out_dir)
    db = Journal.path_for(out_dir)
    if not out_dir.is_dir():
        raise InputError(f"{out_dir}: not an output folder")
    found = Checkup()
    damage = _integrity(db) if db.exists() else "there is no journal"
    if damage:
        found.problems.append(f"{db}: {damage}")
        if repair:
            found.repaired.append(_rebuild(out_dir, db))
        return found
    journal = Journal.open(out_dir) if repair else None  # RunLocked while a run writes
    try:
        _check_files(out_dir, journal, found)
        _check_store(out_dir, found, repair)
        _check_runs(out_dir, journal, found)
    finally:
        if journal is not None:
            journal.close()
    return found


def _integrity(db: Path) -> str | None:
    """Why SQLite cannot trust the journal, or None."""
    try:
        conn = sqlite3.connect(db.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            result = conn.execute("PRAGMA integrity_check").fetchone()[0]
            row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return f"the journal is damaged ({exc})"
    if result != "ok":
        return f"the journal is damaged ({result})"
    if row is None or not str(row[0]).isdigit():
        return "the journal has no schema_version"
    if int(row[0]) > SCHEMA_VERSION:
        raise JournalCorrupt(
            f"{db}: written by a newer ideopipe (journal version {row[0]}); upgrade ideopipe"
        )
    return None


def _images(out_dir: Path) -> list[dict[str, Any]]:
    with Journal.open_readonly(out_dir) as journal:
        return journal.query("SELECT image_id, task_id, file, sha256, status FROM images")


def _check_files(out_dir: Path, journal: Journal | None, found: Checkup) -> None:
    """Every ok image on disk as recorded; missing ones restored from the store if possible."""
    store = st.Store(out_dir)
    lost: dict[str, list[str]] = {}
    for img in _images(out_dir):
        if img["status"] != Status.OK or not img["file"]:
            continue
        found.images += 1
        if st.file_sha256(out_dir / img["file"]) == img["sha256"]:
            continue
        where = f"{img['file']}: missing or changed"
        found.problems.append(where)
        if journal is None:
            continue
        if store.has(img["sha256"], verify=True):
            store.materialise(img["sha256"], img["file"])
            found.repaired.append(f"{img['file']}: restored from the store")
        else:
            lost.setdefault(img["task_id"], []).append(img["image_id"])
            found.repaired.append(f"{img['file']}: marked not_saved (the next run downloads it)")
    if journal is not None:
        for task_id, ids in lost.items():
            journal.not_saved(task_id, ids, "the file was missing or changed (ideopipe doctor)")


def _check_store(out_dir: Path, found: Checkup, repair: bool) -> None:
    """Every stored object still hashes to its name."""
    for sha, path in st.Store(out_dir).objects():
        if st.file_sha256(path) != sha:
            found.problems.append(f"{path}: a stored image was changed")
            if repair:
                path.unlink(missing_ok=True)
                found.repaired.append(f"{path}: removed")


def _check_runs(out_dir: Path, journal: Journal | None, found: Checkup) -> None:
    """Runs still marked running (a killed process) and requests still marked sending."""
    with Journal.open_readonly(out_dir) as reader:
        running = [r["run_id"] for r in reader.runs() if r["status"] == RunStatus.RUNNING]
        sending = reader.query("SELECT task_id FROM tasks WHERE status=?", (Status.SENDING,))
    for run_id in running:
        found.problems.append(f"run {run_id} is still marked running (the process was killed)")
    if sending:
        found.problems.append(
            f"{len(sending)} request(s) were in flight when a run was killed: "
            "the next run marks them in_doubt"
        )
    if journal is not None and running:
        journal.mark_runs(running, RunStatus.KILLED)
        found.repaired.extend(f"run {r} marked killed" for r in running)
    if journal is not None and sending:
        journal.set_statuses(
            [r["task_id"] for r in sending],
            Status.IN_DOUBT,
            "a run was killed while this request was in flight",
        )
        found.repaired.append(f"{len(sending)} request(s) marked in_doubt")


def _rebuild(out_dir: Path, db: Path) -> str:
    """Move a broken journal aside and rebuild one from the manifest and the files."""
    from .manifest import read_manifest

    if db.exists():
        aside = db.with_name(f"state.db.broken-{time.strftime('%Y%m%dT%H%M%S')}")
        db.rename(aside)
        for extra in ("-wal", "-shm"):
            db.with_name(db.name + extra).unlink(missing_ok=True)
    found = [out_dir / f"manifest.{e}" for e in ("csv", "parquet", "jsonl")]
    manifest = next((p for p in found if p.exists()), None)
    journal = Journal.open(out_dir)
    try:
        if manifest is None:
            return "a new empty journal was created (no manifest to rebuild from)"
        try:
            frame = read_manifest(manifest)
        except (ValueError, OSError) as exc:  # pandas' and pyarrow's parse errors are ValueErrors
            return f"a new empty journal was created ({manifest} cannot be read: {str(exc).strip()[:200]})"
        missing = [c for c in RESTORE_COLUMNS if c not in frame.columns]
        if missing:
            return (
                f"a new empty journal was created ({manifest} has no column "
                f"{', '.join(missing)}, so nothing in it can be restored)"
            )
        return _restore_rows(out_dir, journal, frame, manifest)
    finally:
        journal.close()


def _restore_rows(out_dir: Path, journal: Journal, frame: Any, manifest: Path) -> str:
    """Tasks and images back into the journal from manifest rows whose files are intact.

    The manifest is untrusted: a row with a value ideopipe may not act on (a seed of 1e400,
    a file outside the folder) is left out, and the answer says which.
    """
    from .manifest_check import problems_by_row, record_lines

    store = st.Store(out_dir)
    tasks: dict[str, tuple[Any, ...]] = {}
    images: list[dict[str, Any]] = []
    refused = problems_by_row(frame, out_dir)
    for n, row in enumerate(frame.itertuples(index=False), 1):
        if n in refused:
            continue
        status = str(row.status)
        file_ok = (
            status == Status.OK
            and isinstance(row.file, str)
            and st.file_sha256(out_dir / row.file) == row.sha256
        )
        if status == Status.OK and not file_ok:
            continue  # the next run downloads it again (or sends it, as nothing proves it)
        if status in (Status.PENDING, Status.SKIPPED_BUDGET, Status.SKIPPED_PARENT):
            continue
        task_status = Status.DONE if file_ok else status
        tasks[row.task_id] = (row.task_id, row.step_id, row.op, row.row_key, task_status)
        if file_ok:
            store.put((out_dir / row.file).read_bytes())
            images.append(
                {
                    "image_id": row.image_id,
                    "task_id": row.task_id,
                    "idx": row.image_index,
                    "seed": row.seed,
                    "api_prompt": row.api_prompt,
                    "url": row.url,
                    "file": row.file,
                    "sha256": row.sha256,
                    "status": Status.OK,
                }
            )
    with journal.transaction() as c:
        c.executemany(
            "INSERT OR IGNORE INTO tasks (task_id, step_id, op, row_key, status) VALUES (?,?,?,?,?)",
            list(tasks.values()),
        )
        c.executemany(
            "INSERT OR REPLACE INTO images (image_id, task_id, idx, seed, api_prompt,"
            " url, file, sha256, status) VALUES (:image_id, :task_id, :idx, :seed,"
            " :api_prompt, :url, :file, :sha256, :status)",
            [image_cells({k: (None if _na(v) else v) for k, v in i.items()}) for i in images],
        )
    done = f"rebuilt the journal from the manifest: {len(tasks)} task(s), {len(images)} image(s)"
    if refused:
        (n, ((column, why), *_)), lines = next(iter(refused.items())), record_lines(manifest)
        where = f"{manifest}:{lines[n - 1]}" if lines and n <= len(lines) else f"{manifest} row {n}"
        done += f"; left out {len(refused)} row(s) it cannot use (e.g. {where}: {column}: {why})"
    return done


def _na(value: Any) -> bool:
    import pandas as pd

    return value is None or bool(pd.isna(value))


def collect_garbage(out_dir: Path, remove: bool) -> st.Garbage:
    """Find, and with `remove` delete, the stored images no task of the journal references."""
    out_dir = Path(out_dir)
    if not Journal.path_for(out_dir).exists():
        raise InputError(f"{out_dir}: no ideopipe journal here")
    with Journal.open_readonly(out_dir) as journal:
        referenced = journal.referenced()
    if remove:  # hold the run lock while deleting, so no run writes meanwhile
        journal_lock = Journal.open(out_dir)
        try:
            referenced |= journal_lock.referenced()
            return st.gc(out_dir, referenced, remove=True)
        finally:
            journal_lock.close()
    return st.gc(out_dir, referenced, remove=False)
