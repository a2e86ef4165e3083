"""Validation that helps: warnings, suggestions, shadowed columns, prose-only spec rules, every
problem at once and each once, absurd numbers."""

from __future__ import annotations

import math
import re
import textwrap
from pathlib import Path

import pytest
from conftest import write_recipe_file
from PIL import Image

from pipeline import spec
from pipeline.api import plan_file
from pipeline.cli import main
from pipeline.errors import RecipeError
from pipeline.recipe import MAX_TIMEOUT_S, check_max_cost, timeout_problem


def validate(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main(["validate", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def recipe(tmp: Path, body: str, files: dict[str, str] | None = None) -> Path:
    return write_recipe_file(tmp, "version: 1\nname: t\n" + textwrap.dedent(body), files, name="r.yaml")


CSV = "sku,product,headline\nA1,shoe,Big\nA2,hat,\nA3,sock,\n"
PROMPT = """\
    rows: {csv: data.csv, key: "{{ sku }}"%s}
    vars: {brand: Acme}
    steps: [{id: a, op: generate, prompt: "{{ brand }} {{ product }}: {{ headline }}"}]
    """


# -- warnings -----------------------------------------------------------------------------


def test_empty_cell_in_a_prompt_warns_once_with_a_count(tmp_path: Path, capsys):
    path = recipe(tmp_path, PROMPT % "", {"data.csv": CSV})
    code, _, err = validate(capsys, path)
    assert code == 0
    (line,) = [x for x in err.splitlines() if "is empty" in x]
    assert line.endswith(
        "warning: steps[0].prompt: column 'headline' is empty in row "
        "data.csv:3 (column headline), and 1 more row(s); the prompt gets "
        "nothing there — allow it with rows: {allow_empty: [headline]}"
    )


@pytest.mark.parametrize("allow", [", allow_empty: [headline]", ", allow_empty: true"])
def test_allow_empty_silences_the_warning(tmp_path: Path, capsys, allow: str):
    code, _, err = validate(capsys, recipe(tmp_path, PROMPT % allow, {"data.csv": CSV}))
    assert (code, "is empty" in err) == (0, False)


@pytest.mark.parametrize(
    "prompt",
    ["{% if headline %}{{ headline }}{% endif %}", "{{ headline | default('new') }}", "{{ product }}"],
)
def test_empty_cells_a_template_handles_are_not_warned(tmp_path: Path, capsys, prompt: str):
    path = recipe(
        tmp_path,
        f"""\
        rows: {{csv: data.csv}}
        steps: [{{id: a, op: generate, prompt: "{prompt}"}}]
        """,
        {"data.csv": CSV},
    )
    code, _, err = validate(capsys, path)
    assert (code, "is empty" in err) == (0, False)


def test_unused_set_warns_and_suggests(tmp_path: Path, capsys):
    path = recipe(tmp_path, PROMPT % ", allow_empty: true", {"data.csv": CSV})
    code, _, err = validate(capsys, path, "--set", "brnd=X", "--set", "brand=Y")
    assert code == 0
    assert "warning: --set brnd: no template uses 'brnd' — did you mean 'brand'?" in err
    assert "--set brand" not in err


def test_rows_beyond_the_data_warns(tmp_path: Path, capsys):
    path = recipe(tmp_path, PROMPT % ", allow_empty: true", {"data.csv": CSV})
    code, out, err = validate(capsys, path, "--rows", "2-9")
    assert code == 0 and "(2 requests" in out
    assert "warning: --rows 2-9: data.csv has 3 row(s), so rows 2-3 only" in err
    code, out, err = validate(capsys, path, "--rows", "5-6")
    assert "warning: --rows 5-6: data.csv has 3 row(s), so none of them" in err
    code, out, err = validate(capsys, path, "--rows", "1-3")
    assert "--rows" not in err


def test_undefined_variable_suggests_the_closest_column(tmp_path: Path, capsys):
    path = recipe(
        tmp_path,
        """\
        rows: {csv: data.csv}
        steps: [{id: a, op: generate, prompt: "{{ prodcut }}"}]
        """,
        {"data.csv": CSV},
    )
    code, _, err = validate(capsys, path)
    assert code == 2
    assert (
        "undefined variable: 'prodcut' is undefined (did you mean 'product'?) — row "
        "data.csv:2; the same problem on 2 more rows" in err
    )


# -- columns named like template names ----------------------------------------------------


def test_shadowing_column_read_bare_is_an_error(tmp_path: Path, capsys):
    path = recipe(
        tmp_path,
        """\
        rows: {csv: data.csv}
        steps: [{id: a, op: generate, prompt: "{{ product }} {{ key }}"}]
        """,
        {"data.csv": "key,product\nK1,shoe\n"},
    )
    code, _, err = validate(capsys, path)
    assert code == 2
    assert re.search(
        r"^data\.csv:1: column key: column 'key' has the name of a template variable "
        r"\(the row key\), so steps\[0\]\.prompt would not read it — write "
        r"\{\{ row\.key \}\} for the column, or rename it$",
        err,
        re.MULTILINE,
    ), err


def test_shadowing_column_read_through_row_works_with_a_warning(tmp_path: Path, capsys):
    path = recipe(
        tmp_path,
        """\
        rows: {csv: data.csv}
        steps: [{id: a, op: generate, prompt: "{{ product }} {{ row.key }} {{ row['step'] }}"}]
        """,
        {"data.csv": "key,product,step\nK1,shoe,S\n"},
    )
    (task,) = plan_file(path).tasks
    assert task.params["prompt"] == "shoe K1 S"
    code, _, err = validate(capsys, path)
    assert code == 0
    assert (
        "data.csv:1: warning: column key: column 'key' has the name of a template variable "
        "(the row key) — templates read the column as {{ row.key }}" in err
    )


# -- rules the spec states only in prose --------------------------------------------------


@pytest.mark.parametrize(
    ("family", "model", "fields", "broken"),
    [
        ("legacy", "V_1", {"color_palette": {}}, ["color_palette"]),
        ("legacy", "V_1_TURBO", {"color_palette": {}}, ["color_palette"]),
        ("legacy", "V_2A", {"color_palette": {}}, ["color_palette"]),
        ("legacy", "V_2A_TURBO", {"color_palette": {}}, ["color_palette"]),
        ("legacy", "V_2", {"color_palette": {}}, []),
        ("v3", "V_3", {"color_palette": {}}, []),
        ("legacy", "V_2A", {"negative_prompt": "x"}, ["negative_prompt"]),
        ("legacy", "V_2A_TURBO", {"negative_prompt": "x"}, ["negative_prompt"]),
        ("legacy", "V_1", {"negative_prompt": "x"}, []),
        ("legacy", "V_2_TURBO", {"negative_prompt": "x"}, []),
        ("v3", "V_3", {"negative_prompt": "x"}, []),
        ("legacy", "V_1", {"resolution": "1024x1024"}, ["resolution"]),
        ("legacy", "V_2A", {"resolution": "1024x1024"}, ["resolution"]),
        ("legacy", "V_2", {"resolution": "1024x1024"}, []),
        ("v3", "V_3", {"resolution": "1024x1024"}, []),
        ("v3", "V_3", {"style_codes": ["AAFF5733"], "style_type": "AUTO"}, ["style_codes"]),
        ("v3", "V_3", {"style_codes": ["AAFF5733"], "style_reference_images": "a.png"}, ["style_codes"]),
        (
            "v3",
            "V_3",
            {"style_codes": ["AAFF5733"], "style_type": "AUTO", "style_reference_images": ["a.png"]},
            ["style_codes", "style_codes"],
        ),
        ("v3", "V_3", {"style_codes": ["AAFF5733"], "style_preset": "ART_DECO"}, []),
        ("v3", "V_3", {"character_reference_images": ["a.png", "b.png"]}, ["character_reference_images"]),
        ("v3", "V_3", {"character_reference_images": "{{ photo }}"}, []),
        ("v3", "V_3", {"character_reference_images": ["a.png"]}, []),
    ],
)
def test_prose_rules(family: str, model: str, fields: dict, broken: list[str]):
    assert [name for name, _, _ in spec.prose_problems(family, model, fields)] == broken


def test_prose_rules_quote_the_spec():
    """Each rule's constant matches what the spec's own descriptions say today."""
    schemas = spec.openapi()["components"]["schemas"]
    palette = schemas["ColorPaletteWithPresetNameOrMembers"]["description"]
    assert "Not supported by V_1, V_1_TURBO, V_2A and V_2A_TURBO" in palette
    negative = schemas["ImageRequest"]["properties"]["negative_prompt"]["description"]
    assert "Only available for model versions V_1, V_1_TURBO, V_2 and V_2_TURBO" in negative
    assert "For model_version for 2.0 only" in schemas["Resolution"]["description"]
    assert (
        "Cannot be used in conjunction with style_reference_images or style_type"
        in schemas["StyleCodes"]["description"]
    )
    refs = schemas["GenerateImageRequestV3"]["properties"]["character_reference_images"]
    assert "only supports 1 character reference image" in refs["description"]


def test_prose_rule_from_defaults_is_located_at_the_default(tmp_path: Path):
    Image.new("RGB", (64, 64)).save(tmp_path / "img.png")
    path = recipe(
        tmp_path,
        """\
        defaults: {color_palette: {name: PASTEL}}
        steps:
          - {id: a, op: generate, prompt: x, model: V_2A}
          - {id: b, op: generate, prompt: x, model: V_2}
        """,
    )
    with pytest.raises(RecipeError) as info:
        plan_file(path)
    (problem,) = info.value.problems
    assert (problem.line, problem.path) == (3, "defaults.color_palette")
    assert problem.message == "color_palette is not supported by V_2A"


# -- every problem at once, each once -----------------------------------------------------


def test_schema_template_row_and_image_problems_together(tmp_path: Path, capsys):
    path = recipe(
        tmp_path,
        """\
        rows: {csv: data.csv, key: "{{ sku }}"}
        steps:
          - id: a
            op: remix
            image: missing.png
            prompt: "{{ product"
            colour: red
        """,
        {"data.csv": "sku,product\nA1,shoe\nA2\n"},
    )
    code, _, err = validate(capsys, path)
    assert code == 2
    lines = err.splitlines()
    wanted = [
        r"r\.yaml:9:\d+: steps\[0\]\.colour: unknown field 'colour'",
        r"r\.yaml:8:\d+: steps\[0\]\.prompt: template syntax error: ",
        r"^data\.csv:3: has 1 fields, the header has 2$",
        r"r\.yaml:7:\d+: steps\[0\]\.image: file not found: .*missing\.png$",
    ]
    for pattern in wanted:
        assert any(re.search(pattern, line) for line in lines), (pattern, err)
    assert lines[-1] == "ideopipe: 4 error(s); nothing was sent"


def test_no_line_is_printed_twice(tmp_path: Path, capsys):
    inline = ", ".join(f"{{n: {i}}}" for i in range(30))
    path = recipe(
        tmp_path,
        f"""\
        rows: [{inline}]
        matrix: {{ratio: ["1x1", "16x9"]}}
        steps:
          - {{id: a, op: generate, prompt: "{{{{ missing }}}}", aspect_ratio: 7x3}}
        """,
    )
    code, _, err = validate(capsys, path)
    lines = err.splitlines()
    assert code == 2 and len(lines) == len(set(lines)) == 3
    assert "the same problem on 29 more rows" in lines[0] or "the same problem on 29 more rows" in lines[1]


def test_a_bad_row_does_not_hide_the_good_rows_problems(tmp_path: Path, capsys):
    path = recipe(
        tmp_path,
        """\
        rows: {csv: data.csv, key: "{{ sku }}"}
        steps: [{id: a, op: remix, image: "{{ photo }}", prompt: "{{ product }}"}]
        """,
        {"data.csv": "sku,product,photo\nA1,shoe,nope.png\nA2,hat\n"},
    )
    code, _, err = validate(capsys, path)
    assert code == 2
    assert "data.csv:3: has 2 fields, the header has 3" in err
    assert "file not found: " in err and "— row data.csv:2 (column photo)" in err


def test_matrix_value_is_located_at_the_matrix_entry(tmp_path: Path):
    path = recipe(
        tmp_path,
        """\
        rows: [{p: a}, {p: b}]
        matrix:
          ratio: ["1x1", "7x3"]
        steps: [{id: a, op: generate, prompt: x, aspect_ratio: "{{ ratio }}"}]
        """,
    )
    with pytest.raises(RecipeError) as info:
        plan_file(path)
    (problem,) = info.value.problems
    assert (problem.line, problem.column, problem.path) == (5, 18, "matrix.ratio[1]")
    assert problem.message.endswith("(used by steps[0].aspect_ratio)")


# -- absurd values ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (None, True),
        (0, True),
        (0.5, True),
        (12, True),
        (math.nan, False),
        (math.inf, False),
        (-math.inf, False),
        (-0.01, False),
        (True, False),
        ("5", False),
    ],
)
def test_check_max_cost(value, ok: bool):
    if ok:
        assert check_max_cost(value) == (None if value is None else float(value))
    else:
        with pytest.raises(RecipeError, match=r"--max-cost .*: expected an amount of US dollars"):
            check_max_cost(value)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (1, True),
        (0.5, True),
        (MAX_TIMEOUT_S, True),
        (MAX_TIMEOUT_S + 1, False),
        (0, False),
        (-1, False),
        (math.nan, False),
        (math.inf, False),
        (True, False),
        ("10", False),
    ],
)
def test_timeout_problem(value, ok: bool):
    assert (timeout_problem(value) is None) == ok


def test_a_bad_prices_file_does_not_hide_the_rest(tmp_path: Path, capsys):
    path = recipe(
        tmp_path,
        """\
        prices_file: prices.yaml
        rows: [{p: x}]
        steps: [{id: a, op: generate, prompt: "{{ q }}"}]
        """,
        {"prices.yaml": "generate:V_3: -1\n"},
    )
    code, _, err = validate(capsys, path)
    assert code == 2
    assert "r.yaml:3:14: prices_file: must map op:tier keys to prices" in err
    assert "r.yaml:5:39: steps[0].prompt: undefined variable: 'q' is undefined" in err


def test_a_shadowing_key_on_a_later_json_line_is_found(tmp_path: Path, capsys):
    path = recipe(
        tmp_path,
        """\
        rows: {jsonl: data.jsonl}
        steps: [{id: a, op: generate, prompt: "{{ product }} {{ step }}"}]
        """,
        {"data.jsonl": '{"product": "shoe"}\n{"product": "hat", "step": "x"}\n'},
    )
    code, _, err = validate(capsys, path)
    assert code == 2
    assert "data.jsonl:2: column step: column 'step' has the name of a template variable" in err
