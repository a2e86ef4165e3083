"""The one guarded writer: every write under an output folder goes through here.

A write opens the output folder, then each folder below it, relative to the parent's
descriptor with O_NOFOLLOW | O_DIRECTORY, so a symbolic link planted at any moment (also
during a run) can never redirect a write outside the output folder. The bytes go to a
temporary file beside the target (created with the user's umask, 0644 typically), are
fsynced, renamed over the target, and the folder is fsynced: a crash never leaves a
partial file at the final name.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from .errors import StorageError

#: errors of the disk itself: the run stops (nothing more can be written)
DISK_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
TEMP_SUFFIX_LEN = len(".part") + 1 + 8 + 1  # ".<name>.<8 hex>.part"


class PathRefused(StorageError):
    """This one name cannot be written (too long, a file-versus-folder clash, a link)."""


def write_under(root: Path, rel: str, data: bytes) -> Path:
    """Write `data` to `root/rel` atomically, never following a link; returns the path."""
    with _parent_fd(root, rel) as (fd, name):
        tmp = _temp_name(name)
        try:
            out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666, dir_fd=fd)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(out, view) :]
                os.fsync(out)
            finally:
                os.close(out)
            os.rename(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=fd)
            raise _refused(root, rel, exc) from exc
        with contextlib.suppress(OSError):
            os.fsync(fd)
    return Path(root) / rel


def link_under(root: Path, rel: str, source: Path) -> Path:
    """Make `root/rel` the same file as `source` (a hard link, or a copy where links fail)."""
    with _parent_fd(root, rel) as (fd, name):
        tmp = _temp_name(name)
        try:
            os.link(source, tmp, dst_dir_fd=fd, follow_symlinks=False)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES):
                raise _refused(root, rel, exc) from exc
            return write_under(root, rel, Path(source).read_bytes())
        try:
            os.rename(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=fd)
            raise _refused(root, rel, exc) from exc
        with contextlib.suppress(OSError):
            os.fsync(fd)
    return Path(root) / rel


def open_under(root: Path, rel: str, flags: int) -> int:
    """Open `root/rel` following no link in any folder below `root` nor in the name; raises OSError."""
    with _parent_fd(root, rel, create=False) as (fd, name):
        return os.open(name, flags | os.O_NOFOLLOW, dir_fd=fd)


def write_atomic(dest: Path, data: bytes) -> None:
    """Write `dest` atomically, refusing links in its own name (its folder is trusted)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_under(dest.parent, dest.name, data)


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (best effort where the OS does not allow it)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextmanager
def _parent_fd(root: Path, rel: str, create: bool = True) -> Iterator[tuple[int, str]]:
    """The descriptor of `rel`'s folder under `root` (created as needed) and its last name.

    With `create` false nothing is made and an OSError is raised as it is (for readers).
    """
    parts = PurePosixPath(rel).parts
    if not parts or PurePosixPath(rel).is_absolute() or ".." in parts:
        raise PathRefused(f"{rel!r}: not a path inside {root}")
    try:
        fd = os.open(root, _DIR_FLAGS & ~os.O_NOFOLLOW)  # the folder the user named
    except OSError as exc:
        if not create:
            raise
        raise _refused(root, rel, exc) from exc
    try:
        for part in parts[:-1]:
            try:
                if create:
                    os.mkdir(part, 0o777, dir_fd=fd)
            except FileExistsError:
                pass
            except OSError as exc:
                raise _refused(root, rel, exc) from exc
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if not create:
                    if _is_link(fd, part):
                        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), part) from exc
                    raise
                raise _refused(root, rel, exc, _is_link(fd, part)) from exc
            os.close(fd)
            fd = child
        yield fd, parts[-1]
    finally:
        os.close(fd)


def _temp_name(name: str) -> str:
    return f".{name}.{uuid.uuid4().hex[:8]}.part"


def _is_link(fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _refused(root: Path, rel: str, exc: OSError, link: bool = False) -> StorageError:
    """A disk error stops the run (StorageError); a name error refuses only this file."""
    where = Path(root) / rel
    if exc.errno in DISK_ERRORS:
        return StorageError(f"cannot write {where}: {exc.strerror}")
    if exc.errno == errno.ELOOP or link:
        why = "a symbolic link is in the way (ideopipe never writes through links)"
    elif exc.errno in (errno.ENOTDIR, errno.EISDIR, errno.EEXIST):
        why = "a file and a folder have the same name"
    elif exc.errno == errno.ENAMETOOLONG:
        why = "the name is too long for this file system"
    else:
        why = exc.strerror or str(exc)
    return PathRefused(f"cannot write {where}: {why}")
