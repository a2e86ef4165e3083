"""The guarded writer: atomic, umask modes, never through a symbolic link, clear refusals."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import subprocess
from pathlib import Path

import pytest

from pipeline.errors import StorageError
from pipeline.files import PathRefused, copy_under, is_temp_name, sweep_temporaries, temp_name, write_under


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def test_writes_atomically_with_the_users_umask(out):
    old = os.umask(0o022)
    try:
        path = write_under(out, "a/b/c.png", b"data")
    finally:
        os.umask(old)
    assert path.read_bytes() == b"data"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's 0600
    assert [p.name for p in (out / "a" / "b").iterdir()] == ["c.png"]  # no temp file left


@pytest.mark.parametrize(
    ("prepare", "rel", "why"),
    [
        (lambda o: (o / "x.png").write_bytes(b"file"), "x.png/y.png", "a file and a folder"),
        (lambda o: (o / "x.png").mkdir(), "x.png", "a file and a folder"),
        (lambda o: None, "n" * 250 + ".png", "too long"),
        (lambda o: None, "../escape.png", "not a path inside"),
        (lambda o: None, "/etc/escape.png", "not a path inside"),
    ],
)
def test_names_the_file_system_refuses_are_refused_one_by_one(out, prepare, rel, why):
    prepare(out)
    with pytest.raises(PathRefused, match=why):
        write_under(out, rel, b"data")


def test_a_link_planted_between_check_and_write_is_not_followed(out, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    write_under(out, "hero/1.png", b"first")  # the folder existed and was checked at plan time
    # the race, made deterministic: the folder is swapped for a link right before the write
    (out / "hero" / "1.png").unlink()
    (out / "hero").rmdir()
    (out / "hero").symlink_to(outside, target_is_directory=True)
    with pytest.raises(PathRefused, match="symbolic link"):
        write_under(out, "hero/2.png", b"second")
    with pytest.raises(PathRefused, match="symbolic link"):
        copy_under(out, "hero/3.png", out / "hero" / "..")
    assert list(outside.iterdir()) == []


def test_a_link_at_the_final_name_is_replaced_not_followed(out, tmp_path):
    target = tmp_path / "precious.txt"
    target.write_bytes(b"keep me")
    (out / "img.png").symlink_to(target)
    write_under(out, "img.png", b"image")
    assert target.read_bytes() == b"keep me"
    assert not (out / "img.png").is_symlink() and (out / "img.png").read_bytes() == b"image"


@pytest.mark.parametrize("fails", [(), ("ioctl",), ("ioctl", "copy_file_range")])
def test_copy_never_shares_the_file_whichever_way_it_copies(out, monkeypatch, fails):
    data = bytes(range(256)) * 9000  # over one read chunk
    source = write_under(out, ".ideopipe/objects/ab/cd", data)

    def unsupported(*args, **kwargs):
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    for name in fails:
        monkeypatch.setattr(fcntl if name == "ioctl" else os, name, unsupported)
    copied = copy_under(out, "one.png", source)
    assert copied.read_bytes() == data
    assert copied.stat().st_ino != source.stat().st_ino and source.stat().st_nlink == 1
    assert [p.name for p in out.iterdir() if p.name.endswith(".part")] == []


def test_only_the_writers_own_temporary_names_match():
    name = temp_name("hero.png")
    assert is_temp_name(name) and name.startswith(".hero.png.")
    for other in (".draft.part", ".hero.png.part", ".x.1234567.part", ".x.ABCDEF12.part", "x.12345678.part"):
        assert not is_temp_name(other), other


def test_a_full_disk_is_a_storage_error_that_stops_the_run(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True, text=True
    )
    assert done.returncode == 0, f"cannot mount a tmpfs to fill up: {done.stderr}"
    try:
        with pytest.raises(StorageError, match="No space left") as caught:
            write_under(mount, "big/file.png", b"x" * 200_000)
        assert not isinstance(caught.value, PathRefused)  # the run stops, not just this file
        assert [p.name for p in (mount / "big").iterdir()] == []  # no temp file left
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_the_sweep_removes_only_the_writers_own_leftovers(out, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    theirs = outside / temp_name("x.png")
    theirs.write_bytes(b"not ours: behind a link")
    (out / "link").symlink_to(outside, target_is_directory=True)
    (out / "notes").mkdir()
    user = [out / "notes" / ".draft.part", out / ".x.part", out / "notes" / ".a.ABCDEF12.part"]
    for path in user:
        path.write_text("a user's file")
    ours = [out / temp_name("a.png"), out / "notes" / temp_name("b.png")]
    for path in ours:
        path.write_bytes(b"half an image")
    assert sweep_temporaries(out) == 2
    assert [p.exists() for p in ours] == [False, False]
    assert all(p.exists() for p in user) and theirs.exists()
