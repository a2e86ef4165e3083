"""A manifest read back from disk is untrusted: check_manifest refuses what would reach outside."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.manifest import read_manifest
from pipeline.manifest_check import KNOWN_STATUSES, check_manifest, file_problem, matrix_problem
from pipeline.status import Status


def frame(**changes: object) -> pd.DataFrame:
    row = {
        "image_id": "i1",
        "step_id": "a",
        "op": "generate",
        "status": "ok",
        "file": "1/a-0-5.png",
        "matrix": "{}",
        "seed": 5,
        "row_index": 0,
        "image_index": 0,
    }
    row.update(changes)
    return pd.DataFrame([row])


@pytest.mark.parametrize(
    ("file", "why"),
    [
        ("1/a-0-5.png", None),
        ("deep/er/x.png", None),
        ("/etc/passwd", "it is an absolute path"),
        ("\\\\server\\share\\x.png", "it is an absolute path"),
        ("C:\\x.png", "it is an absolute path"),
        ("c:x.png", "it is an absolute path"),
        ("../x.png", "it contains '..'"),
        ("a/../../x.png", "it contains '..'"),
        ("a\\..\\..\\x.png", "it contains '..'"),
        ("a\x00.png", "it contains a NUL character"),
        (".", "names the output folder itself"),
    ],
)
def test_file_values(tmp_path: Path, file: str, why: str | None):
    found = file_problem(file, tmp_path.resolve())
    assert (found is None) if why is None else (why in (found or "")), found


def test_file_through_a_symlink_is_refused_only_when_it_leads_out(tmp_path: Path):
    out = tmp_path / "out"
    (out / "inner").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (out / "away").symlink_to(tmp_path / "elsewhere")
    (out / "near").symlink_to(out / "inner")
    assert "through a symbolic link" in (file_problem("away/x.png", out.resolve()) or "")
    assert file_problem("near/x.png", out.resolve()) is None


@pytest.mark.parametrize(
    ("cell", "why"),
    [
        ("{}", None),
        ('{"ratio": "16x9", "n": 2, "on": true, "x": null}', None),
        (None, "the cell is empty"),
        ("{", "is not JSON"),
        ("[1]", "is not a JSON object"),
        ('"16x9"', "is not a JSON object"),
        ('{"a": [1]}', "the value of 'a' is not a plain value"),
        ("[" * 100_000, "is not JSON"),
    ],
)
def test_matrix_cells(cell: str | None, why: str | None):
    found = matrix_problem(cell)
    assert (found is None) if why is None else (why in (found or "")), found


def test_statuses_are_the_image_statuses_and_legacy_cached():
    assert "cached" in KNOWN_STATUSES and Status.OK in KNOWN_STATUSES
    assert not {Status.SENDING, Status.RESPONDED, Status.DONE} & KNOWN_STATUSES
    problems = check_manifest(frame(status="done"), "/tmp/out")
    assert [p.path for p in problems] == ["row 1: status"]


def test_problems_are_located_and_folded(tmp_path: Path):
    rows = pd.concat([frame(file="/x")] * 8 + [frame(matrix="nope")], ignore_index=True)
    problems = check_manifest(rows, tmp_path, "m.csv", lines=list(range(2, 11)))
    assert [str(p) for p in problems] == (
        [f"m.csv:{n}: file: '/x' leaves the output folder: it is an absolute path" for n in range(2, 7)]
        + [
            "m.csv: file: ... the same problem on 3 more rows",
            "m.csv:10: matrix: malformed matrix: 'nope' is not JSON (Expecting value: line 1 "
            "column 1 (char 0))",
        ]
    )


def test_not_a_manifest():
    (problem,) = check_manifest(pd.DataFrame([{"a": 1}]), "/tmp/out", "m.csv")
    assert str(problem).startswith("m.csv: not an ideopipe manifest: no column 'image_id'")


def test_rerun_needs_integers_only_for_images_it_would_make():
    assert [p.path for p in check_manifest(frame(seed=pd.NA), "/tmp/o")] == ["row 1: seed"]
    assert check_manifest(frame(seed=pd.NA, status="failed"), "/tmp/o") == []
    assert check_manifest(frame(seed=pd.NA, op="describe", file=pd.NA), "/tmp/o") == []


def test_a_real_run_passes_and_report_regenerates(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "version: 1\nname: t\nprovider: emulator\nrows: [{p: shoe}, {p: hat}]\n"
        "matrix: {ratio: ['1x1', '16x9']}\n"
        "steps:\n  - {id: a, op: generate, prompt: '{{ p }}', aspect_ratio: '{{ ratio }}'}\n"
        "  - {id: d, op: describe, input: a}\noutput: {dir: out}\n",
        encoding="utf-8",
    )
    assert main(["run", str(recipe), "--yes", "--quiet"]) == 0
    manifest = read_manifest(tmp_path / "out")
    assert set(manifest["op"]) == {"generate", "describe"}
    assert check_manifest(manifest, tmp_path / "out") == []
    assert {m for m in manifest["matrix"]} == {json.dumps({"ratio": r}) for r in ("1x1", "16x9")}
    capsys.readouterr()
    assert main(["report", str(tmp_path / "out")]) == 0
    assert "report: " in capsys.readouterr().out
