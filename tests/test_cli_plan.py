"""`ideopipe plan`, `validate` and `schema` through the public entry point."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipeline.cli import main

REPO = Path(__file__).resolve().parent.parent


def cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def write(tmp: Path, body: str, name: str = "recipe.yaml") -> Path:
    path = tmp / name
    path.write_text("version: 1\nname: t\n" + textwrap.dedent(body), encoding="utf-8")
    return path


@pytest.fixture
def spring(tmp_path: Path) -> Path:
    """recipes/spring-launch.yaml and its CSV, copied into tmp_path."""
    shutil.copytree(
        REPO / "recipes", tmp_path / "recipes", ignore=shutil.ignore_patterns("out", "*.lock.json")
    )
    return tmp_path / "recipes" / "spring-launch.yaml"


def test_plan_table(spring: Path, capsys: pytest.CaptureFixture[str]):
    before = tree(spring.parent.parent)
    code, out, err = cli(capsys, "plan", spring)
    assert code == 0
    assert err == ""
    lines = [re.sub(r"\s+", " ", ln.strip()) for ln in out.splitlines()]
    assert lines[0] == "spring-launch · provider ideogram · 2 rows · price table 2026-11-01"
    assert lines[1] == "Hero banners for the spring launch, two aspect ratios per product"
    assert lines[3:] == [
        "hero generate 8 8 0 0.2400",
        "stylized remix 8 8 0 0.4800",
        "print upscale 8 8 0 0.4800",
        "total 24 24 0 1.2000",
        "budget $10.00: fits (left to spend: $1.2000)",
    ]
    assert tree(spring.parent.parent) == before  # plan writes nothing, not even .ideopipe


def test_plan_json(spring: Path, capsys: pytest.CaptureFixture[str]):
    code, out, _ = cli(capsys, "plan", "--json", spring)
    assert code == 0
    doc = json.loads(out)
    assert (doc["requests"], doc["images"], doc["cost_usd"]) == (24, 24, 1.2)
    assert {sid: (st["requests"], st["images"], st["cost_usd"]) for sid, st in doc["steps"].items()} == {
        "hero": (8, 8, 0.24),
        "stylized": (8, 8, 0.48),
        "print": (8, 8, 0.48),
    }
    assert len(doc["tasks"]) == 24
    for task in doc["tasks"]:
        assert {"params", "seed", "outputs", "id", "step", "depends_on"} <= set(task)
        assert isinstance(task["seed"], int)
        assert len(task["outputs"]) == task["num_images"] == 1
    assert doc["tasks"][0]["params"]["prompt"].startswith("Acme Citrus Spritz sneakers")
    assert doc["warnings"] == []


def test_plan_json_is_the_same_twice(spring: Path, capsys: pytest.CaptureFixture[str]):
    first = cli(capsys, "plan", "--json", spring)[1]
    assert cli(capsys, "plan", "--json", spring)[1] == first


@pytest.mark.parametrize(
    ("args", "rows", "requests", "prompt"),
    [
        (["--limit", "1"], 1, 12, "Acme Citrus Spritz sneakers"),
        (["--rows", "2-3"], 1, 12, "Acme Bloom linen jacket"),
        (["--rows", "3"], 0, 0, None),
        (["--set", "brand=Zed Co"], 2, 24, "Zed Co Citrus Spritz sneakers"),
        (["--set", "brand=Zed", "--rows", "1-2", "--limit", "1"], 1, 12, "Zed Citrus Spritz sneakers"),
    ],
)
def test_plan_selection_options(
    spring: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    rows: int,
    requests: int,
    prompt: str | None,
):
    code, out, _ = cli(capsys, "plan", "--json", spring, *args)
    assert code == 0
    doc = json.loads(out)
    assert (doc["rows"], doc["requests"]) == (rows, requests)
    if prompt:
        assert doc["tasks"][0]["params"]["prompt"].startswith(prompt)


def test_plan_overrides(spring: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    prices = tmp_path / "prices.yaml"
    prices.write_text("generate:TURBO: 0.1\nupscale: 0\n", encoding="utf-8")
    out_dir = tmp_path / "elsewhere"
    code, out, _ = cli(
        capsys, "plan", "--json", spring, "--prices", prices, "--provider", "emulator", "--out", out_dir
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["provider"] == "emulator"
    assert doc["cost_usd"] == pytest.approx(8 * 0.1 + 8 * 0.06)
    assert doc["price_table"] == "2026-11-01+cli"
    assert not out_dir.exists()


def test_plan_unknown_price_and_budget(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = write(
        tmp_path,
        """\
        budget_usd: 0.05
        rows: [{p: x}, {p: y}]
        steps:
          - {id: a, op: generate, prompt: x, rendering_speed: QUALITY}
          - {id: b, op: describe, input: a}
        """,
    )
    code, out, _ = cli(capsys, "plan", path)
    assert code == 0
    assert re.search(r"^b\s+describe\s+2\s+2\s+0\s+0\.0000\+\?$", out, re.MULTILINE)
    assert "2 request(s) have no known price: add them under `prices:`" in out
    assert "budget $0.05: DOES NOT FIT" in out


@pytest.mark.parametrize("command", ["plan", "validate"])
def test_bad_recipe_exits_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
):
    path = write(
        tmp_path,
        """\
        rows: [{p: x}]
        steps:
          - id: hero
            op: remx
            prompt: x
        output: {dir: out}
        """,
    )
    code, out, err = cli(capsys, command, path)
    assert code == 2
    assert out == ""
    assert err.splitlines() == [
        f"{path}:6:9: steps[0].op: unknown op 'remx' — did you mean 'remix'?",
        "ideopipe: 1 error(s); nothing was sent",
    ]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--limit", "0"], "--limit 0: expected a positive number"),
        (["--rows", "3-1"], "--rows '3-1': expected 1 <= N <= M"),
        (["--rows", "x"], "--rows 'x': expected N or N-M"),
        (["--set", "novalue"], "--set 'novalue': expected NAME=VALUE"),
        (["--prices", "missing.yaml"], "missing.yaml: cannot read: no such file"),
    ],
)
def test_bad_options_exit_2(spring: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str):
    code, out, err = cli(capsys, "plan", spring, *args)
    assert code == 2
    assert out == ""
    assert err.splitlines()[0] == message


def test_bad_prices_file(spring: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    prices = tmp_path / "p.yaml"
    prices.write_text("generate:TURBO: cheap\n", encoding="utf-8")
    code, _, err = cli(capsys, "plan", spring, "--prices", prices)
    assert code == 2
    assert f"{prices}: must map op:tier keys to prices in USD" in err


@pytest.mark.parametrize("value", ["-1", ".nan", "true"])
def test_prices_option_refuses_negative_nan_and_bool(
    spring: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
):
    """A negative or NaN price would make any plan 'fit' its budget."""
    prices = tmp_path / "p.yaml"
    prices.write_text(f"generate:TURBO: {value}\n", encoding="utf-8")
    code, out, err = cli(capsys, "plan", spring, "--prices", prices)
    assert code == 2, out
    assert f"{prices}: must map op:tier keys to prices in USD" in err


@pytest.mark.parametrize("value", ["-1", ".nan", "true"])
def test_prices_file_refuses_negative_nan_and_bool(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
):
    (tmp_path / "prices.yaml").write_text(f"generate:TURBO: {value}\n", encoding="utf-8")
    path = write(
        tmp_path,
        """\
        prices_file: prices.yaml
        steps: [{id: a, op: generate, prompt: x, rendering_speed: TURBO}]
        """,
    )
    code, out, err = cli(capsys, "plan", path)
    assert code == 2, out
    assert "prices_file: must map op:tier keys to" in err


def test_plan_warning_goes_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = write(
        tmp_path,
        """\
        seed: 7
        steps: [{id: a, op: generate, prompt: x, num_images: 2}]
        """,
    )
    code, out, err = cli(capsys, "plan", path)
    assert code == 0
    assert "warning: steps[0]: step 'a' has a fixed seed and num_images 2" in err
    assert re.search(r"^total\s+1\s+2\s+0\s+0\.1200$", out, re.MULTILINE)


def test_schema_command(capsys: pytest.CaptureFixture[str]):
    code, out, _ = cli(capsys, "schema")
    assert code == 0
    doc = json.loads(out)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["required"] == ["version", "name", "steps"]
    assert "remix" in doc["properties"]["steps"]["items"]["properties"]["op"]["enum"]


# -- as a real process ------------------------------------------------------------------


def run(*argv: str | Path, cwd: Path, **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), **env_extra}
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *map(str, argv)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_subprocess_validate_and_plan(spring: Path, tmp_path: Path):
    bad = write(tmp_path, "steps: [{id: a, op: generate, prompt: '{{ nope }}'}]\n", "bad.yaml")
    done = run("validate", spring, bad, cwd=tmp_path)
    assert done.returncode == 2
    assert f"{spring}: ok (24 requests, 24 images, $1.2000)" in done.stdout
    assert f"{bad}:3:" in done.stderr
    assert "undefined variable: 'nope' is undefined" in done.stderr
    assert "Traceback" not in done.stderr
    planned = run("plan", "--json", spring, cwd=tmp_path)
    assert planned.returncode == 0, planned.stderr
    assert json.loads(planned.stdout)["cost_usd"] == 1.2
    assert not (spring.parent / "out").exists()


def test_seeds_do_not_depend_on_the_process(spring: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """Same seeds and task ids in this process and in one with another hash seed."""
    code, out, _ = cli(capsys, "plan", "--json", spring)
    assert code == 0
    here = json.loads(out)
    there = run("plan", "--json", spring, cwd=tmp_path, PYTHONHASHSEED="12345")
    assert there.returncode == 0, there.stderr
    ids = [(t["id"], t["seed"], t["outputs"]) for t in json.loads(there.stdout)["tasks"]]
    assert ids == [(t["id"], t["seed"], t["outputs"]) for t in here["tasks"]]


def test_plan_shows_the_recipe_description(write_recipe, capsys):
    path = write_recipe(
        """\
        version: 1
        name: described
        description: Posters for the spring shop window
        provider: emulator
        rows: [{product: mug}]
        steps:
          - {id: hero, op: generate, prompt: "a {{ product }}"}
        """
    )
    assert main(["plan", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("described · provider emulator")
    assert lines[1] == "Posters for the spring shop window"
