"""The one guarded writer: every write under an output folder goes through here.

A write opens the output folder, then each folder below it, relative to the parent's
descriptor with O_NOFOLLOW | O_DIRECTORY, so a symbolic link planted at any moment (also
during a run) can never redirect a write outside the output folder. The bytes go to a
temporary file beside the target (created with the user's umask, 0644 typically), are
fsynced, renamed over the target, and the folder is fsynced: a crash never leaves a
partial file at the final name. An output made from another file is a copy (a reflink
where the file system can), never a hard link, so editing it cannot change the source.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from .errors import PathError, StorageError

#: errors of the disk itself: the run stops (nothing more can be written)
DISK_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
TEMP_SUFFIX_LEN = len(".part") + 1 + 8 + 1  # ".<name>.<8 hex>.part"
#: the guarded writer's temporary names, and only those: ".<name>.<8 hex>.part"
TEMP_NAME = re.compile(r"\..+\.[0-9a-f]{8}\.part", re.DOTALL)
_FICLONE = 0x40049409  # Linux ioctl: share the source's blocks (btrfs, XFS, bcachefs)


class PathRefused(StorageError):
    """This one name cannot be written (too long, a file-versus-folder clash, a link)."""


def write_under(root: Path, rel: str, data: bytes) -> Path:
    """Write `data` to `root/rel` atomically, never following a link; returns the path."""

    def fill(out: int) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(out, view) :]

    return _replace(root, rel, fill)


def copy_under(root: Path, rel: str, source: Path) -> Path:
    """Make `root/rel` a copy of `source` (a reflink where the file system shares blocks).

    Never a hard link: a tool that rewrites an output in place must not be able to
    change the source (the store's paid original).
    """
    try:
        src = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise _refused(root, rel, exc) from exc
    try:
        return _replace(root, rel, lambda out: _clone(src, out))
    finally:
        os.close(src)


def open_under(root: Path, rel: str, flags: int) -> int:
    """Open `root/rel` following no link in any folder below `root` nor in the name; raises OSError."""
    with _parent_fd(root, rel, create=False) as (fd, name):
        return os.open(name, flags | os.O_NOFOLLOW, dir_fd=fd)


def write_atomic(dest: Path, data: bytes) -> None:
    """Write `dest` atomically, refusing links in its own name (its folder is trusted)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_under(dest.parent, dest.name, data)


def own_folder(root: Path, name: str) -> int:
    """Open (creating) the folder `root/name` without following a link; its descriptor.

    For ideopipe's own state (`.ideopipe`): a link planted there would send the journal
    and the run lock elsewhere, so a link, or anything not a folder, is refused (exit 2).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)  # the folder the user named (trusted)
    where = root / name
    with contextlib.suppress(FileExistsError):
        os.mkdir(where, 0o777)
    try:
        return os.open(where, _DIR_FLAGS)
    except OSError as exc:
        what = "a symbolic link" if where.is_symlink() else "not a folder"
        raise PathError(
            f"{where} is {what}: ideopipe keeps its journal only in a real folder inside "
            "the output folder, so remove it (or choose another output.dir or --out)"
        ) from exc


def sweep_temporaries(root: Path) -> int:
    """Remove the writer's own leftover temporary files under `root` (after a killed run).

    Only names `is_temp_name` matches are removed; links to folders are not followed.
    Returns how many were removed.
    """
    removed = 0
    for _, _, names, dir_fd in os.fwalk(root, follow_symlinks=False):
        for name in names:
            if is_temp_name(name):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=dir_fd)
                    removed += 1
    return removed


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


def _replace(root: Path, rel: str, fill: Callable[[int], None]) -> Path:
    """Fill a new temporary file beside `root/rel`, fsync it, and rename it over the name."""
    with _parent_fd(root, rel) as (fd, name):
        tmp = temp_name(name)
        try:
            out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666, dir_fd=fd)
            try:
                fill(out)
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


def _clone(src: int, out: int) -> None:
    """Copy a whole file: a reflink (FICLONE), else an in-kernel copy, else read and write."""
    with contextlib.suppress(OSError):
        fcntl.ioctl(out, _FICLONE, src)
        return
    size = os.fstat(src).st_size
    done = 0
    with contextlib.suppress(OSError, AttributeError):  # not on this kernel or file system
        while done < size:
            step = os.copy_file_range(src, out, size - done, done, done)
            if step == 0:
                break
            done += step
    while True:
        chunk = os.pread(src, 1 << 20, done)
        if not chunk:
            break
        view = memoryview(chunk)
        while view:
            step = os.pwrite(out, view, done)
            view = view[step:]
            done += step


def temp_name(name: str) -> str:
    """The temporary name a write of `name` goes through (TEMP_NAME matches it)."""
    return f".{name}.{uuid.uuid4().hex[:8]}.part"


def is_temp_name(name: str) -> bool:
    """True for a name the guarded writer uses while writing (a leftover after a kill)."""
    return TEMP_NAME.fullmatch(name) is not None


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
