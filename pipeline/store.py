"""The content-addressed store: every downloaded image, kept under its sha256.

`<out>/.ideopipe/objects/ab/cdef…` holds each image the provider returned, whichever
request produced it. Output names are materialised from it as copies (reflinks where the
file system shares blocks), never hard links: editing an output in place leaves the paid
original intact. A changed request never destroys an earlier paid image: reverting an
edit brings the earlier images back at $0, with no request. `gc` removes the objects no
task of the journal references.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .files import copy_under, write_under

OBJECTS = ".ideopipe/objects"


def digest(data: bytes) -> str:
    """The sha256 of bytes, as the store and the journal key them."""
    return hashlib.sha256(data).hexdigest()


class Store:
    """One output folder's object store."""

    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)

    def rel(self, sha256: str) -> str:
        """The object's path relative to the output folder."""
        return f"{OBJECTS}/{sha256[:2]}/{sha256[2:]}"

    def path(self, sha256: str) -> Path:
        """Where an object lives."""
        return self.out_dir / self.rel(sha256)

    def put(self, data: bytes) -> str:
        """Keep bytes (once); returns their sha256."""
        sha = digest(data)
        if not self.has(sha):
            write_under(self.out_dir, self.rel(sha), data)
        return sha

    def has(self, sha256: str | None, verify: bool = False) -> bool:
        """True if the object is stored (and, with verify, still hashes to its name)."""
        if not sha256 or len(sha256) != 64:
            return False
        path = self.path(sha256)
        if not verify:
            return path.is_file()
        return file_sha256(path) == sha256

    def materialise(self, sha256: str, rel: str) -> Path:
        """Make the output name `rel` a copy of the stored image `sha256` (the object stays intact)."""
        return copy_under(self.out_dir, rel, self.path(sha256))

    def objects(self) -> Iterable[tuple[str, Path]]:
        """Every stored object as (sha256, path)."""
        root = self.out_dir / OBJECTS
        if not root.is_dir():
            return
        for sub in sorted(root.iterdir()):
            if sub.is_dir() and not sub.is_symlink() and len(sub.name) == 2:
                for obj in sorted(sub.iterdir()):
                    if obj.is_file() and not obj.name.startswith("."):
                        yield sub.name + obj.name, obj


@dataclass(frozen=True)
class Garbage:
    """What `gc` found (and removed, when `removed` is true)."""

    objects: tuple[Path, ...]
    bytes: int
    removed: bool

    def describe(self) -> str:
        """One line for people."""
        verb = "removed" if self.removed else "would remove"
        return f"{verb} {len(self.objects)} unreferenced image(s), {self.bytes / 1e6:,.1f} MB"


def gc(out_dir: Path, referenced: set[str], remove: bool) -> Garbage:
    """Find (and with `remove`, delete) the objects whose sha256 is not in `referenced`."""
    store = Store(out_dir)
    found = [(sha, p) for sha, p in store.objects() if sha not in referenced]
    size = sum(p.stat().st_size for _, p in found)
    if remove:
        for _, p in found:
            p.unlink(missing_ok=True)
    return Garbage(tuple(p for _, p in found), size, remove)


def file_sha256(path: Path) -> str | None:
    """sha256 of a file, or None if it cannot be read."""
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError:
        return None


def stat_key(path: Path) -> tuple[int, int] | None:
    """(size, mtime in ns) of a file, None when missing: the cheap identity resume trusts."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns
