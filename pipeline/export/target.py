"""The target folder: refuse symlinks and escapes, write by temp file + rename, rewrite nothing unchanged."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import stat
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import Problem, StorageError

INDEX = ".ideopipe-export.json"
INDEX_VERSION = 1
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def check_root(to: Path, out_dir: Path) -> list[Problem]:
    """Problems with the target folder itself: a symlink, a file, or the run's own folder."""
    if to.is_symlink():
        return [Problem("is a symbolic link; give the real folder", file=str(to), path="--to")]
    if to.exists() and not to.is_dir():
        return [Problem("exists and is not a folder", file=str(to), path="--to")]
    real, run = to.resolve(), out_dir.resolve()
    if real == run or run / ".ideopipe" in (real, *real.parents):
        return [
            Problem(
                "is the run's own output folder; export to a folder of its own", file=str(to), path="--to"
            )
        ]
    return []


def check_path(to: Path, name: str) -> str | None:
    """Why `to/name` cannot be written safely (a symlink or a non-folder on the way), or None."""
    here = to
    parts = name.split("/")
    for i, part in enumerate(parts):
        here = here / part
        try:
            st = os.lstat(here)
        except FileNotFoundError:
            return None
        except OSError as exc:
            return f"cannot inspect {'/'.join(parts[: i + 1])!r}: {exc.strerror}"
        last = i == len(parts) - 1
        if stat.S_ISLNK(st.st_mode):
            return f"{'/'.join(parts[: i + 1])!r} is a symbolic link in the target folder"
        if last and not stat.S_ISREG(st.st_mode):
            return f"{name!r} exists and is not a regular file"
        if not last and not stat.S_ISDIR(st.st_mode):
            return f"{'/'.join(parts[: i + 1])!r} exists and is not a folder"
    return None


def make_dirs(to: Path, name: str) -> Path:
    """Create the folders of `to/name` one by one, refusing any symlink; returns the folder."""
    here = to
    for part in name.split("/")[:-1]:
        here = here / part
        with contextlib.suppress(FileExistsError):
            os.mkdir(here)
        if here.is_symlink() or not here.is_dir():
            raise StorageError(f"{here} is not a real folder; export stopped")
    return here


def sha256_file(path: Path) -> str | None:
    """The sha256 of a regular file, or None if there is none."""
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def stage(folder: Path, data: bytes) -> Path:
    """Write `data` to a new temp file in `folder` (fsynced) and return its path."""
    fd, tmp = tempfile.mkstemp(prefix=".export.", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        discard(Path(tmp))
        raise _storage(Path(tmp), exc) from exc
    return Path(tmp)


def commit(tmp: Path, dest: Path) -> None:
    """Rename a staged file over `dest`, unless `dest` has become a symlink meanwhile."""
    if dest.is_symlink():
        discard(tmp)
        raise StorageError(f"{dest} became a symbolic link; export stopped")
    try:
        os.replace(tmp, dest)
    except OSError as exc:
        discard(tmp)
        raise _storage(dest, exc) from exc


def write_if_changed(dest: Path, data: bytes) -> bool:
    """Write `data` to `dest` by temp file + rename unless it already holds exactly that."""
    if sha256_file(dest) == hashlib.sha256(data).hexdigest():
        return False
    commit(stage(dest.parent, data), dest)
    return True


def discard(path: Path) -> None:
    """Remove a temp file, ignoring one already gone."""
    with contextlib.suppress(OSError):
        os.unlink(path)


def _storage(path: Path, exc: OSError) -> StorageError:
    reason = exc.strerror if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS) else exc
    return StorageError(f"cannot write {path}: {reason}")


def read_index(to: Path) -> dict[str, dict[str, Any]]:
    """name -> {key, sha256} of the files an earlier export wrote here ({} if unknown)."""
    try:
        data = json.loads((to / INDEX).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("schema_version") != INDEX_VERSION:
        return {}
    files = data.get("files")
    return files if isinstance(files, dict) else {}


def index_bytes(files: dict[str, dict[str, Any]]) -> bytes:
    """The index file's content (canonical, so an unchanged export rewrites nothing)."""
    doc = {"schema_version": INDEX_VERSION, "files": files}
    return (json.dumps(doc, sort_keys=True, indent=1, ensure_ascii=False) + "\n").encode()


def write_zip(folder: Path, dest: Path, names: Iterable[str]) -> bool:
    """A deterministic zip (sorted, fixed times, stored) of `folder/name` for each name at `dest`."""
    fd, tmp = tempfile.mkstemp(prefix=".export.", suffix=".zip.part", dir=dest.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
            for name in sorted(names):
                info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
                info.external_attr = 0o100644 << 16
                info.create_system = 3
                with open(folder / name, "rb") as src, zf.open(info, "w") as out:
                    while chunk := src.read(1 << 20):
                        out.write(chunk)
        if sha256_file(dest) == sha256_file(Path(tmp)):
            discard(Path(tmp))
            return False
        commit(Path(tmp), dest)
        return True
    except OSError as exc:
        discard(Path(tmp))
        raise _storage(dest, exc) from exc
