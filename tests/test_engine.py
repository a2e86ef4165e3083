"""The engine as a library: no printing, no signal handlers, stopped from another thread."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from conftest import TEST_KEY

from pipeline import api
from pipeline.manifest import read_manifest
from pipeline.runner import Event, EventKind, RunOptions, RunResult

RECIPE = """
version: 1
name: nb
provider: ideogram
rows:
  - {sku: A, product: lamp}
  - {sku: B, product: chair}
  - {sku: C, product: desk}
seed: derive
defaults: {model: V_3, rendering_speed: TURBO, magic_prompt: "OFF"}
steps:
  - id: hero
    op: generate
    prompt: "A {{ product }} in a loft"
  - id: remixed
    op: remix
    input: hero
    prompt: "{{ input.api_prompt }}, as a blueprint"
output:
  dir: out
"""


def options(emulator, **kw) -> RunOptions:
    return RunOptions(
        base_url=emulator.base_url, environ={"IDEOGRAM_API_KEY": TEST_KEY}, yes=True, concurrency=1, **kw
    )


def test_two_runs_in_one_process_one_stopped_from_another_thread(emulator, write_recipe, tmp_path, capfd):
    emulator.configure(latency_ms=300)
    path = write_recipe(RECIPE)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    stop = threading.Event()
    events: list[Event] = []

    def watch(event: Event) -> None:
        events.append(event)
        if event.kind == EventKind.PROGRESS and event.done >= 1:
            stop.set()  # as a notebook cell would, from a thread that is not the engine's

    results: dict[str, RunResult] = {}

    def go(name: str, **kw) -> None:
        plan = api.plan_file(path, out=str(tmp_path / name))
        results[name] = api.run_plan(plan, options(emulator, **kw))

    stopped = threading.Thread(target=go, args=("stopped",), kwargs={"on_event": watch, "stop_event": stop})
    whole = threading.Thread(target=go, args=("whole",))
    stopped.start()
    whole.start()
    stopped.join(60)
    whole.join(60)
    assert results["whole"].exit_code == 0 and results["whole"].status == "ok"
    cut = results["stopped"]
    assert cut.status == "interrupted" and cut.exit_code == 130
    frame = read_manifest(cut.manifest)
    assert len(frame) == 6 and 1 <= (frame["status"] == "ok").sum() < 6
    assert any(e.kind == EventKind.STOPPING for e in events)
    assert {s: signal.getsignal(s) for s in handlers} == handlers  # no handler installed
    printed = capfd.readouterr()
    assert printed.out == "" and printed.err == ""  # the engine never prints
    again = api.run_plan(api.plan_file(path, out=str(tmp_path / "stopped")), options(emulator))
    assert again.exit_code == 0
    assert emulator.ledger()["billed_total"] == 12  # each image paid once across both dirs


def test_run_options_repr_hides_the_environment_and_callbacks():
    text = repr(RunOptions(environ={"IDEOGRAM_API_KEY": TEST_KEY}, yes=True))
    assert TEST_KEY not in text and "environ" not in text
    assert "yes=True" in text


def test_spending_without_yes_or_confirm_is_refused_in_a_library(tmp_path: Path, write_recipe):
    import pytest

    from pipeline.errors import BudgetExceeded

    plan = api.plan_file(write_recipe(RECIPE))
    asked: list[float] = []
    opts = RunOptions(base_url="http://127.0.0.1:9", environ={"IDEOGRAM_API_KEY": TEST_KEY})
    with pytest.raises(BudgetExceeded, match="pass --yes"):
        api.run_plan(plan, opts)
    opts.confirm = lambda usd, provider: bool(asked.append(usd))
    with pytest.raises(BudgetExceeded, match="not confirmed"):
        api.run_plan(plan, opts)
    assert asked and asked[0] > 0


def test_progress_bar_fits_an_80_column_terminal():
    import io

    from pipeline.progress import Progress

    out = io.StringIO()
    bar = Progress(out, ncols=80)
    event = Event(
        EventKind.PROGRESS,
        done=1234,
        total=10000,
        failed=17,
        limit=8,
        rate_limited=42,
        spent_usd=123.45,
        planned_usd=1000.0,
        simulated=True,
    )
    bar.update(event)
    bar.bar.refresh()
    bar.close()
    lines = [line for line in out.getvalue().replace("\r", "\n").splitlines() if line.strip()]
    assert lines and all(len(line) <= 80 for line in lines), lines
    assert "sim $123.45/$1,000.00" in lines[-1] and "17 failed" in lines[-1]


def test_a_notebook_interrupt_finishes_the_run_like_a_stop(emulator, write_recipe, tmp_path):
    import _thread

    emulator.configure(latency_ms=300)
    path = write_recipe(RECIPE)
    sent = threading.Event()

    def watch(event: Event) -> None:
        if event.kind == EventKind.PROGRESS and event.done >= 1 and not sent.is_set():
            sent.set()
            _thread.interrupt_main()  # what a kernel's interrupt button does

    plan = api.plan_file(path)
    result = api.run_plan(plan, options(emulator, on_event=watch))
    assert sent.is_set()
    assert result.status == "interrupted" and result.exit_code == 130
    frame = read_manifest(result.manifest)
    assert set(frame["status"]) <= {"ok", "pending"} and (frame["status"] == "ok").any()
