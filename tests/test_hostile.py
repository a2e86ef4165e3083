"""Hostile inputs: each one is refused (exit 2) with a message naming the file, no traceback,
nothing written, in bounded time and memory. The corpus lives in tests/hostile/; big and
binary files are generated here, in a temporary folder."""

from __future__ import annotations

import re
import shutil
import struct
import time
import tracemalloc
import zlib
from pathlib import Path

import pytest
from hostile_kit import CORPUS, MB, Case, gen_file, gen_recipe, write_big
from hostile_valid import VALID_CASES
from PIL import Image

from pipeline.api import plan_file
from pipeline.cli import main

MAX_SECONDS = 15.0  # a bomb left unguarded takes minutes; a loaded 2-core machine takes seconds
MAX_PEAK_MB = 64  # Python allocations during one refusal, bombs included


# -- generated files ----------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int, idat: bytes = b"\x00\x00") -> bytes:
    """A greyscale PNG whose header says width x height, whatever its data holds."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(idat))
        + _chunk(b"IEND", b"")
    )


def zlib_bomb_png(side: int = 6000) -> bytes:
    """A real, valid side x side all-black PNG: ~35 kB on disk, 36 MB once decoded."""
    z = zlib.compressobj(9)
    row = b"\x00" * (side + 1)
    data = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def make_images(tmp: Path) -> None:
    Image.new("RGB", (64, 64), (200, 30, 30)).save(tmp / "img.png")
    Image.new("L", (32, 32), 0).save(tmp / "small-mask.png")
    Image.new("RGB", (64, 64), (128, 128, 128)).save(tmp / "grey-mask.png")
    (tmp / "notes.png").write_text("#!/bin/sh\nrm -rf /\n", encoding="utf-8")
    (tmp / "bomb.png").write_bytes(png_claiming(100_000, 100_000))
    (tmp / "zbomb.png").write_bytes(zlib_bomb_png())


def recipe_text(prompt: str) -> str:
    return (
        "version: 1\nname: t\nrows: [{product: shoe}]\nsteps:\n  - id: a\n    op: generate\n"
        f"    prompt: '{prompt}'\noutput: {{dir: out}}\n"
    )


# -- the cases ----------------------------------------------------------------------------


def gen_big_recipe(tmp: Path) -> Path:
    path = tmp / "recipe.yaml"
    write_big(
        path, b"version: 1\nname: t\nsteps: [{id: a, op: generate, prompt: x}]\n# ", b"lol ", 50 * MB, b"\n"
    )
    return path


def gen_big_cell(tmp: Path) -> None:
    write_big(tmp / "data.csv", b"sku,product,note\nA1,shoe,", b"A", 50 * MB, b"\n")


def gen_big_quoted_cell(tmp: Path) -> None:
    write_big(tmp / "data.csv", b'sku,product,note\nA1,shoe,"', b"line of text\n", 50 * MB, b'"\n')


def gen_symlink_out(tmp: Path) -> None:
    (tmp / "outside").mkdir()
    (tmp / "out").mkdir()
    (tmp / "out" / "link").symlink_to(tmp / "outside")


def gen_images(tmp: Path) -> None:
    make_images(tmp)


def device_recipe(tmp: Path) -> Path:
    return Path("/dev/zero")


def folder_recipe(tmp: Path) -> Path:
    (tmp / "recipe.yaml").mkdir()
    return tmp / "recipe.yaml"


TPL = r"{R}:7:13: steps\[0\]\.prompt: "  # where every tpl-*.yaml prompt is


def refused(reason: str) -> str:
    """A tpl-*.yaml refusal; under heavy load the one-second guard may trip first: either refuses."""
    return TPL + r"template refused: (?:" + reason + r"|the template ran for more than 1 s)" + ROW


ROW = r" — row {R}:3$"
DATA = r"^data\.csv:"

CASES = [
    # YAML that tries to run code or explode
    Case(
        "yaml-python-apply",
        "yaml-python-apply.yaml",
        [r"{R}:2:7: tag 'tag:yaml\.org,2002:python/object/apply:os\.system' is not allowed"],
    ),
    Case(
        "yaml-python-object-new",
        "yaml-python-object-new.yaml",
        [r"{R}:4:6: tag '.*python/object/new:subprocess\.Popen' is not allowed"],
    ),
    Case(
        "yaml-python-name",
        "yaml-python-name.yaml",
        [r"{R}:3:11: tag '.*python/name:os\.system' is not allowed"],
    ),
    Case(
        "yaml-python-module",
        "yaml-python-module.yaml",
        [r"{R}:3:11: tag '.*python/module:os' is not allowed"],
    ),
    Case("yaml-python-tuple", "yaml-python-tuple.yaml", [r"{R}:3:11: tag '.*python/tuple' is not allowed"]),
    Case(
        "yaml-local-tag",
        "yaml-local-tag.yaml",
        [r"{R}:3:11: tag '!ruby/object:Gem::Installer' is not allowed"],
    ),
    Case("yaml-binary-tag", "yaml-binary-tag.yaml", [r"{R}:3:11: tag '.*binary' is not allowed"]),
    Case("yaml-set-tag", "yaml-set-tag.yaml", [r"{R}:3:7: tag '.*set' is not allowed"]),
    Case(
        "yaml-billion-laughs",
        "yaml-billion-laughs.yaml",
        [r"{R}:\d+:\d+: document expands to more than 200,000 values \(an alias bomb\?\)"],
    ),
    Case(
        "yaml-recursive-alias",
        "yaml-recursive-alias.yaml",
        [r"{R}:3:7: an alias refers to the value that contains it"],
    ),
    Case(
        "yaml-merge-loop",
        "yaml-merge-loop.yaml",
        [r"{R}:\d+:\d+: an alias refers to the value that contains it"],
    ),
    Case(
        "yaml-deep-nesting",
        None,
        [r"^{R}:3:\d+: nested more than 64 levels deep$"],
        make=gen_recipe("version: 1\nname: t\nvars: {x: " + "[" * 20_000 + "]" * 20_000 + "}\n"),
    ),
    Case(
        "yaml-deep-mappings",
        None,
        [r"{R}:3:\d+: nested more than 64 levels deep"],
        make=gen_recipe("version: 1\nname: t\nvars: " + "{a: " * 200 + "1" + "}" * 200 + "\n"),
    ),
    Case(
        "yaml-huge-int",
        None,
        [r"{R}:3:7: unreadable value: Exceeds the limit \(4300 digits\)"],
        make=gen_recipe("version: 1\nname: t\nseed: " + "9" * 5000 + "\nsteps: []\n"),
    ),
    Case(
        "yaml-50mb",
        None,
        [r"^{R}: file is 52,428,800 bytes; recipes are limited to 1,048,576$"],
        make=gen_big_recipe,
    ),
    Case(
        "yaml-not-utf8",
        None,
        [r"^{R}:3: not valid UTF-8$"],
        make=gen_recipe(b"version: 1\nname: t\ndescription: \xff\xfe\x00bad\n"),
    ),
    Case("yaml-device", None, [r"^/dev/zero: cannot read: not a regular file$"], make=device_recipe),
    Case("yaml-folder", None, [r"^{R}: cannot read: a folder$"], make=folder_recipe),
    Case("yaml-duplicate-key", "yaml-duplicate-key.yaml", [r"{R}:4:1: duplicate key 'steps'"]),
    Case(
        "yaml-multi-document",
        "yaml-multi-document.yaml",
        [r"{R}:4:1: invalid YAML: but found another document"],
    ),
    # recipes with the wrong shape
    Case(
        "recipe-wrong-types",
        "recipe-wrong-types.yaml",
        [
            r"{R}:1:10: version: 1 was expected",
            r"{R}:2:7: name: \['t'\] is not of type 'string'",
            r"{R}:3:14: concurrency: 1000 is greater than the maximum of 64",
            r"{R}:4:\d+: timeouts\.read: -1 is less than or equal to the minimum of 0",
            r"{R}:6:9: steps\[0\]\.id: 7 is not of type 'string'",
            r"{R}:8:13: steps\[0\]\.prompt: \{'text': 'x'\} is not of type 'string'",
            r"{R}:9:17: steps\[0\]\.num_images: -1 is not valid here: -1 is less than the minimum of 1",
            r"^ideopipe: 7 error\(s\); nothing was sent$",
        ],
    ),
    Case(
        "recipe-unknown-fields",
        "recipe-unknown-fields.yaml",
        [
            r"{R}:3:\d+: __class__: unknown field '__class__'",
            r"{R}:8:\d+: steps\[0\]\.callback: unknown field 'callback'",
            r"{R}:9:\d+: steps\[0\]\.__init__: unknown field '__init__'",
        ],
    ),
    Case(
        "recipe-unknown-op",
        "recipe-unknown-op.yaml",
        [r"{R}:5:9: steps\[0\]\.op: unknown op 'exec' — expected one of generate, remix, "],
    ),
    Case(
        "recipe-matrix-bomb",
        "recipe-matrix-bomb.yaml",
        [
            r"{R}:5:3: matrix: 10,000,000,000 combinations \(10 x 10 x 10 x 10 x 10 x 10 x 10 x 10 "
            r"x 10 x 10\); the limit is 10,000 — each row runs once per combination"
        ],
    ),
    Case(
        "recipe-fan-out-bomb",
        "recipe-fan-out-bomb.yaml",
        [
            r"{R}:10:5: steps\[5\]: the steps up to 's6' would make 299,592 images for each row; "
            r"the limit is 100,000"
        ],
    ),
    Case("recipe-cycle", "recipe-cycle.yaml", [r"{R}:4:\d+: steps\[0\]\.input: cycle: a -> c -> b -> a"]),
    # templates that try to escape the sandbox or eat the machine
    Case(
        "tpl-class-escape",
        "tpl-class-escape.yaml",
        [
            TPL + r"template refused by the sandbox: access to attribute '__class__' of 'str' "
            r"object is unsafe\." + ROW
        ],
    ),
    Case(
        "tpl-attr-escape",
        "tpl-attr-escape.yaml",
        [
            TPL + r"template refused by the sandbox: access to attribute '__class__' of 'str' "
            r"object is unsafe\." + ROW
        ],
    ),
    Case(
        "tpl-globals-escape",
        "tpl-globals-escape.yaml",
        [
            TPL + r"template refused by the sandbox: access to attribute '__init__' of 'type' "
            r"object is unsafe\." + ROW
        ],
    ),
    Case(
        "tpl-range",
        "tpl-range.yaml",
        [
            TPL + r"template failed: OverflowError: Range too big\. The sandbox blocks ranges "
            r"larger than MAX_RANGE \(100000\)\." + ROW
        ],
    ),
    Case("tpl-repeat", "tpl-repeat.yaml", [refused(r"repetition would produce 1,000,000,000 items")]),
    Case("tpl-power", "tpl-power.yaml", [refused(r"exponent 10000000000 is too large")]),
    Case("tpl-lipsum", "tpl-lipsum.yaml", [TPL + r"undefined variable: 'lipsum' is undefined" + ROW]),
    Case(
        "tpl-for-bomb",
        "tpl-for-bomb.yaml",
        [
            refused(
                r"the template takes more than 100,000 steps \(loop turns, "
                r"calls and filters\)"
            )
        ],
    ),
    Case(
        "tpl-macro-bomb",
        "tpl-macro-bomb.yaml",
        [
            refused(
                r"the template (takes more than 100,000 steps \(loop turns, "
                r"calls and filters\)|ran for more than 1 s)"
            )
        ],
    ),
    Case("tpl-doubling", "tpl-doubling.yaml", [refused(r"the text would be longer than 100,000 characters")]),
    Case(
        "tpl-shared-list",
        "tpl-shared-list.yaml",
        [refused(r"a call's argument would be longer than 100,000 characters")],
    ),
    Case(
        "tpl-format-width",
        "tpl-format-width.yaml",
        [refused(r"a format width or precision of a million or more")],
    ),
    Case(
        "tpl-str-format-width",
        "tpl-str-format-width.yaml",
        [refused(r"format width 1,000,000,000 is larger than 100,000")],
    ),
    Case("tpl-center", "tpl-center.yaml", [refused(r"center width 1,000,000,000 is larger than 100,000")]),
    Case("tpl-replace-bomb", "tpl-replace-bomb.yaml", [refused(r"replace would be too long")]),
    Case("tpl-join-bomb", "tpl-join-bomb.yaml", [refused(r"join would be too long")]),
    Case(
        "tpl-mutate-row",
        "tpl-mutate-row.yaml",
        [
            TPL + r"template refused by the sandbox: access to attribute 'update' of 'dict' "
            r"object is unsafe\." + ROW
        ],
    ),
    Case(
        "tpl-include",
        "tpl-include.yaml",
        [TPL + r"template failed: TypeError: no loader for this environment specified" + ROW],
    ),
    Case(
        "tpl-deep-parens",
        None,
        [
            r"{R}:7:13: steps\[0\]\.prompt: template syntax error: "
            r"the template nests too deeply"
        ],
        make=gen_recipe(recipe_text("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}")),
    ),
    # rows
    Case(
        "csv-ragged",
        "uses-csv.yaml",
        [DATA + r"4: has 2 fields, the header has 3$", DATA + r"5: has 4 fields, the header has 3$"],
        data={"data.csv": "csv-ragged.csv"},
    ),
    Case(
        "csv-duplicate-keys",
        "uses-csv.yaml",
        [r"{R}:3:\d+: rows\.key: duplicate row key 'A1': data\.csv:2 and data\.csv:4"],
        data={"data.csv": "csv-duplicate-keys.csv"},
    ),
    Case(
        "csv-unterminated-quote",
        "uses-csv.yaml",
        [DATA + r"\d+: unreadable CSV: "],
        data={"data.csv": "csv-unterminated-quote.csv"},
    ),
    Case(
        "csv-nul",
        "uses-csv.yaml",
        [DATA + r"3: contains a NUL byte"],
        make=gen_file("data.csv", b"sku,product,note\nA1,shoe,x\nA2,h\x00t,y\n"),
    ),
    Case(
        "csv-utf16",
        "uses-csv.yaml",
        [DATA + r"1: not valid UTF-8$"],
        make=gen_file("data.csv", "sku,product,note\nA1,shoe,x\n".encode("utf-16")),
    ),
    Case(
        "csv-50mb-cell",
        "uses-csv.yaml",
        [DATA + r"2: line is longer than 4,194,304 characters — cells are limited to 1,048,576"],
        make=gen_big_cell,
    ),
    Case(
        "csv-50mb-quoted-cell",
        "uses-csv.yaml",
        [
            DATA + r"\d+: unreadable CSV: field larger than field limit \(1048576\) — cells are "
            r"limited to 1,048,576 characters"
        ],
        make=gen_big_quoted_cell,
    ),
    Case(
        "csv-key-escapes-output",
        "uses-csv.yaml",
        [
            r"{R}:\d+:\d+: output\.file: '\.\./\.\./\.\./etc/cron\.d/ideopipe/a-0-\d+\.png': "
            r"contains '\.\.'; output\.file must stay inside output\.dir — row data\.csv:2$"
        ],
        data={"data.csv": "csv-key-escape.csv"},
    ),
    Case(
        "jsonl-not-object",
        "uses-jsonl.yaml",
        [
            r"^data\.jsonl:2: each line must be a JSON object$",
            r"^data\.jsonl:3: each line must be a JSON object$",
        ],
        data={"data.jsonl": "jsonl-not-object.jsonl"},
    ),
    Case(
        "jsonl-huge-int",
        "uses-jsonl.yaml",
        [r"^data\.jsonl:1: invalid JSON: Exceeds the limit \(4300 digits\)"],
        data={"data.jsonl": "jsonl-huge-int.jsonl"},
    ),
    Case(
        "jsonl-deep",
        "uses-jsonl.yaml",
        [r"^data\.jsonl:1: invalid JSON: nested too deeply$"],
        make=gen_file("data.jsonl", b'{"product": ' + b"[" * 200_000 + b"]" * 200_000 + b"}\n"),
    ),
    # output paths
    Case(
        "output-dotdot",
        "output-dotdot.yaml",
        [
            r"{R}:7:9: output\.file: '\.\./\.\./1-\d+\.png': contains '\.\.'; output\.file must "
            r"stay inside output\.dir" + ROW
        ],
    ),
    Case(
        "output-absolute",
        "output-absolute.yaml",
        [
            r"{R}:7:9: output\.file: '/etc/cron\.d/\d+': is an absolute path; output\.file must "
            r"stay inside output\.dir" + ROW
        ],
    ),
    Case(
        "output-con",
        "output-con.yaml",
        [r"{R}:7:9: output\.file: '1/CON\.png': 'CON\.png' is a reserved file name on Windows" + ROW],
    ),
    Case(
        "output-nul",
        "output-nul.yaml",
        [r"{R}:7:9: output\.file: '1\\x00\.png': contains a NUL character" + ROW],
    ),
    Case(
        "output-symlink",
        "output-symlink.yaml",
        [r"{R}:7:9: output\.file: 'link/1-\d+\.png' escapes output\.dir through a symlink"],
        make=gen_symlink_out,
    ),
    # input images
    Case(
        "image-file-url",
        "image-file-url.yaml",
        [r"{R}:7:12: steps\[0\]\.image: 'file:///etc/passwd': only http\(s\) URLs are allowed"],
    ),
    Case(
        "image-data-url",
        "image-data-url.yaml",
        [
            r"{R}:7:12: steps\[0\]\.image: 'data:image/png;base64,.*': only http\(s\) URLs are "
            r"allowed, not data scheme"
        ],
    ),
    Case("image-ftp", "image-ftp.yaml", [r"{R}:7:12: .*not ftp scheme"]),
    Case(
        "image-private-ip",
        "image-private-ip.yaml",
        [
            r"{R}:7:12: steps\[0\]\.image: 'http://10\.0\.0\.5/x\.png': 10\.0\.0\.5 is a private or "
            r"link-local address \(set allow_private_urls: true to allow it\)"
        ],
    ),
    Case(
        "image-link-local",
        "image-link-local.yaml",
        [r"{R}:7:12: .*169\.254\.169\.254 is a private or link-local address"],
    ),
    Case(
        "image-integer-ip",
        "image-integer-ip.yaml",
        [r"{R}:7:12: .*2852039166 is a private or link-local address"],
    ),
    Case(
        "image-not-an-image",
        "image-not-image.yaml",
        [r"{R}:7:12: steps\[0\]\.image: .*/notes\.png is not a PNG, JPEG or WebP image"],
        make=gen_images,
    ),
    Case(
        "image-etc-passwd",
        "image-etc-passwd.yaml",
        [r"{R}:7:12: steps\[0\]\.image: /etc/passwd is not a PNG, JPEG or WebP image"],
    ),
    Case(
        "image-device", "image-device.yaml", [r"{R}:7:12: steps\[0\]\.image: /dev/zero is not a regular file"]
    ),
    Case(
        "image-header-bomb",
        "image-header-bomb.yaml",
        [r"{R}:7:12: steps\[0\]\.image: .*/bomb\.png: refused as a decompression bomb"],
        make=gen_images,
    ),
    Case(
        "image-zlib-bomb",
        "image-zlib-bomb.yaml",
        [
            r"{R}:7:12: steps\[0\]\.image: .*/zbomb\.png says it is 6000x6000 pixels; input images "
            r"are limited to 25,000,000 pixels"
        ],
        make=gen_images,
    ),
    Case(
        "mask-wrong-size",
        "mask-wrong-size.yaml",
        [
            r"{R}:8:11: steps\[0\]\.mask: mask is 32x32 but the image is 64x64; they must be the "
            r"same size" + ROW
        ],
        make=gen_images,
    ),
    Case(
        "mask-not-black-and-white",
        "mask-grey.yaml",
        [
            r"{R}:8:11: steps\[0\]\.mask: mask must be black and white only \(black marks what to "
            r"repaint\)" + ROW
        ],
        make=gen_images,
    ),
]


@pytest.fixture(scope="session")
def tally() -> dict[str, int]:
    """How many hostile inputs ran, and how many were refused as they should be."""
    return {"run": 0, "rejected": 0}


@pytest.fixture
def case_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder that is also the working directory (so stray writes would show)."""
    folder = tmp_path / "case"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture(scope="module", autouse=True)
def _warm_caches(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Load the schemas and the OpenAPI document once, so they do not count as a case's memory."""
    folder = tmp_path_factory.mktemp("warm")
    (folder / "r.yaml").write_text(recipe_text("{{ product }}"), encoding="utf-8")
    plan_file(folder / "r.yaml")


@pytest.fixture(scope="module")
def emulator_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output folder of one real run against the embedded emulator (for manifest cases)."""
    folder = tmp_path_factory.mktemp("run")
    shutil.copy(CORPUS / "emulator-run.yaml", folder / "recipe.yaml")
    assert main(["run", str(folder / "recipe.yaml"), "--yes", "--quiet"]) == 0
    return folder / "out"


CASES += VALID_CASES


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_is_refused(
    case: Case,
    case_dir: Path,
    capsys: pytest.CaptureFixture[str],
    tally: dict[str, int],
    request: pytest.FixtureRequest,
):
    tally["run"] += 1
    if case.needs_run:
        shutil.copytree(request.getfixturevalue("emulator_run"), case_dir / "out", symlinks=True)
    recipe = case.setup(case_dir)
    before = tree(case_dir)
    argv = [a.replace("{R}", str(recipe)).replace("{T}", str(case_dir)) for a in case.argv]
    tracemalloc.start()
    started = time.monotonic()
    try:
        code = main(argv)
    finally:
        elapsed = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    out, err = capsys.readouterr()
    assert code == 2, err
    assert out == ""
    assert "Traceback" not in err
    for pattern in case.expect:
        pattern = pattern.replace("{R}", re.escape(str(recipe)))
        assert re.search(pattern.replace("{T}", re.escape(str(case_dir))), err, re.MULTILINE), err
    assert re.search(case.summary, err, re.MULTILINE), err
    assert tree(case_dir) == before  # nothing written: no out dir, no stray file
    assert not (case_dir / "hostile-pwned").exists()
    assert elapsed < MAX_SECONDS
    assert peak < MAX_PEAK_MB * MB, f"peak {peak / MB:.0f} MiB"
    tally["rejected"] += 1


# -- hostile-looking, but valid: data stays data ------------------------------------------


def test_formula_and_template_cells_are_just_data(case_dir: Path):
    shutil.copy(CORPUS / "uses-csv.yaml", case_dir / "recipe.yaml")
    shutil.copy(CORPUS / "csv-formula.csv", case_dir / "data.csv")
    prompts = [t.params["prompt"] for t in plan_file(case_dir / "recipe.yaml").tasks]
    assert prompts == [
        '=HYPERLINK("http://evil.example/","click"): {{ 7*7 }}',
        "@SUM(1+1): {% for i in range(10**9) %}x{% endfor %}",
        "+cmd|' /C calc'!A0: -2+3",
    ]


def test_bom_csv_is_valid(case_dir: Path):
    shutil.copy(CORPUS / "uses-csv.yaml", case_dir / "recipe.yaml")
    (case_dir / "data.csv").write_bytes("\ufeffsku,product,note\nA1,shoe,x\n".encode())
    (task,) = plan_file(case_dir / "recipe.yaml").tasks
    assert (task.row_key, task.params["prompt"]) == ("A1", "shoe: x")


def test_a_large_cell_under_the_limit_is_data(case_dir: Path):
    shutil.copy(CORPUS / "uses-csv.yaml", case_dir / "recipe.yaml")
    (case_dir / "data.csv").write_text(
        "sku,product,note,blob\nA1,shoe,x," + "b" * 900_000 + "\n", encoding="utf-8"
    )
    (task,) = plan_file(case_dir / "recipe.yaml").tasks
    assert task.params["prompt"] == "shoe: x"


def test_every_case_was_refused(tally: dict[str, int], capsys: pytest.CaptureFixture[str]):
    """Runs last in this module: prints the tally."""
    assert len(CASES) >= 130
    with capsys.disabled():
        print(f"\nhostile inputs rejected: {tally['rejected']}/{tally['run']}")
    assert tally["run"] > 0
    assert tally["rejected"] == tally["run"]
