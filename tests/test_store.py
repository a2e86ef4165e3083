"""The content-addressed store: keyed by sha256, materialised by copy, collected by gc."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pipeline.store import OBJECTS, Store, gc


def test_put_is_keyed_by_sha256_and_idempotent(tmp_path: Path):
    store = Store(tmp_path)
    sha = store.put(b"image bytes")
    assert sha == hashlib.sha256(b"image bytes").hexdigest()
    assert store.path(sha) == tmp_path / OBJECTS / sha[:2] / sha[2:]
    mtime = store.path(sha).stat().st_mtime_ns
    assert store.put(b"image bytes") == sha and store.path(sha).stat().st_mtime_ns == mtime
    assert [s for s, _ in store.objects()] == [sha]


def test_has_verifies_the_bytes_when_asked(tmp_path: Path):
    store = Store(tmp_path)
    sha = store.put(b"original")
    assert store.has(sha, verify=True)
    store.path(sha).write_bytes(b"tampered")
    assert store.has(sha) and not store.has(sha, verify=True)
    assert not store.has(None) and not store.has("abc")


def test_materialise_copies_the_object_so_editing_the_output_keeps_it(tmp_path: Path):
    store = Store(tmp_path)
    sha = store.put(b"picture")
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "hero.png").write_bytes(b"a newer, different picture")
    path = store.materialise(sha, "1/hero.png")
    assert path.read_bytes() == b"picture"
    assert path.stat().st_ino != store.path(sha).stat().st_ino and path.stat().st_nlink == 1
    with open(path, "r+b") as f:  # an in-place edit, as mogrify does
        f.write(b"PAINT")
    assert store.has(sha, verify=True)  # the paid original is untouched
    assert store.materialise(sha, "1/hero.png").read_bytes() == b"picture"


def test_gc_lists_then_removes_only_unreferenced_objects(tmp_path: Path):
    store = Store(tmp_path)
    keep, drop = store.put(b"kept"), store.put(b"dropped")
    found = gc(tmp_path, {keep}, remove=False)
    assert [p.name for p in found.objects] == [drop[2:]] and found.bytes == len(b"dropped")
    assert "would remove 1" in found.describe() and store.has(drop)
    done = gc(tmp_path, {keep}, remove=True)
    assert "removed 1" in done.describe()
    assert store.has(keep) and not store.has(drop)
