"""The journal: schema version and migration, defensive storage, answers, doctor."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.errors import PathError
from pipeline.journal import SCHEMA_VERSION, Answer, Journal, JournalCorrupt
from pipeline.status import Status
from pipeline.store import Store
from pipeline.upkeep import doctor

V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (run_id TEXT PRIMARY KEY, recipe TEXT, recipe_sha256 TEXT, recipe_name TEXT,
    description TEXT, provider TEXT, started_at TEXT, finished_at TEXT, status TEXT,
    planned_usd REAL, budget_usd REAL, spent_usd REAL DEFAULT 0, info TEXT);
CREATE TABLE tasks (task_id TEXT PRIMARY KEY, run_id TEXT, step_id TEXT, op TEXT, row_key TEXT,
    status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, error TEXT, cost_usd REAL,
    spec TEXT, updated_at REAL);
CREATE TABLE attempts (attempt_id INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT NOT NULL,
    run_id TEXT, started_at REAL, finished_at REAL, status TEXT, http_status INTEGER,
    error TEXT, latency_s REAL);
CREATE TABLE responses (task_id TEXT PRIMARY KEY, attempt_id INTEGER, body TEXT,
    received_at REAL, params TEXT);
CREATE TABLE images (image_id TEXT PRIMARY KEY, task_id TEXT NOT NULL, idx INTEGER,
    seed INTEGER, api_prompt TEXT, url TEXT, is_image_safe INTEGER, resolution TEXT,
    style_type TEXT, description TEXT, file TEXT, sha256 TEXT, width INTEGER, height INTEGER,
    bytes INTEGER, status TEXT, error TEXT, updated_at REAL);
INSERT INTO meta VALUES ('schema_version', '1');
INSERT INTO tasks (task_id, status) VALUES ('t1', 'done');
INSERT INTO images (image_id, task_id, status, file) VALUES ('i1', 't1', 'cached', 'a.png');
"""


def db(out: Path) -> Path:
    return Journal.path_for(out)


def make(out: Path, script: str) -> None:
    db(out).parent.mkdir(parents=True)
    with closing(sqlite3.connect(db(out))) as conn:
        conn.executescript(script)


def test_a_new_journal_records_its_version(tmp_path):
    Journal.open(tmp_path).close()
    with closing(sqlite3.connect(db(tmp_path))) as conn:
        version = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    assert version == (str(SCHEMA_VERSION),)


def test_an_older_journal_is_migrated_in_place(tmp_path):
    make(tmp_path, V1)
    journal = Journal.open(tmp_path)
    try:
        state = journal.states(["t1"])["t1"]
        assert state.images[0]["status"] == Status.OK and "mtime_ns" in state.images[0]
        assert journal.answered() == set()
    finally:
        journal.close()
    with Journal.open_readonly(tmp_path) as reader:
        assert reader.query("SELECT value FROM meta")[0]["value"] == str(SCHEMA_VERSION)


def test_a_newer_journal_is_refused_with_what_to_do(tmp_path):
    make(
        tmp_path,
        f"CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        f"INSERT INTO meta VALUES ('schema_version', '{SCHEMA_VERSION + 1}');",
    )
    with pytest.raises(JournalCorrupt, match=r"newer ideopipe.*upgrade"):
        Journal.open(tmp_path)


def test_a_corrupt_journal_says_how_to_recover(tmp_path, capsys):
    db(tmp_path).parent.mkdir(parents=True)
    db(tmp_path).write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(JournalCorrupt, match=r"ideopipe doctor .* --repair"):
        Journal.open(tmp_path)
    assert main(["doctor", str(tmp_path)]) == 1
    assert "damaged" in capsys.readouterr().out
    assert main(["doctor", str(tmp_path), "--repair"]) == 0
    assert "a new empty journal" in capsys.readouterr().out
    Journal.open(tmp_path).close()  # usable again
    assert list(db(tmp_path).parent.glob("state.db.broken-*"))


@pytest.mark.parametrize("planted", [".ideopipe", ".ideopipe/state.db", ".ideopipe/state.db-wal"])
def test_a_planted_link_in_the_state_folder_is_refused_before_anything_is_written(tmp_path, planted):
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    (out / ".ideopipe").mkdir(parents=True)
    if planted == ".ideopipe":
        (out / ".ideopipe").rmdir()
    (out / planted).symlink_to(outside / "x" if "db" in planted else outside)
    with pytest.raises(PathError, match=r"is a symbolic link: .*remove") as caught:
        Journal.open(out)
    assert caught.value.exit_code == 2 and list(outside.iterdir()) == []
    assert not (out / ".ideopipe" / "lock").exists()  # the lock is not touched either


def test_a_state_folder_that_is_a_file_is_refused(tmp_path):
    (tmp_path / ".ideopipe").write_text("not a folder")
    with pytest.raises(PathError, match="is not a folder"):
        Journal.open(tmp_path)


def test_server_values_are_stored_whatever_their_type(tmp_path):
    journal = Journal.open(tmp_path)
    try:
        journal.register([("t1", "hero", "generate", "1", 0.03, "{}")], "")
        attempt = journal.sending("t1", "run-1")
        odd = {
            "image_id": "i1",
            "idx": 0,
            "seed": 2**70,
            "api_prompt": ["a", "list"],
            "url": {"not": "a string"},
            "is_image_safe": "yes",
            "resolution": 1024,
            "style_type": None,
            "description": None,
            "file": "a.png",
            "status": Status.PENDING,
        }
        journal.responded(
            "t1", attempt, Answer('{"seed": 1180591620717411303424}', {"seed": 2**70}), [odd], {"prompt": "p"}
        )
        state = journal.states(["t1"])["t1"]
        assert state.status == Status.RESPONDED and journal.answered() == {"t1"}
        img = state.images[0]
        assert img["seed"] is None and img["api_prompt"] == '["a", "list"]'
        assert img["is_image_safe"] is None and img["resolution"] == "1024"
        assert journal.response("t1")["raw"] == '{"seed": 1180591620717411303424}'
    finally:
        journal.close()


def test_text_sqlite_cannot_hold_is_stored_with_a_replacement_character(tmp_path):
    journal = Journal.open(tmp_path)
    try:
        journal.register(
            [("t1", "hero", "generate", "1", 0.03, "{}"), ("t2", "hero", "generate", "2", 0.03, "{}")], ""
        )
        attempt = journal.sending("t1", "run-1")
        img = {
            "image_id": "i1",
            "idx": 0,
            "api_prompt": "\ud800 odd",
            "url": "http://h/\udfff.png",
            "file": "a.png",
            "status": Status.PENDING,
        }
        journal.responded("t1", attempt, Answer("raw \ud800", {"prompt": "\ud800"}, "why \ud800"), [img])
        state = journal.states(["t1"])["t1"]
        assert state.status == Status.RESPONDED and journal.answered() == {"t1"}
        assert (
            state.images[0]["api_prompt"] == "\ufffd odd" and state.images[0]["url"] == "http://h/\ufffd.png"
        )
        assert journal.response("t1")["raw"] == "raw \ufffd"
        second = journal.sending("t2", "run-1")
        journal.attempt_failed("t2", second, "ServerError", 500, "boom \ud800", Status.IN_DOUBT)
        assert journal.states(["t2"])["t2"].status == Status.IN_DOUBT
        assert journal.states(["t2"])["t2"].error == "boom \ufffd"
    finally:
        journal.close()


def test_doctor_restores_a_changed_file_from_the_store(tmp_path, capsys):
    journal = Journal.open(tmp_path)
    sha = Store(tmp_path).put(b"the paid image")
    Store(tmp_path).materialise(sha, "1/hero.png")
    journal.register([("t1", "hero", "generate", "1", 0.03, "{}")], "")
    attempt = journal.sending("t1", "run-1")
    journal.responded(
        "t1",
        attempt,
        Answer("{}", {}),
        [{"image_id": "i1", "idx": 0, "file": "1/hero.png", "status": Status.PENDING}],
    )
    journal.task_done("t1", [{"image_id": "i1", "status": Status.OK, "file": "1/hero.png", "sha256": sha}])
    journal.close()
    (tmp_path / "1" / "hero.png").unlink()
    (tmp_path / "1" / "hero.png").write_bytes(b"something else")
    found = doctor(tmp_path)
    assert found.problems == ["1/hero.png: missing or changed"] and not found.healthy
    assert main(["doctor", str(tmp_path), "--repair"]) == 0
    assert "restored from the store" in capsys.readouterr().out
    assert (tmp_path / "1" / "hero.png").read_bytes() == b"the paid image"
    assert doctor(tmp_path).problems == []


def test_repair_rebuilds_a_lost_journal_from_the_manifest_and_files(emulator, write_recipe):
    from conftest import TEST_KEY

    from pipeline import api
    from pipeline.runner import RunOptions

    path = write_recipe("""
        version: 1
        name: rebuild
        provider: ideogram
        rows:
          - {sku: A1, product: kettle}
          - {sku: B2, product: teapot}
        seed: derive
        defaults: {model: V_3, rendering_speed: TURBO, magic_prompt: "OFF"}
        steps:
          - id: hero
            op: generate
            prompt: "A {{ product }}"
            num_images: 2
        output:
          dir: out
        """)

    def options() -> RunOptions:
        return RunOptions(base_url=emulator.base_url, environ={"IDEOGRAM_API_KEY": TEST_KEY}, yes=True)

    first = api.run_file(path, options())
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        (first.out_dir / ".ideopipe" / name).unlink(missing_ok=True)
    db(first.out_dir).write_bytes(b"\0" * 4096)  # a corrupted journal
    found = doctor(first.out_dir, repair=True)
    assert found.healthy and "4 task(s), 4 image(s)" in found.repaired[0]
    sent = emulator.ledger()["requests"]
    again = api.run_file(path, options())
    assert emulator.ledger()["requests"] == sent  # nothing paid for is sent again
    assert again.exit_code == 0 and again.counts == {"ok": 4}
