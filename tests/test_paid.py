"""Never lose what was paid for: a recorded answer is never sent again, whatever fails locally."""

from __future__ import annotations

import io
import json
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import TEST_KEY
from PIL import Image

from pipeline import api
from pipeline.manifest import read_manifest
from pipeline.runner import EventKind, RunOptions
from pipeline.store import Store, file_sha256

RECIPE = """
version: 1
name: paid
provider: ideogram
rows:
  - {sku: A1, product: kettle}
  - {sku: B2, product: teapot}
seed: derive
defaults: {model: V_3, rendering_speed: TURBO, magic_prompt: "OFF"}
steps:
  - id: hero
    op: generate
    prompt: "A {{ product }} on a table"
    num_images: 2
  - id: remixed
    op: remix
    input: hero
    prompt: "{{ product }} as a watercolour"
output:
  dir: out
"""


def options(base_url: str, **kw) -> RunOptions:
    return RunOptions(base_url=base_url, environ={"IDEOGRAM_API_KEY": TEST_KEY}, yes=True, **kw)


def requests_made(emulator) -> int:
    return int(emulator.ledger()["requests"])


def once_each(emulator) -> bool:
    """No request was billed twice."""
    billed = Counter(e["request_sha256"] for e in emulator.ledger()["entries"] if e["billed"])
    return all(n == 1 for n in billed.values())


def journal_rows(out: Path, sql: str) -> list[tuple]:
    with closing(sqlite3.connect(out / ".ideopipe" / "state.db")) as conn:
        return conn.execute(sql).fetchall()


# -- a scriptable server for answers the emulator never gives ---------------------------


class OddServer:
    """A real HTTP server on 127.0.0.1 whose 200 answers a test writes."""

    def __init__(self) -> None:
        self.answer: bytes = b"{}"
        self.posts = 0
        buf = io.BytesIO()
        Image.new("RGB", (8, 8), (200, 30, 30)).save(buf, "PNG")
        self.png = buf.getvalue()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.posts += 1
                self._send(server.answer, "application/json")

            def do_GET(self) -> None:
                self._send(server.png, "image/png")

            def _send(self, body: bytes, kind: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def odd() -> Iterator[OddServer]:
    server = OddServer()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


ONE = """
version: 1
name: odd
provider: ideogram
rows:
  - {sku: A1, product: kettle}
seed: derive
defaults: {model: V_3, rendering_speed: TURBO, magic_prompt: "OFF"}
steps:
  - id: hero
    op: generate
    prompt: "A {{ product }}"
output:
  dir: out
"""


def test_an_unreadable_200_is_recorded_and_never_sent_again(odd, write_recipe):
    odd.answer = b"<html>oops, not json</html>"
    path = write_recipe(ONE)
    first = api.run_file(path, options(odd.url))
    assert odd.posts == 1 and first.exit_code == 1
    frame = read_manifest(first.manifest)
    assert list(frame["status"]) == ["failed"]
    assert "paid, but the answer is not JSON" in frame["error"].iloc[0]
    assert frame["cost_usd"].iloc[0] > 0  # billed: it ran
    raw = journal_rows(first.out_dir, "SELECT raw, problem FROM responses")
    assert raw[0][0] == "<html>oops, not json</html>" and "not JSON" in raw[0][1]
    again = api.run_file(path, options(odd.url, retry_failed=True))
    assert odd.posts == 1  # --retry-failed never re-sends a recorded answer
    assert read_manifest(again.manifest)["status"].iloc[0] == "failed"


def test_odd_server_values_never_crash_the_journal(odd, write_recipe):
    odd.answer = json.dumps(
        {
            "created": ["a", "list"],
            "data": [
                {
                    "url": f"{odd.url}/img.png",
                    "seed": 2**70,
                    "prompt": "p",
                    "style_type": ["A", "B"],
                    "resolution": {"w": 1},
                    "is_image_safe": True,
                    "surprise": {"nested": [1, 2]},
                }
            ],
        }
    ).encode()
    result = api.run_file(write_recipe(ONE), options(odd.url))
    assert result.exit_code == 0, result.failures
    frame = read_manifest(result.manifest)
    assert list(frame["status"]) == ["ok"]
    body = journal_rows(result.out_dir, "SELECT body FROM responses")[0][0]
    assert json.loads(body)["data"][0]["seed"] == 2**70  # the raw value is kept in full
    seed, style = journal_rows(result.out_dir, "SELECT seed, style_type FROM images")[0]
    # the wire layer drops a list where a string belongs; the journal keeps whatever remains
    assert seed is None and (style is None or json.loads(style) == ["A", "B"])


# -- local failures after the answer ------------------------------------------------


def test_a_file_versus_folder_clash_leaves_it_not_saved_then_writes_it(emulator, write_recipe):
    path = write_recipe(RECIPE)
    plan = api.plan_file(path)
    clash = plan.out_dir / plan.tasks[0].outputs[0]
    (clash / "blocker").mkdir(parents=True)  # a folder where the first image goes
    first = api.run_file(path, options(emulator.base_url))
    frame = read_manifest(first.manifest).set_index("file", drop=False)
    row = read_manifest(first.manifest).iloc[0]
    assert row["status"] == "not_saved"
    assert "a file and a folder have the same name" in row["error"]
    assert any("not saved" in line for line in first.failures)
    assert (frame["status"] == "ok").sum() == 6  # the rest of the batch went on
    assert (frame["status"] == "skipped_parent").sum() == 1  # the remix of the unsaved image
    sent = requests_made(emulator)
    kept = journal_rows(first.out_dir, "SELECT sha256 FROM images WHERE status='not_saved'")
    assert Store(first.out_dir).has(kept[0][0], verify=True)  # paid bytes kept in the store
    (clash / "blocker").rmdir()
    clash.rmdir()
    second = api.run_file(path, options(emulator.base_url, retry_failed=True))
    assert requests_made(emulator) == sent + 1  # only the remix that never ran
    assert once_each(emulator)
    assert second.exit_code == 0 and set(read_manifest(second.manifest)["status"]) == {"ok"}
    assert clash.is_file()


def test_an_internal_error_after_the_answer_never_resends(emulator, write_recipe, monkeypatch):
    from pipeline.runner import downloads

    real = downloads.images.decode
    calls = {"n": 0}

    def broken(data: bytes, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("a bug")
        return real(data, *args, **kwargs)

    monkeypatch.setattr(downloads.images, "decode", broken)
    path = write_recipe(RECIPE)
    first = api.run_file(path, options(emulator.base_url, concurrency=1))
    statuses = journal_rows(first.out_dir, "SELECT status FROM tasks")
    assert ("failed",) not in statuses  # the answered task is not a failed one
    frame = read_manifest(first.manifest)
    assert (frame["status"] == "not_saved").sum() == 1
    assert "internal error: RuntimeError" in frame["error"].iloc[0]
    sent = requests_made(emulator)
    second = api.run_file(path, options(emulator.base_url, retry_failed=True))
    assert requests_made(emulator) == sent + 1  # only the remix that never ran
    assert once_each(emulator)
    assert second.exit_code == 0 and set(read_manifest(second.manifest)["status"]) == {"ok"}


def test_a_local_error_after_sending_leaves_the_task_in_doubt_never_failed(odd, write_recipe, monkeypatch):
    from pipeline.journal import Journal

    def broken(*args, **kwargs):
        raise RuntimeError("a bug between the answer and the journal")

    monkeypatch.setattr(Journal, "responded", broken)
    odd.answer = json.dumps({"created": "now", "data": [{"url": f"{odd.url}/i.png", "seed": 1}]}).encode()
    path = write_recipe(ONE)
    first = api.run_file(path, options(odd.url))
    assert odd.posts == 1
    assert journal_rows(first.out_dir, "SELECT status FROM tasks") == [("in_doubt",)]  # it may be billed
    monkeypatch.undo()
    api.run_file(path, options(odd.url, retry_failed=True))
    assert odd.posts == 1  # --retry-failed never re-sends a request that left


def test_a_link_planted_during_the_run_redirects_nothing(emulator, write_recipe, tmp_path):
    emulator.configure(latency_ms=600)
    path = write_recipe(RECIPE)
    plan = api.plan_file(path)
    outside = tmp_path / "outside"
    outside.mkdir()
    first_dir = Path(plan.tasks[0].outputs[0]).parent
    planted = threading.Event()

    def plant(event) -> None:
        if event.kind == EventKind.STARTED and not planted.is_set():
            (plan.out_dir / first_dir).symlink_to(outside, target_is_directory=True)
            planted.set()

    first = api.run_file(path, options(emulator.base_url, on_event=plant))
    assert planted.is_set()
    assert list(outside.iterdir()) == []  # nothing written through the link
    frame = read_manifest(first.manifest)
    refused = frame[frame["status"] == "not_saved"]
    assert len(refused) >= 1 and refused["error"].str.contains("symbolic link").all()
    never_ran = int((frame["status"] == "skipped_parent").sum())
    sent = requests_made(emulator)
    (plan.out_dir / first_dir).unlink()
    second = api.run_file(path, options(emulator.base_url))
    assert requests_made(emulator) == sent + never_ran and once_each(emulator)
    assert second.exit_code == 0


# -- the store ------------------------------------------------------------------------


def test_reverting_an_edit_brings_the_images_back_at_zero(emulator, write_recipe):
    path = write_recipe(RECIPE)
    first = api.run_file(path, options(emulator.base_url))
    before = read_manifest(first.manifest).set_index("file")["sha256"].to_dict()
    text = path.read_text()
    path.write_text(text.replace("as a watercolour", "as a linocut"))
    edited = api.run_file(path, options(emulator.base_url))
    changed = read_manifest(edited.manifest).set_index("file")["sha256"].to_dict()
    assert sum(before[f] != changed[f] for f in before) == 4  # the remixes were replaced
    path.write_text(text)
    sent = requests_made(emulator)
    emulator.configure(url_ttl=0)  # no download either: the store brings them back
    reverted = api.run_file(path, options(emulator.base_url))
    assert requests_made(emulator) == sent
    assert reverted.exit_code == 0 and reverted.money.run_spent == 0
    for rel, sha in before.items():
        assert file_sha256(reverted.out_dir / rel) == sha


def test_gc_frees_what_no_task_references(emulator, write_recipe, capsys):
    from pipeline.cli import main

    path = write_recipe(ONE)
    first = api.run_file(path, options(emulator.base_url))
    out = first.out_dir
    old = {sha for sha, _ in Store(out).objects()}
    assert main(["gc", str(out)]) == 0
    assert "would remove 0" in capsys.readouterr().out
    api.run_file(path, options(emulator.base_url, force=True, reproduce={}))
    # a forced run of a derived seed returns the same picture: plant an unreferenced object
    stray = Store(out).put(b"not referenced by any task")
    assert main(["gc", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "would remove 1" in printed and "dry run" in printed
    assert Store(out).has(stray)
    assert main(["gc", str(out), "--yes"]) == 0
    assert "removed 1" in capsys.readouterr().out
    assert not Store(out).has(stray) and all(Store(out).has(s) for s in old)
