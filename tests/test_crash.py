"""kill -9 at random moments, resume each time; nothing paid for is lost or paid twice."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from pipeline.journal import file_sha256
from pipeline.manifest import read_manifest

RECIPE = """
version: 1
name: crash
provider: ideogram
rows:
  csv: rows.csv
  key: "{{ sku }}"
seed: derive
defaults: {model: V_3, rendering_speed: TURBO, magic_prompt: "OFF"}
steps:
  - id: hero
    op: generate
    prompt: "{{ product }} poster"
    aspect_ratio: 1x1
    num_images: 2
  - id: remixed
    op: remix
    input: hero
    prompt: "{{ product }} as a linocut"
output:
  dir: out
"""


def kill_loop(emulator, folder: Path, rows: int, kills: int, rng: random.Random) -> dict:
    (folder / "rows.csv").write_text("sku,product\n" + "".join(f"S{i:04d},thing {i}\n" for i in range(rows)))
    recipe = folder / "crash.yaml"
    recipe.write_text(RECIPE)
    cmd = [
        sys.executable,
        "-m",
        "pipeline",
        "run",
        str(recipe),
        "--yes",
        "--quiet",
        "--base-url",
        emulator.base_url,
        "--concurrency",
        "6",
    ]
    env = {**os.environ, "IDEOGRAM_API_KEY": "crash-key"}
    killed = 0
    for _ in range(kills):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 1.6))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait()
    final = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    return {"killed": killed, "final": final, "out": folder / "out"}


@pytest.mark.slow
def test_kill_loop_keeps_every_paid_image(emulator, tmp_path: Path):
    emulator.configure(latency_ms=120)
    outcome = kill_loop(emulator, tmp_path, rows=15, kills=12, rng=random.Random(11))
    out = outcome["out"]
    frame = read_manifest(out / "manifest.csv")
    assert len(frame) == 60  # 15 rows x (2 hero + 2 remix)
    statuses = Counter(frame["status"])
    # every planned image is on disk and intact, or honestly in_doubt (or below one)
    assert set(statuses) <= {"ok", "in_doubt", "skipped_parent"}, statuses
    for row in frame[frame["status"] == "ok"].itertuples():
        assert file_sha256(out / row.file) == row.sha256
    # no request billed twice, except the in_doubt ones
    ledger = emulator.ledger()
    billed = Counter(e["request_sha256"] for e in ledger["entries"] if e["billed"])
    doubled = sum(n - 1 for n in billed.values() if n > 1)
    assert doubled == 0
    in_doubt = statuses.get("in_doubt", 0)
    assert ledger["billed_total"] <= 60 + in_doubt
    ok = statuses.get("ok", 0)
    assert ledger["billed_total"] >= ok
    # no partial file sits at a final path, and no temp file was left behind for long
    for p in out.rglob("*.png"):
        assert file_sha256(p) in set(frame["sha256"].dropna()), p
    print(
        f"\nkill loop: {outcome['killed']} kills, {ok} ok, {in_doubt} in_doubt, "
        f"{ledger['billed_total']} billed, {doubled} billed twice"
    )


@pytest.fixture
def small_disk(tmp_path: Path):
    """A real 192 KiB tmpfs (this needs root, as CI and the dev machines have)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=192k", "tmpfs", str(mount)], capture_output=True, text=True
    )
    assert done.returncode == 0, f"cannot mount a tmpfs to fill up: {done.stderr}"
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.slow
def test_disk_full_stops_cleanly_and_resumes(emulator, small_disk: Path, tmp_path: Path):
    import sqlite3

    (tmp_path / "rows.csv").write_text("sku,product\n" + "".join(f"S{i:04d},thing {i}\n" for i in range(20)))
    recipe = tmp_path / "full.yaml"
    recipe.write_text(RECIPE.replace("dir: out", f"dir: {small_disk}"))
    cmd = [sys.executable, "-m", "pipeline", "run", str(recipe), "--yes", "--base-url", emulator.base_url]
    env = {**os.environ, "IDEOGRAM_API_KEY": "disk-key"}
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 1, first.stderr
    assert "Traceback" not in first.stderr
    assert "No space left" in first.stderr or "full" in first.stderr, first.stderr
    print("\n" + first.stderr.strip().splitlines()[-1])
    conn = sqlite3.connect(small_disk / ".ideopipe" / "state.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    recorded = dict(conn.execute("SELECT file, sha256 FROM images WHERE status='ok'").fetchall())
    conn.close()
    for png in small_disk.rglob("*.png"):  # every final file is whole and journaled
        rel = png.relative_to(small_disk).as_posix()
        assert recorded.get(rel) == file_sha256(png), rel
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    frame = read_manifest(small_disk / "manifest.csv")
    assert len(frame) == 80
    assert set(frame["status"]) <= {"ok", "in_doubt", "skipped_parent"}, second.stderr
    billed = Counter(e["request_sha256"] for e in emulator.ledger()["entries"] if e["billed"])
    assert all(n == 1 for n in billed.values())


@pytest.mark.slow
def test_fault_storm_ends_honestly_and_the_ledger_matches(emulator, tmp_path: Path):
    from pipeline import api
    from pipeline.runner import RunOptions

    emulator.configure(
        fault_rate=0.3, faults=("429", "500", "503", "drop", "accept_drop", "truncate", "slow")
    )
    (tmp_path / "rows.csv").write_text("sku,product\n" + "".join(f"S{i:04d},thing {i}\n" for i in range(25)))
    recipe = tmp_path / "storm.yaml"
    recipe.write_text(RECIPE)
    result = api.run_file(
        recipe,
        RunOptions(base_url=emulator.base_url, yes=True, quiet=True, environ={"IDEOGRAM_API_KEY": "storm"}),
    )
    frame = read_manifest(result.manifest)
    statuses = Counter(frame["status"])
    assert set(statuses) <= {"ok", "in_doubt", "skipped_parent", "failed"}, statuses
    failed = frame[frame["status"] == "failed"]
    # a failed image here is one whose every download attempt was cut short
    assert failed["error"].str.contains("download failed").all(), list(failed["error"])
    assert (failed["cost_usd"] > 0).all()  # it was billed all the same
    ledger = emulator.ledger()
    dropped_after_billing = sum(1 for e in ledger["entries"] if e["outcome"] == "accept_drop")
    # image for image: everything billed is on disk, failed to download, or is in_doubt
    assert ledger["billed_total"] == statuses["ok"] + len(failed) + dropped_after_billing
    assert dropped_after_billing <= statuses["in_doubt"]
    for row in frame[frame["status"] == "ok"].itertuples():
        assert file_sha256(result.out_dir / row.file) == row.sha256
    print(
        f"\nfault storm: {dict(statuses)}; billed {ledger['billed_total']}, "
        f"rejected {sum(ledger['rejected'].values())}"
    )
