"""Every verb over a table of broken inputs, as a real process: one sentence, no traceback.

Each row runs `python -m pipeline ARGS` in a folder holding a real output folder (made by a
real emulator run), damaged copies of it, and files of the wrong kind; it checks the exit
code, a pattern of the message, and that no traceback reached the user.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.errors import SIGNAL_EXIT_CODES, BudgetExceeded, JournalCorrupt, exit_code

REPO = Path(__file__).resolve().parent.parent

GOOD = """\
version: 1
name: good
provider: emulator
rows: [{p: lamp}]
defaults: {model: V_3, rendering_speed: TURBO, magic_prompt: "OFF"}
steps:
  - {id: a, op: generate, prompt: "a {{ p }} on a table"}
output: {dir: out}
"""
# The same recipe meant for the real provider, rehearsed on the emulator (--provider emulator).
IDEO = (
    GOOD.replace("name: good", "name: ideo")
    .replace("provider: emulator", "provider: ideogram")
    .replace("dir: out", "dir: ideo-out")
)


def ideopipe(*argv: str, cwd: Path, **env_extra: str) -> subprocess.CompletedProcess[str]:
    """Run the command as a user would; no key in the environment, browsers recorded."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(filter(None, [env_extra.pop("PRE", ""), str(REPO)])),
            "BROWSER": str(cwd / "browser.sh"),
            **env_extra,
        }
    )
    env.pop("IDEOPIPE_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a real output folder, damaged copies of it and wrong kinds of file."""
    w = tmp_path_factory.mktemp("world")
    (w / "good.yaml").write_text(GOOD, encoding="utf-8")
    (w / "ideo.yaml").write_text(IDEO, encoding="utf-8")
    for argv in (["good.yaml"], ["ideo.yaml", "--provider", "emulator"]):
        done = ideopipe("run", *argv, "--yes", "--quiet", cwd=w)
        assert done.returncode == 0, done.stderr
    (w / "empty.yaml").write_bytes(b"")
    (w / "binary.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x01" * 8)
    (w / "dangling.yaml").symlink_to(w / "gone.yaml")
    (w / "adir").mkdir()
    (w / "file").write_text("just text\n", encoding="utf-8")
    shutil.copy(w / "out" / "manifest.csv", w / "m.csv")
    for name in ("corrupt", "nomanifest", "junk", "binmanifest", "emptymanifest"):
        shutil.copytree(w / "out", w / name)
    for extra in ("-wal", "-shm"):
        (w / "corrupt" / ".ideopipe" / f"state.db{extra}").unlink(missing_ok=True)
    (w / "corrupt" / ".ideopipe" / "state.db").write_bytes(b"this is not sqlite" * 100)
    (w / "nomanifest" / "manifest.csv").unlink()
    (w / "junk" / "manifest.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    (w / "binmanifest" / "manifest.csv").write_bytes(b"\xff\xfe\x00garbage\x00" * 50)
    (w / "emptymanifest" / "manifest.csv").write_bytes(b"")
    (w / "noarrow" / "pyarrow").mkdir(parents=True)
    (w / "noarrow" / "pyarrow" / "__init__.py").write_text(
        "raise ImportError('No module named pyarrow')\n", encoding="utf-8"
    )
    (w / "browser.sh").write_text(f'#!/bin/sh\necho "$1" >> {w / "opened.txt"}\n')
    (w / "browser.sh").chmod(0o755)
    return w


@dataclass(frozen=True)
class Row:
    """A command line, the exit code it must end with, and a pattern its output must show."""

    argv: tuple[str, ...]
    code: int
    message: str
    env: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        return " ".join(self.argv) or "(bare)"


def row(line: str, code: int, message: str, **env: str) -> Row:
    """A Row from a shell-like line (words split on spaces, `~` joins a word's spaces)."""
    return Row(tuple(w.replace("~", " ") for w in line.split()), code, message, tuple(env.items()))


DAMAGED = r"journal is damaged \(file is not a database\); run `ideopipe doctor \S*corrupt` to check it"
NOT_OUT = r"give the folder a run wrote"
RECIPE_VERBS = ("validate", "plan", "run", "lock")

TABLE = [
    # the command line itself
    row("", 2, r"commands:[\s\S]*validate[\s\S]*emulator"),
    row("plna good.yaml", 2, r"unknown command 'plna' — did you mean 'plan'\?"),
    row("--bogus", 2, r"unrecognized arguments: --bogus"),
    row("plan", 2, r"plan: the following arguments are required: RECIPE"),
    row("schema extra", 2, r"unrecognized arguments: extra"),
    # a recipe that is not one, for every verb that takes a recipe
    *[
        row(f"{verb} {arg}", 2, msg)
        for verb in RECIPE_VERBS
        for arg, msg in (
            ("missing.yaml", r"missing\.yaml: cannot read: no such file"),
            ("adir", r"adir: cannot read: a folder"),
            ("out", r"out: an output folder, not a recipe — give the recipe YAML file"),
            ("out/manifest.csv", r"manifest\.csv: a manifest, not a recipe"),
            ("empty.yaml", r"empty\.yaml: the file is empty — a recipe is a YAML mapping"),
            ("binary.yaml", r"binary\.yaml:1: not valid UTF-8"),
        )
    ],
    row("validate dangling.yaml", 2, r"dangling\.yaml: cannot read: no such file"),
    row("plan m.csv", 2, r"m\.csv: a csv file, not a recipe"),
    row(
        "validate out empty.yaml good.yaml",
        2,
        r"(?s)(?=.*out: an output folder)(?=.*empty\.yaml: the file is empty)(?=.*good\.yaml: ok \()",
    ),
    # flags
    row("plan good.yaml --rows x", 2, r"--rows 'x': expected N or N-M"),
    row("plan good.yaml --limit abc", 2, r"--limit: invalid int value: 'abc'"),
    row("run good.yaml --concurrency 0", 2, r"--concurrency: '0': expected a number of at least 1"),
    row("run good.yaml --max-cost lots", 2, r"--max-cost: 'lots' is not a number"),
    row("run good.yaml --manifest-format xml", 2, r"--manifest-format: invalid choice: 'xml'"),
    row("rerun out --concurrency -3", 2, r"'-3': expected a number of at least 1"),
    # output folders that cannot be made or used
    row("run good.yaml --yes --out file/sub", 2, r"cannot create the output folder: \S*file is a file"),
    row(
        "run good.yaml --yes --out /sys/ideopipe-test",
        2,
        r"/sys/ideopipe-test: the output folder cannot be created or written",
    ),
    row("run good.yaml --yes --out corrupt", 2, DAMAGED),
    row("plan good.yaml --out corrupt", 2, DAMAGED),
    row("lock good.yaml --out corrupt", 2, DAMAGED),
    row("lock good.yaml --out adir", 2, r"adir: no run recorded here, nothing to lock"),
    # a missing optional engine: said before anything is sent or written
    row(
        "run good.yaml --yes --out pq --manifest-format parquet",
        2,
        r"a parquet manifest needs pyarrow, which is not installed: pip install 'ideopipe\[parquet\]'",
        PRE="noarrow",
    ),
    # lock after a rehearsal on the emulator
    row(
        "lock ideo.yaml",
        2,
        r"no finished task of provider 'ideogram' to lock; the runs here used "
        r"'emulator' — .*`ideopipe lock ideo\.yaml --provider emulator`",
    ),
    row("lock ideo.yaml --provider emulator", 0, r"ideo\.yaml\.lock\.json: 1 task\(s\) locked"),
    # manifests that are not one
    row("rerun missing.csv", 2, r"missing\.csv: no such manifest"),
    row("rerun good.yaml", 2, r"good\.yaml: a recipe, not a manifest"),
    row("rerun adir", 2, r"adir: no manifest\.csv, \.parquet or \.jsonl here"),
    row("rerun file", 2, r"file: not a manifest \(expected a \.csv, \.parquet or \.jsonl file"),
    row("rerun m.csv", 2, r"m\.csv: this manifest is not inside the output folder its run wrote"),
    row("rerun corrupt", 2, DAMAGED),
    row("rerun junk", 2, r"manifest\.csv: not an ideopipe manifest \(no column run_id, task_id"),
    row("rerun nomanifest", 2, r"nomanifest: no manifest.*`ideopipe doctor nomanifest --repair`"),
    row("rerun out --where nope~==", 2, r"--where 'nope ==': "),
    row("rerun out --step zzz", 2, r"no manifest rows selected: nothing to rerun"),
    # output folders that are not one
    *[
        row(f"{verb} {arg}", 2, msg)
        for verb in ("report", "runs")
        for arg, msg in (
            ("missing", r"missing: no such folder — " + NOT_OUT),
            ("good.yaml", r"good\.yaml: a recipe, not an output folder — " + NOT_OUT),
            ("adir", r"adir: not an ideopipe output folder \(no \.ideopipe/state\.db\)"),
            ("file", r"file: a file, not an output folder"),
            ("corrupt", DAMAGED),
        )
    ],
    *[
        row(f"{verb} {name}", 2, r"manifest\.csv: cannot be read as a manifest \(")
        for verb in ("report", "rerun")
        for name in ("binmanifest", "emptymanifest")
    ],
    row("report nomanifest", 2, r"no manifest.*`ideopipe doctor nomanifest --repair` rebuilds it"),
    # upkeep of an output folder
    *[
        row(f"{verb} {arg}", 2, msg)
        for verb in ("gc", "doctor")
        for arg, msg in (
            ("missing", r"missing: no such folder — " + NOT_OUT),
            ("good.yaml", r"good\.yaml: a recipe, not an output folder — " + NOT_OUT),
            ("file", r"file: a file, not an output folder"),
        )
    ],
    *[
        row(f"export {arg} --to deliver --sizes x-post", 2, msg)
        for arg, msg in (
            ("missing", r"missing: no such folder — " + NOT_OUT),
            ("good.yaml", r"good\.yaml: a recipe, not an output folder — " + NOT_OUT),
        )
    ],
    row("export out --to deliver --sizes bogus", 2, r"--sizes: unknown preset 'bogus' — known presets: "),
    row("export out", 2, r"export: the following arguments are required: --to, --sizes"),
    row("gc out", 0, r"would remove 0 unreferenced image\(s\)"),
    row("doctor corrupt", 1, r"problem: \S*state\.db: the journal is damaged \(file is not a database\)"),
    # the emulator's knobs
    row("emulator --port 99999", 2, r"--port: '99999': expected a port from 0 to 65535"),
    row("emulator --fault-rate 2", 2, r"fault_rate 2\.0: expected a probability in \[0, 1\]"),
    row("emulator --faults bogus", 2, r"unknown fault kinds \['bogus'\]"),
    row("emulator --max-in-flight 0", 2, r"--max-in-flight: '0': expected a number of at least 1"),
    row("emulator --latency-ms -1", 2, r"--latency-ms: '-1': expected a number of at least 0"),
]


@pytest.fixture(scope="module")
def outcomes(world: Path) -> dict[Row, subprocess.CompletedProcess[str]]:
    """Every row of the table, run four at a time (each is an independent process)."""

    def one(case: Row) -> subprocess.CompletedProcess[str]:
        return ideopipe(*case.argv, cwd=world, **{k: str(world / v) for k, v in case.env})

    with ThreadPoolExecutor(4) as pool:
        return dict(zip(TABLE, pool.map(one, TABLE)))


@pytest.mark.parametrize("case", TABLE, ids=str)
def test_broken_input_gets_one_clear_sentence(outcomes, case: Row):
    done = outcomes[case]
    output = done.stdout + done.stderr
    assert "Traceback" not in output
    assert done.returncode == case.code, output
    assert re.search(case.message, output), output
    if case.code:
        assert "internal error" not in output
        lines = [ln for ln in done.stderr.splitlines() if ln.startswith("ideopipe: ")]
        assert len(lines) <= 2, done.stderr  # one sentence (plus a recipe error count)


def test_the_table_covers_every_verb():
    from pipeline.cli import VERBS

    assert len(TABLE) >= 40
    assert set(VERBS) <= {r.argv[0] for r in TABLE if r.argv}


def test_refused_runs_write_nothing(world: Path, outcomes):
    """The refusals above happen before the output folder is made."""
    assert not (world / "pq").exists()
    assert not (world / "file" / "sub").exists()


@pytest.mark.parametrize(
    "argv", [("report", "out", "--open"), ("run", "good.yaml", "--yes", "--quiet", "--open", "--out", "rel")]
)
def test_open_with_a_relative_path(world: Path, argv: tuple[str, ...]):
    opened = world / "opened.txt"
    opened.unlink(missing_ok=True)
    done = ideopipe(*argv, cwd=world)
    assert done.returncode == 0, done.stderr
    folder = argv[-1] if argv[0] == "run" else argv[1]
    assert opened.read_text().split() == [(world / folder / "report.html").resolve().as_uri()]


def test_help_lists_every_verb_and_each_verb_has_an_example(world: Path):
    from pipeline.cli import VERBS

    top = ideopipe("--help", cwd=world)
    assert top.returncode == 0
    for verb in VERBS:
        assert re.search(rf"^\s+{verb}\s+\S", top.stdout, re.MULTILINE), verb
        own = ideopipe(verb, "--help", cwd=world)
        assert own.returncode == 0
        assert re.search(rf"example:\n  ideopipe {verb} ", own.stdout), own.stdout


def test_an_unexpected_error_is_one_sentence_unless_debugging(monkeypatch, capsys):
    """The last-resort handler: a bug is reported in one line; IDEOPIPE_DEBUG=1 re-raises it."""
    from pipeline import cli
    from pipeline.cli import schema

    def broken(args):
        raise RuntimeError("the schema fell over")

    monkeypatch.setattr(schema, "handle", broken)
    monkeypatch.delenv("IDEOPIPE_DEBUG", raising=False)
    assert cli.main(["schema"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "ideopipe: internal error: RuntimeError: the schema fell over — please report "
        "it (IDEOPIPE_DEBUG=1 shows the traceback)\n"
    )
    monkeypatch.setenv("IDEOPIPE_DEBUG", "1")
    with pytest.raises(RuntimeError, match="the schema fell over"):
        cli.main(["schema"])


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (JournalCorrupt("x"), 2),
        (BudgetExceeded("x"), 2),
        (RuntimeError("x"), 1),
        (KeyboardInterrupt(), SIGNAL_EXIT_CODES["SIGINT"]),
    ],
)
def test_exit_codes_come_from_one_place(exc: BaseException, code: int):
    assert exit_code(exc) == code


def test_help_imports_no_heavy_module(world: Path):
    """`ideopipe --help` stays fast: pandas, Jinja2, jsonschema, requests, Pillow and tqdm load
    only where a verb uses them."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pipeline", "--help"],
        cwd=world,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines()}
    assert "pipeline.cli" in imported
    heavy = {"pandas", "numpy", "jinja2", "jsonschema", "requests", "PIL", "tqdm", "yaml"}
    assert not heavy & imported, heavy & imported


def test_emulator_on_a_busy_port_says_so(world: Path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = ideopipe("emulator", "--port", str(port), cwd=world)
    assert done.returncode == 2, done.stderr
    assert done.stderr == f"ideopipe: cannot listen on 127.0.0.1:{port}: Address already in use\n"
