"""Writing files so that a crash never leaves a partial file at the final path."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from .errors import StorageError


def write_atomic(dest: Path, data: bytes) -> None:
    """Write to a temp file beside `dest`, fsync it, rename it over `dest`, fsync the folder.

    A full or read-only disk becomes StorageError; the temp file is removed.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        reason = exc.strerror if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS) else exc
        raise StorageError(f"cannot write {dest}: {reason}") from exc
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(dest.parent)


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (best effort where the OS does not allow it)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
