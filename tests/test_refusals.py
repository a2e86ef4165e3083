"""Refusals that must come before anything is written or sent: the key, the base URL, the lock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from review_kit import KEY, ONE

from pipeline import api
from pipeline.errors import InputError, RecipeError
from pipeline.runner import RunOptions


@pytest.mark.parametrize(
    ("environ", "base_url", "allow_http", "why"),
    [
        pytest.param(
            {"IDEOGRAM_API_KEY": KEY[:8] + "\x01" + KEY[8:]}, None, False, "malformed", id="bad-key"
        ),
        pytest.param({}, None, False, "no API key", id="no-key"),
        pytest.param({"IDEOGRAM_API_KEY": KEY}, "http://203.0.113.5", False, "plain http", id="remote-http"),
        pytest.param({"IDEOGRAM_API_KEY": KEY}, "ftp://api.example", True, "must be http", id="not-http"),
    ],
)
def test_a_refused_run_creates_no_output_folder(write_recipe, tmp_path, environ, base_url, allow_http, why):
    plan = api.plan_file(write_recipe(ONE))
    options = RunOptions(base_url=base_url, environ=environ, allow_http=allow_http, yes=True, quiet=True)
    with pytest.raises(InputError, match=why) as info:
        api.run_plan(plan, options)
    assert info.value.exit_code == 2
    assert KEY not in str(info.value)
    assert not (tmp_path / "out").exists()


def _lock(path: Path, tasks: dict) -> None:
    Path(str(path) + ".lock.json").write_text(json.dumps({"schema_version": 1, "tasks": tasks}))


def test_a_lock_entry_has_every_problem_named_with_the_file(write_recipe):
    path = write_recipe(ONE)
    plan = api.plan_file(path)
    records = [{"seed": "7", "api_prompt": 3}, {"seed": 2**31, "api_prompt": None}, "x"]
    _lock(path, {plan.tasks[0].id: records})
    with pytest.raises(RecipeError, match=r"lock\.json") as info:
        api.lock_entries(plan)
    text = str(info.value)
    assert info.value.exit_code == 2
    for why in (
        "3 records, but the task makes 1",
        "[0]: seed: expected an integer",
        "[0]: api_prompt",
        "[1]: seed: 2147483648 is outside",
        "[2]: expected a record",
    ):
        assert why in text, text


@pytest.mark.parametrize("body", [[], {"tasks": []}, {"tasks": "x"}, "not json"], ids=str)
def test_a_lock_file_that_is_not_one_is_refused(write_recipe, body):
    path = write_recipe(ONE)
    plan = api.plan_file(path)
    lock = Path(str(path) + ".lock.json")
    lock.write_text(body if isinstance(body, str) else json.dumps(body))
    with pytest.raises(RecipeError, match=r"lock\.json"):
        api.lock_entries(plan)


def test_a_good_lock_entry_is_kept(write_recipe):
    path = write_recipe(ONE)
    plan = api.plan_file(path)
    _lock(path, {plan.tasks[0].id: [{"seed": 5, "api_prompt": "a kettle"}], "other-task": "ignored"})
    assert api.lock_entries(plan) == {plan.tasks[0].id: [{"seed": 5, "api_prompt": "a kettle"}]}


@pytest.mark.parametrize(
    "name", ["report.html", "manifest.csv", "Manifest.PARQUET", "manifest.jsonl", "report.html/a.png"]
)
def test_an_output_name_that_is_a_run_file_is_refused_at_plan(write_recipe, name):
    path = write_recipe(ONE.replace("dir: out", f'dir: out\n  file: "{name}"'))
    with pytest.raises(RecipeError, match=r"output\.file") as info:
        api.plan_file(path)
    assert "the run's own manifest or report" in str(info.value)


def test_a_run_file_name_inside_a_folder_is_fine(write_recipe):
    path = write_recipe(ONE.replace("dir: out", 'dir: out\n  file: "{{ sku }}/report.html"'))
    assert [t.outputs for t in api.plan_file(path).tasks] == [("A1/report.html",)]
