"""Honest statuses and one money story: every view shows the same totals from money.totals()."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing

import pytest
from conftest import TEST_KEY

from pipeline import api
from pipeline.console import summary
from pipeline.manifest import read_manifest
from pipeline.money import totals
from pipeline.runner import Event, EventKind, RunOptions, RunResult
from pipeline.summary import explain, summary_table

RECIPE = """
version: 1
name: money
provider: ideogram
rows:
  - {sku: A1, product: kettle}
  - {sku: B2, product: teapot}
  - {sku: C3, product: jug}
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


def run(emulator, path, **kw) -> tuple[RunResult, list[Event]]:
    events: list[Event] = []
    options = RunOptions(
        base_url=emulator.base_url,
        environ={"IDEOGRAM_API_KEY": TEST_KEY},
        yes=True,
        on_event=events.append,
        **kw,
    )
    return api.run_file(path, options), events


def assert_views_agree(result: RunResult, events: list[Event]) -> None:
    """Progress bar, summary, manifest and journal show the same three figures."""
    frame = read_manifest(result.manifest)
    money = totals(frame, result.run_id, result.simulated)
    assert result.money == money
    assert result.spent_usd == money.run_spent
    progress = [e for e in events if e.kind == EventKind.PROGRESS]
    assert progress[-1].spent_usd == pytest.approx(money.run_spent)
    assert money.describe() in summary(result)
    db = result.out_dir / ".ideopipe" / "state.db"
    with closing(sqlite3.connect(db)) as conn:
        spent, status = conn.execute(
            "SELECT spent_usd, status FROM runs WHERE run_id=?", (result.run_id,)
        ).fetchone()
    assert spent == pytest.approx(money.run_spent)
    assert status != "running"


def test_clean_then_resumed_run_agree(emulator, write_recipe):
    path = write_recipe(RECIPE)
    first, events = run(emulator, path)
    assert_views_agree(first, events)
    assert first.money.run_spent == pytest.approx(6 * 0.03 + 6 * 0.03)
    assert first.money.batch_cost == first.money.run_spent
    second, events = run(emulator, path)
    assert_views_agree(second, events)
    assert second.money.run_spent == 0 and second.money.batch_cost == first.money.batch_cost
    frame = second.frame  # the file is kept as it was: nothing changed
    assert set(frame["status"]) == {"ok"} and frame["reused"].all()
    assert set(frame["produced_by_run"]) == {first.run_id}
    assert all(len(line) <= 80 for line in summary_table(frame).splitlines())


def test_fault_storm_run_agrees(emulator, write_recipe):
    emulator.configure(fault_rate=0.3, faults=("429", "500", "accept_drop", "truncate"))
    result, events = run(emulator, write_recipe(RECIPE))
    assert_views_agree(result, events)
    frame = read_manifest(result.manifest)
    doubt = (frame["status"] == "in_doubt").sum()
    assert result.money.in_doubt == pytest.approx(doubt * 0.03)


def test_interrupted_run_agrees_and_calls_the_rest_pending(emulator, write_recipe):
    emulator.configure(latency_ms=300)
    stop = threading.Event()
    events: list[Event] = []

    def watch(event: Event) -> None:
        events.append(event)
        if event.kind == EventKind.PROGRESS and event.done >= 1:
            stop.set()

    options = RunOptions(
        base_url=emulator.base_url,
        environ={"IDEOGRAM_API_KEY": TEST_KEY},
        yes=True,
        concurrency=2,
        on_event=watch,
        stop_event=stop,
    )
    result = api.run_file(write_recipe(RECIPE), options)
    assert result.status == "interrupted"
    assert_views_agree(result, events)
    frame = read_manifest(result.manifest)
    assert set(frame["status"]) == {"ok", "pending"}
    assert not any("fail" in line for line in result.failures), result.failures
    assert any("not started" in line for line in result.failures)
    assert "failed" not in summary(result).split("not ok:")[1].split("\n")[0]


def test_failures_are_explained_by_cause(emulator, write_recipe):
    flagged = "A {{ product }} on a table {{ '[reject]' if sku == 'A1' else '' }}"
    result, _ = run(emulator, write_recipe(RECIPE.replace("A {{ product }} on a table", flagged)))
    assert result.failures == [
        "2 blocked by the safety check (prompts in manifest)",
        "2 not run because their input image failed",
    ]
    assert explain(read_manifest(result.manifest)) == result.failures


def test_emulator_provider_money_is_labelled_simulated(write_recipe):
    path = write_recipe(RECIPE.replace("provider: ideogram", "provider: emulator"))
    result = api.run_file(path, RunOptions(yes=True, environ={}))
    assert result.simulated and result.exit_code == 0
    text = result.money.describe()
    assert text.startswith("simulated: ") and text.endswith("no real charge")
    assert text in summary(result)
