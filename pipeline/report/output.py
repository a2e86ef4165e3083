"""Writing the report's files atomically, with the modes the user's umask gives (0644 usually).

`files.write_atomic` makes its temp file with `mkstemp`, which is always 0600: right for
the journal, wrong for a page a user means to share. Here the temp file is created with
0666 and the kernel applies the umask, exactly as for any file the user makes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path

from ..errors import StorageError
from ..files import fsync_dir


def write_public(dest: Path, data: bytes, *, durable: bool = True) -> None:
    """Write `data` to `dest` through a temp file and a rename; mode 0666 minus the umask.

    `durable=False` skips the fsyncs: for caches (thumbnails) that are rebuilt if lost.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.part")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
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
    if durable:
        fsync_dir(dest.parent)
