"""Loading and validating recipes: the schema, YAML, rows and templates, through `validate`."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from conftest import write_recipe_file

from pipeline import templating
from pipeline.cli import main
from pipeline.errors import RecipeError, SchemaError
from pipeline.recipe import load_recipe
from pipeline.rows import read_rows

HEAD = """\
version: 1
name: t
"""


def with_head(body: str) -> str:
    """`version` and `name`, then a dedented body."""
    return HEAD + textwrap.dedent(body)


write = write_recipe_file


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def validate(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main(["validate", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


# -- bad input: each kind, with where it is and what to do --------------------------------

# (id, recipe, side files, regexes stderr must match). `{R}` stands for the recipe's path.
BAD = [
    (
        "unknown-op",
        """\
        version: 1
        name: t
        rows: [{product: shoe}]
        steps:
          - id: hero
            op: remixx
            prompt: x
        output: {dir: out}
        """,
        {},
        [r"{R}:6:9: steps\[0\]\.op: unknown op 'remixx' — did you mean 'remix'\?"],
    ),
    (
        "unknown-step-field",
        """\
        version: 1
        name: t
        steps:
          - id: hero
            op: generate
            promt: x
        output: {dir: out}
        """,
        {},
        [
            r"{R}:6:\d+: steps\[0\]\.promt: unknown field 'promt' — did you mean "
            r"'prompt'\?"
        ],
    ),
    (
        "unknown-top-field",
        """\
        version: 1
        nmae: t
        name: t
        steps: [{id: hero, op: generate, prompt: x}]
        """,
        {},
        [r"{R}:2:\d+: nmae: unknown field 'nmae' — did you mean 'name'\?"],
    ),
    (
        "unknown-field-no-close-match",
        """\
        version: 1
        name: t
        steps: [{id: hero, op: generate, prompt: x, zzzz: 1}]
        """,
        {},
        [r"{R}:3:\d+: steps\[0\]\.zzzz: unknown field 'zzzz' — known fields: id, op, "],
    ),
    (
        "wrong-type-prompt",
        """\
        version: 1
        name: t
        steps:
          - id: hero
            op: generate
            prompt: 5
        """,
        {},
        [r"{R}:6:13: steps\[0\]\.prompt: 5 is not of type 'string'"],
    ),
    (
        "wrong-type-budget",
        """\
        version: 1
        name: t
        budget_usd: ten
        steps: [{id: hero, op: generate, prompt: x}]
        """,
        {},
        [r"{R}:3:13: budget_usd: 'ten' is not of type 'number'"],
    ),
    (
        "wrong-type-steps",
        """\
        version: 1
        name: t
        steps: {id: hero}
        """,
        {},
        [r"{R}:3:8: steps: .* is not of type 'array'"],
    ),
    (
        "num-images-word",
        """\
        version: 1
        name: t
        steps:
          - id: hero
            op: generate
            prompt: x
            num_images: two
        """,
        {},
        [
            r"{R}:7:\d+: steps\[0\]\.num_images: 'two' is not valid here: expected an "
            r"integer or a template"
        ],
    ),
    (
        "num-images-9",
        """\
        version: 1
        name: t
        steps:
          - id: hero
            op: generate
            prompt: x
            num_images: 9
        """,
        {},
        [
            r"{R}:7:17: steps\[0\]\.num_images: 9 is not valid here: 9 is greater than "
            r"the maximum of 8"
        ],
    ),
    (
        "image-weight-0",
        """\
        version: 1
        name: t
        steps:
          - id: hero
            op: generate
            prompt: x
          - id: again
            op: remix
            input: hero
            prompt: x
            image_weight: 0
        """,
        {},
        [
            r"{R}:11:\d+: steps\[1\]\.image_weight: 0 is not valid here: 0 is less than "
            r"the minimum of 1"
        ],
    ),
    (
        "python-tag",
        """\
        version: 1
        name: !!python/object/apply:os.system ["echo hi"]
        steps: [{id: hero, op: generate, prompt: x}]
        """,
        {},
        [r"{R}:2:7: tag '.*python/object/apply:os\.system' is not allowed"],
    ),
    (
        "duplicate-yaml-key",
        """\
        version: 1
        name: t
        name: u
        steps: [{id: hero, op: generate, prompt: x}]
        """,
        {},
        [r"{R}:3:1: duplicate key 'name'"],
    ),
    (
        "yaml-syntax",
        """\
        version: 1
        name: t
        steps: [{id: hero, op: generate, prompt: x}
        """,
        {},
        [r"{R}:4:1: invalid YAML: "],
    ),
    (
        "undefined-variable-names-csv-line",
        """\
        version: 1
        name: t
        rows: {csv: data.csv, key: "{{ sku }}"}
        steps:
          - id: hero
            op: generate
            prompt: "{{ product }} in {{ colour }}"
        output: {dir: out}
        """,
        {"data.csv": 'sku,product\nA,"two\nlines"\nB,hat\n'},
        [
            r"{R}:7:13: steps\[0\]\.prompt: undefined variable: 'colour' is undefined — row "
            r"data\.csv:2; the same problem on 1 more row$"
        ],
    ),
    (
        "undefined-variable-inline-row",
        """\
        version: 1
        name: t
        rows:
          - {product: shoe}
          - {prodcut: hat}
        steps:
          - id: hero
            op: generate
            prompt: "{{ product }}"
        """,
        {},
        [
            r"{R}:9:13: steps\[0\]\.prompt: undefined variable: 'product' is undefined "
            r"\(did you mean 'prodcut'\?\) — row {R}:5$"
        ],
    ),
    (
        "template-syntax",
        """\
        version: 1
        name: t
        steps:
          - id: hero
            op: generate
            prompt: "{{ product "
        """,
        {},
        [r"{R}:6:13: steps\[0\]\.prompt: template syntax error: "],
    ),
    (
        "duplicate-row-key",
        """\
        version: 1
        name: t
        rows: {csv: data.csv, key: "{{ sku }}"}
        steps: [{id: hero, op: generate, prompt: "{{ product }}"}]
        output: {dir: out}
        """,
        {"data.csv": "sku,product\nA,shoe\nB,hat\nA,sock\n"},
        [
            r"{R}:3:\d+: rows\.key: duplicate row key 'A': data\.csv:2 and data\.csv:4 — row keys "
            r"name files"
        ],
    ),
    (
        "ragged-row",
        """\
        version: 1
        name: t
        rows: {csv: data.csv}
        steps: [{id: hero, op: generate, prompt: "{{ product }}"}]
        """,
        {"data.csv": 'sku,product\nA,"multi\nline"\nB,hat,extra\n'},
        [r"^data\.csv:4: has 3 fields, the header has 2$"],
    ),
    (
        "jsonl-bad-line",
        """\
        version: 1
        name: t
        rows: {jsonl: data.jsonl}
        steps: [{id: hero, op: generate, prompt: "{{ product }}"}]
        """,
        {"data.jsonl": '{"product": "shoe"}\n\n{"product": hat}\n[1, 2]\n'},
        [r"^data\.jsonl:3:\d+: invalid JSON: ", r"^data\.jsonl:4: each line must be a JSON object"],
    ),
    (
        "csv-missing",
        """\
        version: 1
        name: t
        rows: {csv: nope.csv}
        steps: [{id: hero, op: generate, prompt: "{{ product }}"}]
        """,
        {},
        [r"{R}:3:13: rows\.csv: csv file not found: .*nope\.csv"],
    ),
    (
        "where-undefined",
        """\
        version: 1
        name: t
        rows:
          inline: [{product: shoe}]
          where: "{{ status == 'active' }}"
        steps: [{id: hero, op: generate, prompt: "{{ product }}"}]
        """,
        {},
        [r"{R}:5:\d+: rows\.where: undefined variable: 'status' is undefined"],
    ),
]


@pytest.mark.parametrize(("recipe", "files", "expected"), [pytest.param(r, f, e, id=i) for i, r, f, e in BAD])
def test_bad_input_is_located_and_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    recipe: str,
    files: dict[str, str],
    expected: list[str],
):
    path = write(tmp_path, recipe, files)
    before = tree(tmp_path)
    code, out, err = validate(capsys, path)
    assert code == 2
    assert out == ""
    for pattern in expected:
        assert re.search(pattern.replace("{R}", re.escape(str(path))), err, re.MULTILINE), err
    assert re.search(r"^ideopipe: \d+ error\(s\); nothing was sent$", err, re.MULTILINE)
    assert "Traceback" not in err
    assert tree(tmp_path) == before  # nothing written, no out dir


def test_every_schema_error_is_reported_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = write(
        tmp_path,
        """\
        version: 1
        name: t
        colour: red
        budget_usd: free
        steps:
          - id: hero
            op: generat
            prompt: x
            num_images: 12
            wat: 1
        """,
    )
    code, _, err = validate(capsys, path)
    assert code == 2
    lines = err.splitlines()
    assert [ln.split(": ", 2)[1] for ln in lines[:-1]] == [
        "colour",
        "budget_usd",
        "steps[0].op",
        "steps[0].num_images",
        "steps[0].wat",
    ]
    assert lines[-1] == "ideopipe: 5 error(s); nothing was sent"


def test_every_planning_error_is_reported_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = write(
        tmp_path,
        with_head("""\
        rows: [{product: shoe}]
        steps:
          - id: hero
            op: generate
            prompt: "{{ product }}"
            aspect_ratio: 7x3
          - id: fix
            op: edit
            input: hero
            mask: m.png
            prompt: x
            negative_prompt: blurry
          - id: old
            op: generate
            model: V_1
            prompt: x
            style_type: DESIGN
        """),
    )
    code, _, err = validate(capsys, path)
    assert code == 2
    assert "steps[0].aspect_ratio: aspect ratio '7x3' is not accepted here" in err
    assert "steps[1].negative_prompt: edit (v3, /v1/ideogram-v3/edit) does not take 'negative_prompt'" in err
    assert "steps[2].style_type: style_type is not allowed with V_1" in err
    assert err.splitlines()[-1] == "ideopipe: 3 error(s); nothing was sent"


def test_validate_checks_every_recipe_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    good = write(tmp_path, HEAD + "steps: [{id: a, op: generate, prompt: x}]\n", name="good.yaml")
    bad = write(tmp_path, HEAD + "steps: [{id: a, op: generat, prompt: x}]\n", name="bad.yaml")
    code, out, err = validate(capsys, bad, good)
    assert code == 2
    assert f"{good}: ok (1 requests, 1 images, $0.0600)" in out
    assert f"{bad}:3:" in err


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("missing.yaml", "cannot read: no such file"),
        (".", "cannot read: a folder"),
        ("/dev/null", "cannot read: not a regular file"),
    ],
)
def test_unreadable_recipe(tmp_path: Path, capsys: pytest.CaptureFixture[str], path: str, message: str):
    target = path if path.startswith("/") else str(tmp_path / path)
    code, _, err = validate(capsys, target)
    assert code == 2
    assert f"{target}: {message}" in err


# -- accepted spellings ---------------------------------------------------------------


def plan_params(tmp_path: Path, step_extra: str, **kwargs: str) -> dict:
    from pipeline.api import plan_file

    path = write(
        tmp_path,
        HEAD
        + textwrap.dedent("""\
        rows: [{product: shoe}]
        steps:
          - id: hero
            op: generate
            prompt: x
        """)
        + textwrap.indent(textwrap.dedent(step_extra), "    "),
    )
    plan = plan_file(path, **kwargs)
    return dict(plan.tasks[0].params)


@pytest.mark.parametrize("spelling", ['"16:9"', "16:9", "ASPECT_16_9", "16x9", '"16X9"'])
def test_aspect_ratio_spellings_are_one_value(tmp_path: Path, spelling: str):
    assert plan_params(tmp_path, f"aspect_ratio: {spelling}\n")["aspect_ratio"] == "16x9"


@pytest.mark.parametrize(("model", "wire"), [("V_3", "16x9"), ("V_2A", "16x9")])
def test_aspect_ratio_accepted_on_both_families(tmp_path: Path, model: str, wire: str):
    params = plan_params(tmp_path, f"aspect_ratio: ASPECT_16_9\nmodel: {model}\n")
    assert params["aspect_ratio"] == wire


@pytest.mark.parametrize(
    ("written", "value"),
    [
        ("OFF", "OFF"),
        ("off", "OFF"),
        ("ON", "ON"),
        ('"OFF"', "OFF"),
        ("auto", "AUTO"),
    ],
)
def test_magic_prompt_bare_yaml_bool_is_accepted(tmp_path: Path, written: str, value: str):
    assert plan_params(tmp_path, f"magic_prompt: {written}\n")["magic_prompt"] == value


def test_magic_prompt_rejects_other_words(tmp_path: Path):
    with pytest.raises(
        RecipeError,
        match=r"steps\[0\]\.magic_prompt: 'MAYBE' is not accepted; "
        r"expected one of AUTO, ON, OFF",
    ):
        plan_params(tmp_path, "magic_prompt: maybe\n")


def test_fixed_seed_with_many_images_warns_but_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = write(
        tmp_path,
        with_head("""\
        rows: [{product: shoe}]
        seed: 1234
        steps:
          - id: hero
            op: generate
            prompt: x
            num_images: 3
        """),
    )
    code, out, err = validate(capsys, path)
    assert code == 0
    assert f"{path}: ok (1 requests, 3 images, $0.1800)" in out
    assert re.search(
        rf"^{re.escape(str(path))}:\d+:\d+: warning: steps\[0\]: step 'hero' has a "
        r"fixed seed and num_images 3: .* — use seed: derive",
        err,
        re.MULTILINE,
    )


# -- library errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "error", "match"),
    [
        ("version: 2\nname: t\nsteps: [{id: a, op: generate}]\n", SchemaError, r"version: 1 was expected"),
        ("- a\n- b\n", SchemaError, r"a recipe must be a YAML mapping"),
        (
            "version: 1\nname: 'bad name'\nsteps: [{id: a, op: generate}]\n",
            SchemaError,
            r"name: 'bad name' does not match",
        ),
        ("version: 1\nname: t\nsteps: []\n", SchemaError, r"steps: \[\] should be non-empty"),
        ("version: 1\nname: t\nsteps: [{op: generate}]\n", SchemaError, r"'id' is a required property"),
        (
            "version: 1\nname: t\nseed: 99999999999\nsteps: [{id: a, op: generate}]\n",
            SchemaError,
            r"seed: 99999999999 is not valid here",
        ),
        (
            "version: 1\nname: t\nbudget_usd: .nan\nprices: {upscale: .NaN}\nsteps: [{id: a, op: upscale}]\n",
            SchemaError,
            r"r\.yaml:3:13: budget_usd: NaN \(\.nan\) is not a number ideopipe can use\n"
            r".*r\.yaml:4:19: prices\.upscale: NaN",
        ),
        (
            "version: 1\nname: t\nsteps: &s [{id: a, op: generate, x: *s}]\n",
            RecipeError,
            r"an alias refers to the value that contains it",
        ),
    ],
)
def test_load_recipe_errors(tmp_path: Path, text: str, error: type[Exception], match: str):
    path = tmp_path / "r.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(error, match=match):
        load_recipe(path)


CHAIN = (
    "[{id: a, op: generate, num_images: 8}, {id: b, op: remix, input: a, num_images: 8},"
    " {id: c, op: remix, input: b, num_images: '{{ n }}'}, {id: d, op: upscale, input: c}"
)
TWO = "[{id: a, op: generate, num_images: 8}, {id: b, op: remix, input: a, num_images: 8}]"


def values(n: int) -> str:
    return "[" + ", ".join(map(str, range(n))) + "]"


@pytest.mark.parametrize(
    ("matrix", "steps", "error"),
    [
        pytest.param("{a: [1, 2], b: [x, y, z]}", TWO, None, id="small"),
        pytest.param(
            f"{{a: {values(100)}, b: {values(100)}}}",
            "[{id: a, op: generate}]",
            None,
            id="10000-combinations",
        ),
        pytest.param(
            f"{{a: {values(100)}, b: {values(101)}}}",
            "[{id: a, op: generate}]",
            r"matrix: 10,100 combinations \(100 x 101\); the limit is 10,000",
            id="10100-combinations",
        ),
        pytest.param(
            f"{{a: {values(2000)}}}",
            TWO,
            r"steps\[1\]: the steps up to 'b' would make 144,000 images for each row",
            id="combinations-times-images",
        ),
        pytest.param("{}", CHAIN + "]", None, id="chain-of-4"),
        pytest.param(
            "{}",
            CHAIN + ", {id: e, op: remix, input: d, num_images: 8},"
            " {id: f, op: remix, input: e, num_images: 8},"
            " {id: g, op: remix, input: f, num_images: 8}]",
            r"steps\[6\]: the steps up to 'g' would make 300,104 images",
            id="chain-of-7",
        ),
        pytest.param(
            "{}",
            "[{id: a, op: remix, input: b, num_images: 8}, {id: b, op: remix, input: a}]",
            None,
            id="cycle-left-to-planner",
        ),
    ],
)
def test_plan_size_limits(tmp_path: Path, matrix: str, steps: str, error: str | None):
    path = tmp_path / "r.yaml"
    path.write_text(f"version: 1\nname: t\nmatrix: {matrix}\nsteps: {steps}\n", encoding="utf-8")
    if error is None:
        load_recipe(path)
    else:
        with pytest.raises(SchemaError, match=error):
            load_recipe(path)


def test_unquoted_ratio_is_text_not_base_60(tmp_path: Path):
    path = tmp_path / "r.yaml"
    path.write_text(
        "version: 1\nname: t\nvars: {r: 16:9, n: 12, f: 1.5}\nsteps: [{id: a, op: generate}]\n",
        encoding="utf-8",
    )
    assert load_recipe(path).data["vars"] == {"r": "16:9", "n": 12, "f": 1.5}


def test_set_overrides_vars_with_yaml_scalars(tmp_path: Path):
    path = tmp_path / "r.yaml"
    path.write_text(
        "version: 1\nname: t\nvars: {brand: Acme, n: 1}\nsteps: [{id: a, op: generate}]\n", encoding="utf-8"
    )
    recipe = load_recipe(
        path,
        {
            "brand": "Zed Co",
            "n": "3",
            "on": "true",
            "raw": "[1, 2]",
            "answer": "no",
            "ratio": "16:9",
            "x": "0.5",
            "off": "False",
        },
    )
    assert recipe.data["vars"] == {
        "brand": "Zed Co",
        "n": 3,
        "on": True,
        "raw": "[1, 2]",
        "answer": "no",
        "ratio": "16:9",
        "x": 0.5,
        "off": False,
    }


def test_inline_row_keys_must_be_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = write(
        tmp_path,
        with_head("""\
        rows:
          - {product: shoe}
          - {on: yes, 3: x}
        steps: [{id: a, op: generate, prompt: x}]
        """),
    )
    code, _, err = validate(capsys, path)
    assert code == 2
    assert f"{path}:5: rows[1]: column name True is not text — quote it in the YAML" in err
    assert f"{path}:5: rows[1]: column name 3 is not text" in err


# -- rows -------------------------------------------------------------------------------


def test_csv_bom_quotes_commas_and_newlines(tmp_path: Path):
    data = '\ufeffsku,text,note\nA,"shoe, red","say ""hi"""\nB,"two\nlines",x\nC,hat,"=HYPERLINK(""http://x"")"\n'
    (tmp_path / "d.csv").write_text(data, encoding="utf-8")
    rows = read_rows({"csv": "d.csv"}, tmp_path, "r.yaml")
    assert [dict(r.values) for r in rows] == [
        {"sku": "A", "text": "shoe, red", "note": 'say "hi"'},
        {"sku": "B", "text": "two\nlines", "note": "x"},
        {"sku": "C", "text": "hat", "note": '=HYPERLINK("http://x")'},
    ]
    assert [r.line for r in rows] == [2, 3, 5]
    assert rows[2].where("note") == "d.csv:5 (column note)"


def test_csv_delimiter_and_blank_lines(tmp_path: Path):
    (tmp_path / "d.csv").write_text("sku;name\n\nA;x, y\n\nB;z\n", encoding="utf-8")
    rows = read_rows({"csv": "d.csv", "delimiter": ";"}, tmp_path, "r.yaml")
    assert [(r.values["name"], r.line) for r in rows] == [("x, y", 3), ("z", 5)]


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ("", r"d\.csv: is empty: a header line is needed"),
        ("sku,,name\n", r"d\.csv:1: header column 2 has no name"),
        ("sku,sku\n", r"d\.csv:1: header column 'sku' appears twice"),
        ('sku,name\nA,"open\n', r"d\.csv:\d+: unreadable CSV: "),
    ],
)
def test_csv_errors(tmp_path: Path, data: str, match: str):
    (tmp_path / "d.csv").write_text(data, encoding="utf-8")
    with pytest.raises(RecipeError, match=match):
        read_rows({"csv": "d.csv"}, tmp_path, "r.yaml")


def test_jsonl_rows_keep_types_and_lines(tmp_path: Path):
    (tmp_path / "d.jsonl").write_text('{"a": 1, "b": [1, 2]}\n\n{"a": "x"}\n', encoding="utf-8")
    rows = read_rows({"jsonl": "d.jsonl"}, tmp_path, "r.yaml")
    assert [(dict(r.values), r.line) for r in rows] == [({"a": 1, "b": [1, 2]}, 1), ({"a": "x"}, 3)]


def test_inline_rows_without_lines_name_their_number():
    rows = read_rows([{"a": 1}, {"a": 2}], Path("."), "r.yaml")
    assert rows[1].where() == "r.yaml (row 2)"
    with pytest.raises(RecipeError, match=r"rows\[1\]: each inline row must be a mapping"):
        read_rows([{"a": 1}, "b"], Path("."), "r.yaml")


# -- templates --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "context", "expected"),
    [
        ("{{ brand }} {{ product|upper }}", {"brand": "Acme", "product": "shoe"}, "Acme SHOE"),
        ("{{ backdrop | default('marble', true) }}", {"backdrop": ""}, "marble"),
        ("{{ '%05d'|format(42) }}-{{ '{:>4}'.format('a') }}", {}, "00042-   a"),
        ("{% for k, v in row|dictsort %}{{ k }}={{ v }};{% endfor %}", {"row": {"b": 2, "a": 1}}, "a=1;b=2;"),
        ("{{ note }}", {"note": "{{ 7*7 }}"}, "{{ 7*7 }}"),
        ("{{ (n * 2) ** 3 }}", {"n": 2}, "64"),
        ("{{ [1, 2] + [3] }}", {}, "[1, 2, 3]"),
        ("{{ 10**10**10 }}", {}, "1" + "0" * 100),  # jinja's ** groups left: (10**10)**10
        ("{{ 'a' ~ 1 ~ none }}", {}, "a1None"),
    ],
)
def test_templates_render(source: str, context: dict, expected: str):
    assert templating.render(source, context) == expected


def test_template_cannot_change_row_data():
    row = {"product": "shoe"}
    with pytest.raises(Exception, match=r"access to attribute 'update' of 'dict' object is unsafe"):
        templating.render("{{ row.update({'product': 'hat'}) }}", {"row": row})
    assert row == {"product": "shoe"}


@pytest.mark.parametrize(
    ("source", "refs"),
    [
        ("{{ input.prompt }}, retro", {"input.prompt", "input"}),
        ("{{ steps.look.text }}", {"steps.look", "steps"}),
        ("{{ product }}", set()),
    ],
)
def test_references(source: str, refs: set[str]):
    assert templating.references(source) == refs
