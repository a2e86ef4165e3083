"""Each provider's wire format end to end against the emulator in that provider's flavor."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from pipeline import api
from pipeline.client import Timeouts
from pipeline.emulator import Emulator
from pipeline.manifest import read_manifest, write
from pipeline.runner import RunOptions

REPO = Path(__file__).resolve().parent.parent
KEYS = {"IDEOGRAM_API_KEY": "k1", "AIHUBMIX_API_KEY": "k2", "CRAZYROUTER_API_KEY": "k3"}


@pytest.mark.parametrize("flavor", ["ideogram", "aihubmix", "crazyrouter"])
def test_catalog_refresh_through_each_provider(flavor, tmp_path: Path):
    shutil.copytree(
        REPO / "recipes", tmp_path / "recipes", ignore=shutil.ignore_patterns("out", "*.lock.json")
    )
    with Emulator(flavor=flavor) as em:
        result = api.run_file(
            tmp_path / "recipes" / "catalog-refresh.yaml",
            RunOptions(base_url=em.base_url, yes=True, quiet=True, environ=KEYS),
            provider=flavor,
        )
        ledger = em.ledger()
    assert result.exit_code == 0, result.counts
    frame = read_manifest(result.manifest)
    assert len(frame) == 18 and set(frame["status"]) == {"ok"}
    assert ledger["billed_total"] == 18
    looks = frame[frame["step_id"] == "look"].set_index("row_key")["description"]
    scenes = frame[frame["step_id"] == "scene"]
    for row in scenes.itertuples():  # the describe step's text reached the next prompt
        assert looks[row.row_key] in row.prompt
        assert row.endpoint == "/v1/ideogram-v3/replace-background"
    stories = frame[frame["step_id"] == "story"]
    assert set(stories["resolution"]) == {"768x1344"}


def test_read_timeout_is_in_doubt_not_resent(emulator, write_recipe):
    emulator.configure(latency_ms=1500)
    path = write_recipe("""
        version: 1
        name: slow
        rows: [{p: kettle}]
        steps:
          - {id: one, op: generate, prompt: "{{ p }}"}
        output: {dir: out}
    """)
    result = api.run_file(
        path,
        RunOptions(
            base_url=emulator.base_url, yes=True, quiet=True, environ=KEYS, timeouts=Timeouts(read=0.4)
        ),
    )
    frame = read_manifest(result.manifest)
    assert list(frame["status"]) == ["in_doubt"]
    assert "no answer within" in frame["error"].iloc[0]
    time.sleep(1.5)  # the emulator finishes (and bills) the abandoned request
    assert emulator.ledger()["requests"] == 1  # sent once, never again
    assert emulator.ledger()["billed_total"] == 1  # which is why it was not resent


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_manifest_formats_keep_values_exact_and_csv_is_spreadsheet_safe(emulator, write_recipe, fmt):
    path = write_recipe("""
        version: 1
        name: formulas
        rows: [{p: "=HYPERLINK(\\"http://x\\")"}, {p: "+1 mug"}]
        steps:
          - {id: one, op: generate, prompt: "{{ p }}"}
        output: {dir: out}
    """)
    result = api.run_file(
        path, RunOptions(base_url=emulator.base_url, yes=True, quiet=True, environ=KEYS, manifest_format=fmt)
    )
    assert result.manifest.suffix == f".{fmt}"
    frame = read_manifest(result.manifest)
    assert sorted(frame["prompt"]) == ["+1 mug", '=HYPERLINK("http://x")']
    assert str(frame["seed"].dtype) == "Int64" and str(frame["cost_usd"].dtype) == "Float64"
    if fmt == "csv":
        text = result.manifest.read_text()
        assert "'=HYPERLINK" in text and "'+1 mug" in text
        assert ",=HYPERLINK" not in text
    again = write(frame, result.out_dir, fmt)
    assert read_manifest(again).equals(frame)
