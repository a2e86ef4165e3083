"""The runner against the real emulator over loopback HTTP: chains, resume, faults, budget."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from conftest import TEST_KEY

from pipeline import api
from pipeline.errors import BudgetExceeded
from pipeline.manifest import read_manifest
from pipeline.runner import RunOptions

CHAIN = """
version: 1
name: chain
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
    aspect_ratio: 1x1
    num_images: 2
  - id: remixed
    op: remix
    input: hero
    prompt: "{{ product }} as a watercolour"
    image_weight: 50
  - id: big
    op: upscale
    input: remixed
output:
  dir: out
"""


def chain(extra: str = "", **subs: str) -> str:
    text = CHAIN
    for old, new in subs.items():
        text = text.replace(old, new)
    return text + extra


def options(emulator, **kw) -> RunOptions:
    kw.setdefault("quiet", True)
    return RunOptions(base_url=emulator.base_url, environ={"IDEOGRAM_API_KEY": TEST_KEY}, yes=True, **kw)


def billed(emulator) -> int:
    return int(emulator.ledger()["billed_total"])


def test_chain_runs_end_to_end(emulator, write_recipe):
    path = write_recipe(chain())
    result = api.run_file(path, options(emulator))
    assert result.exit_code == 0, result.counts
    frame = read_manifest(result.manifest)
    assert len(frame) == 12  # 2 rows x (2 hero + 2 remix + 2 upscale)
    assert set(frame["status"]) == {"ok"}
    for row in frame.itertuples():
        data = (result.out_dir / row.file).read_bytes()
        assert hashlib.sha256(data).hexdigest() == row.sha256
    big = frame[frame["step_id"] == "big"]
    remixed = frame.set_index("image_id")
    for row in big.itertuples():  # lineage: upscale -> remix -> generate
        parent = remixed.loc[row.parent_image_id]
        assert parent["step_id"] == "remixed"
        assert remixed.loc[parent["parent_image_id"]]["step_id"] == "hero"
        assert row.width == 2 * parent["width"]
    assert billed(emulator) == 12
    assert frame["cost_usd"].sum() == pytest.approx(4 * 0.03 + 4 * 0.03 + 4 * 0.06)


def test_second_run_costs_nothing(emulator, write_recipe):
    path = write_recipe(chain())
    first = api.run_file(path, options(emulator))
    written = first.manifest.stat().st_mtime_ns
    before = emulator.ledger()["requests"]
    result = api.run_file(path, options(emulator))
    assert result.exit_code == 0
    assert emulator.ledger()["requests"] == before
    assert set(result.frame["status"]) == {"ok"}  # ok whichever run produced it
    assert result.frame["reused"].all()
    assert set(result.frame["produced_by_run"]) == {first.run_id}
    assert result.spent_usd == 0
    assert result.manifest.stat().st_mtime_ns == written  # an unchanged manifest is kept
    assert set(read_manifest(result.manifest)["produced_by_run"]) == {first.run_id}


def test_editing_one_step_reruns_only_it_and_descendants(emulator, write_recipe):
    path = write_recipe(chain())
    api.run_file(path, options(emulator))
    path.write_text(chain(**{"as a watercolour": "as a linocut"}), encoding="utf-8")
    p = api.plan_file(path, out=None)
    assert len(api.done_tasks(p)) == 4  # the hero tasks only
    before = billed(emulator)
    result = api.run_file(path, options(emulator))
    assert billed(emulator) - before == 8  # 4 remixes + 4 upscales
    frame = read_manifest(result.manifest)
    assert set(frame["status"]) == {"ok"}
    assert frame[frame["step_id"] == "hero"]["reused"].all()
    assert not frame[frame["step_id"] != "hero"]["reused"].any()
    assert (frame[frame["step_id"] != "hero"]["produced_by_run"] == result.run_id).all()


def test_rate_limit_storm_is_retried_and_never_billed(emulator, write_recipe):
    emulator.inject(*["429"] * 6)
    result = api.run_file(write_recipe(chain()), options(emulator))
    assert result.exit_code == 0
    ledger = emulator.ledger()
    assert ledger["billed_total"] == 12
    assert sum(ledger["rejected"].values()) >= 6


def test_accepted_then_dropped_is_in_doubt_and_not_resent(emulator, write_recipe):
    path = write_recipe(chain())
    emulator.inject("accept_drop")
    first = api.run_file(path, options(emulator))
    assert first.exit_code == 1
    frame = read_manifest(first.manifest)
    assert (frame["status"] == "in_doubt").sum() == 1
    # its descendants did not run: their input image does not exist
    assert (frame["status"] == "skipped_parent").sum() == 2
    billed_after_first = billed(emulator)
    assert billed_after_first == 10  # 9 ok + the dropped one, which the emulator billed
    second = api.run_file(path, options(emulator))
    frame = read_manifest(second.manifest)
    assert (frame["status"] == "in_doubt").sum() == 1
    assert billed(emulator) == billed_after_first  # the in_doubt task was not paid for again
    third = api.run_file(path, options(emulator, retry_in_doubt=True))
    assert third.exit_code == 0
    assert billed(emulator) == billed_after_first + 3


@pytest.mark.parametrize("fault", ["500", "503"])
def test_server_error_is_in_doubt_unless_allowed(emulator, write_recipe, fault):
    emulator.inject(fault)
    result = api.run_file(write_recipe(chain()), options(emulator))
    frame = read_manifest(result.manifest)
    assert (frame["status"] == "in_doubt").sum() == 1


def test_retry_unknown_resends(emulator, write_recipe):
    emulator.inject("500", "drop")
    result = api.run_file(write_recipe(chain("retry_unknown: true\n")), options(emulator))
    assert result.exit_code == 0
    assert set(read_manifest(result.manifest)["status"]) == {"ok"}


def test_truncated_download_is_retried(emulator, write_recipe):
    emulator.inject("truncate")
    result = api.run_file(write_recipe(chain()), options(emulator))
    assert result.exit_code == 0
    assert billed(emulator) == 12


def test_expired_url_gives_download_expired(emulator, write_recipe):
    emulator.inject("expire")
    result = api.run_file(write_recipe(chain()), options(emulator))
    frame = read_manifest(result.manifest)
    assert (frame["status"] == "download_expired").sum() == 1
    assert not any(p.name.endswith(".part") for p in result.out_dir.rglob("*"))


def test_safety_rejection_is_recorded_not_retried(emulator, write_recipe):
    flagged = "A {{ product }} on a table {{ '[reject]' if sku == 'A1' else '' }}"
    text = chain(**{"A {{ product }} on a table": flagged})
    result = api.run_file(write_recipe(text), options(emulator))
    frame = read_manifest(result.manifest)
    hero = frame[(frame["step_id"] == "hero") & (frame["row_key"] == "1")]
    assert set(hero["status"]) == {"unsafe"}
    assert emulator.ledger()["rejected"].get("safety", 0) == 2


def test_revoked_key_stops_the_run_and_a_rerun_completes(emulator, write_recipe):
    path = write_recipe(chain())
    emulator.revoke_keys(True)
    first = api.run_file(path, options(emulator))
    assert first.exit_code == 1
    assert "refused the key (401)" in first.message
    assert billed(emulator) == 0
    emulator.revoke_keys(False)
    second = api.run_file(path, options(emulator))
    assert second.exit_code == 0
    assert billed(emulator) == 12


def test_credit_running_out_halfway_stops_then_resumes_without_redoing(emulator, write_recipe):
    path = write_recipe(chain())
    emulator.set_credit(5)
    first = api.run_file(path, options(emulator, concurrency=1))
    assert first.exit_code == 1
    assert "out of credit" in first.message
    assert billed(emulator) == 5
    emulator.set_credit(None)
    second = api.run_file(path, options(emulator))
    assert second.exit_code == 0
    assert billed(emulator) == 12  # the 5 paid images were not requested again
    frame = read_manifest(second.manifest)
    assert second.counts == {"ok": 12} and int(frame["reused"].sum()) == 5


def test_budget_refuses_before_sending(emulator, write_recipe):
    path = write_recipe(chain())
    with pytest.raises(BudgetExceeded, match=r"over the cap of \$0\.10"):
        api.run_file(path, options(emulator, max_cost=0.10))
    assert emulator.ledger()["requests"] == 0
    assert not (path.parent / "out" / "manifest.csv").exists()


def test_journal_is_real_sqlite_in_wal_mode(emulator, write_recipe):
    result = api.run_file(write_recipe(chain()), options(emulator))
    db = result.out_dir / ".ideopipe" / "state.db"
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT COUNT(*) FROM tasks WHERE status='done'").fetchone()[0] == 12


def test_rerun_reproduces_images_byte_for_byte(emulator, write_recipe, tmp_path: Path):
    path = write_recipe(chain())
    first = api.run_file(path, options(emulator))
    result = api.rerun(
        first.manifest, where="step_id != 'hero'", out=str(tmp_path / "again"), options=options(emulator)
    )
    assert result.exit_code == 0
    old = read_manifest(first.manifest).set_index("file")
    new = read_manifest(result.manifest)
    assert len(new) == 8
    for row in new.itertuples():
        assert row.sha256 == old.loc[row.file]["sha256"]


def test_key_never_written_anywhere(emulator, write_recipe, capsys):
    emulator.inject("429", "500", "accept_drop", "expire")
    result = api.run_file(write_recipe(chain()), options(emulator, quiet=False))
    captured = capsys.readouterr()
    assert TEST_KEY not in captured.out + captured.err
    for file in result.out_dir.rglob("*"):
        if file.is_file():
            assert TEST_KEY.encode() not in file.read_bytes(), file
