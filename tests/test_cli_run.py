"""The run-time commands through the public entry point: run, lock, rerun, runs, report."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.manifest import read_manifest

RECIPE = """
version: 1
name: cli
provider: ideogram
rows:
  - {{sku: A, product: lamp}}
  - {{sku: B, product: chair}}
seed: {seed}
defaults: {{model: V_3, rendering_speed: TURBO, magic_prompt: "{magic}"}}
steps:
  - id: hero
    op: generate
    prompt: "A {{{{ product }}}} in a loft"
    num_images: 2
  - id: remixed
    op: remix
    input: hero
    prompt: "{{{{ input.api_prompt }}}}, as a blueprint"
output:
  dir: out
"""


def recipe(tmp_path: Path, seed: str = "derive", magic: str = "OFF") -> Path:
    path = tmp_path / "cli.yaml"
    path.write_text(RECIPE.format(seed=seed, magic=magic))
    return path


@pytest.fixture
def env(emulator, monkeypatch):
    monkeypatch.setenv("IDEOGRAM_API_KEY", "cli-key")
    monkeypatch.setenv("IDEOPIPE_BASE_URL", emulator.base_url)
    return emulator


def test_run_then_runs_then_report(env, tmp_path, capsys):
    path = recipe(tmp_path)
    assert main(["run", str(path), "--yes"]) == 0
    err = capsys.readouterr().err
    assert "manifest:" in err and "report:" in err
    assert "total" in err
    assert main(["runs", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 2 and " ok" in out
    (tmp_path / "out" / "report.html").unlink()
    assert main(["report", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "report.html").is_file()


def test_run_refuses_to_spend_without_yes_off_a_terminal(env, tmp_path, capsys, monkeypatch):
    with open(os.devnull) as devnull:
        monkeypatch.setattr(sys, "stdin", devnull)
        assert main(["run", str(recipe(tmp_path))]) == 2
    assert "pass --yes" in capsys.readouterr().err
    assert env.ledger()["requests"] == 0


def test_max_cost_refuses_with_exit_2(env, tmp_path, capsys):
    assert main(["run", str(recipe(tmp_path)), "--yes", "--max-cost", "0.05"]) == 2
    assert "over the cap of $0.05" in capsys.readouterr().err
    assert not (tmp_path / "out" / "manifest.csv").exists()


def test_random_seeds_lock_and_reproduce_in_a_fresh_clone(env, tmp_path, capsys):
    path = recipe(tmp_path, seed="random", magic="ON")
    assert main(["run", str(path), "--yes", "--quiet"]) == 0
    first = read_manifest(tmp_path / "out" / "manifest.csv")
    assert first["seed_source"].eq("api").all() and first["seed"].notna().all()
    assert main(["lock", str(path)]) == 0
    lock = json.loads((tmp_path / "cli.yaml.lock.json").read_text())
    assert len(lock["tasks"]) == 6  # 2 hero requests + 4 remixes
    # A teammate's clone: same recipe and lock file, no journal, another output dir.
    assert main(["run", str(path), "--yes", "--quiet", "--out", str(tmp_path / "clone")]) == 0
    second = read_manifest(tmp_path / "clone" / "manifest.csv")
    hero = lambda f: f[f["step_id"] == "hero"].sort_values("seed")  # noqa: E731
    assert list(hero(second)["sha256"]) == list(hero(first)["sha256"])
    assert list(hero(second)["api_prompt"]) == list(hero(first)["api_prompt"])


def test_rerun_by_seed_through_the_cli(env, tmp_path):
    path = recipe(tmp_path, magic="AUTO")
    assert main(["run", str(path), "--yes", "--quiet"]) == 0
    manifest = tmp_path / "out" / "manifest.csv"
    assert (
        main(
            [
                "rerun",
                str(manifest),
                "--step",
                "hero",
                "--where",
                "row_key == '1'",
                "--yes",
                "--quiet",
                "--out",
                str(tmp_path / "again"),
            ]
        )
        == 0
    )
    old = read_manifest(manifest)
    new = read_manifest(tmp_path / "again" / "manifest.csv")
    assert len(new) == 2
    want = old[(old["step_id"] == "hero") & (old["row_key"] == "1")]
    assert sorted(new["sha256"]) == sorted(want["sha256"])


def run_in_child(path: Path, emulator) -> subprocess.Popen[str]:
    env = {**os.environ, "IDEOGRAM_API_KEY": "k", "IDEOPIPE_BASE_URL": emulator.base_url}
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", str(path), "--yes"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_sending(out: Path, child: subprocess.Popen[str], seconds: float = 60) -> None:
    """Block until the child's journal holds a request marked `sending` (it is mid-flight)."""
    db = out / ".ideopipe" / "state.db"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert child.poll() is None, child.communicate()[1]
        if db.exists():
            try:
                with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)) as c:
                    if c.execute("SELECT 1 FROM tasks WHERE status='sending'").fetchone():
                        return
            except sqlite3.OperationalError:
                pass  # the schema is being created
        time.sleep(0.02)
    raise AssertionError("the run never sent a request")


def test_second_run_on_the_same_dir_is_refused(env, tmp_path, capsys):
    env.configure(latency_ms=1500)
    path = recipe(tmp_path)
    child = run_in_child(path, env)
    wait_for_sending(tmp_path / "out", child)
    assert main(["run", str(path), "--yes"]) == 1
    assert "in use by another ideopipe run" in capsys.readouterr().err
    _, err = child.communicate(timeout=60)
    assert child.returncode == 0, err


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_stop_signal_finishes_in_flight_and_writes_the_manifest(env, tmp_path, sig, code):
    env.configure(latency_ms=800)
    child = run_in_child(recipe(tmp_path), env)
    wait_for_sending(tmp_path / "out", child)
    child.send_signal(sig)
    _, err = child.communicate(timeout=60)
    assert child.returncode == code, err
    assert "Traceback" not in err
    assert "letting requests in flight finish" in err
    frame = read_manifest(tmp_path / "out" / "manifest.csv")
    assert len(frame) == 8
    assert "in_doubt" not in set(frame["status"])  # in-flight requests were let finish
    ok = frame[frame["status"] == "ok"]
    assert len(ok) >= 1 and env.ledger()["billed_total"] == len(ok)  # every paid image kept
    for row in ok.itertuples():
        assert (tmp_path / "out" / row.file).is_file()
    with closing(sqlite3.connect(tmp_path / "out" / ".ideopipe" / "state.db")) as c:
        assert [r[0] for r in c.execute("SELECT status FROM runs")] == ["interrupted"]


def test_a_second_signal_quits_at_once_and_the_next_run_recovers(env, tmp_path):
    env.configure(latency_ms=3000)
    path = recipe(tmp_path)
    child = run_in_child(path, env)
    wait_for_sending(tmp_path / "out", child)
    child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    err = ""
    while "letting requests in flight finish" not in err and time.monotonic() < deadline:
        line = child.stderr.readline() if child.stderr else ""
        err += line
        if not line and child.poll() is not None:
            break
    child.send_signal(signal.SIGTERM)
    child.communicate(timeout=30)
    assert child.returncode == 143
    env.configure(latency_ms=0)
    assert main(["run", str(path), "--yes", "--quiet"]) in (0, 1)
    with closing(sqlite3.connect(tmp_path / "out" / ".ideopipe" / "state.db")) as c:
        statuses = [r[0] for r in c.execute("SELECT status FROM runs ORDER BY started_at")]
    assert statuses[0] == "killed" and "running" not in statuses


def test_a_corrupt_journal_is_one_clear_sentence(env, tmp_path, capsys):
    path = recipe(tmp_path)
    state = tmp_path / "out" / ".ideopipe"
    state.mkdir(parents=True)
    (state / "state.db").write_bytes(b"garbage" * 1000)
    assert main(["run", str(path), "--yes"]) == 2
    err = capsys.readouterr().err
    assert "journal is damaged" in err and "ideopipe doctor" in err and "Traceback" not in err
    assert env.ledger()["requests"] == 0
