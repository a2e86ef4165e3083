"""The planner: recipe + rows -> every request, its seed, its output path and its exact cost."""

from __future__ import annotations

import csv
import gc
import hashlib
import json
import os
import re
import shutil
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from PIL import Image

from pipeline import ops
from pipeline.api import plan_file
from pipeline.cli import main
from pipeline.errors import RecipeError
from pipeline.inputs import ImageRef
from pipeline.planner import Plan, Task, plan
from pipeline.planner.rerun import reproduce_params, rerun_tasks
from pipeline.recipe import load_recipe

REPO = Path(__file__).resolve().parent.parent
MAX_SEED = 2**31 - 1


def write(tmp: Path, body: str, name: str = "recipe.yaml", head: bool = True) -> Path:
    """A recipe in `tmp`: `version: 1`, `name: t` (unless head=False), then the dedented body."""
    text = ("version: 1\nname: t\n" if head else "") + textwrap.dedent(body)
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def spring(tmp_path: Path) -> Path:
    """recipes/spring-launch.yaml and its CSV, copied into tmp_path."""
    shutil.copytree(
        REPO / "recipes", tmp_path / "recipes", ignore=shutil.ignore_patterns("out", "*.lock.json")
    )
    return tmp_path / "recipes" / "spring-launch.yaml"


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """img.png (64x64 colour), mask.png (black/white), small-mask.png, grey-mask.png, text.png."""
    Image.new("RGB", (64, 64), (200, 30, 30)).save(tmp_path / "img.png")
    mask = Image.new("L", (64, 64), 255)
    mask.paste(0, (0, 0, 32, 64))
    mask.save(tmp_path / "mask.png")
    Image.new("L", (32, 32), 0).save(tmp_path / "small-mask.png")
    Image.new("RGB", (64, 64), (128, 128, 128)).save(tmp_path / "grey-mask.png")
    (tmp_path / "text.png").write_text("not an image", encoding="utf-8")
    return tmp_path


def documented_seed(
    name: str, key: str, step: str, matrix: dict[str, Any], lineage: list[int], index: int
) -> int:
    """The derive formula from the seed: docs, computed here independently of the planner."""
    material = json.dumps([name, key, step, sorted(matrix.items()), lineage, index], separators=(",", ":"))
    return int(hashlib.sha256(material.encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


def lineages(p: Plan) -> dict[str, tuple[int, ...]]:
    """image id -> the image indexes from the first step down to it."""
    by_image = {iid: (t, n) for t in p.tasks for n, iid in enumerate(t.image_ids)}
    out: dict[str, tuple[int, ...]] = {}

    def of(image_id: str) -> tuple[int, ...]:
        if image_id not in out:
            task, n = by_image[image_id]
            base = of(task.parent_image_id) if task.parent_image_id else ()
            out[image_id] = (*base, task.image_indexes[n])
        return out[image_id]

    for iid in by_image:
        of(iid)
    return out


def by_step(p: Plan) -> dict[str, list[Task]]:
    out: dict[str, list[Task]] = {}
    for t in p.tasks:
        out.setdefault(t.step_id, []).append(t)
    return out


# -- the example recipe -----------------------------------------------------------------


def test_spring_launch_counts_and_cost(spring: Path):
    s = plan_file(spring).summary()
    assert (s["rows"], s["requests"], s["images"], s["cost_usd"]) == (2, 24, 24, 1.2)
    assert {
        sid: (st["op"], st["requests"], st["images"], st["cost_usd"]) for sid, st in s["steps"].items()
    } == {
        "hero": ("generate", 8, 8, 0.24),
        "stylized": ("remix", 8, 8, 0.48),
        "print": ("upscale", 8, 8, 0.48),
    }
    assert s["unknown_cost_requests"] == 0
    assert s["fits_budget"] is True


def test_spring_launch_renders_rows_vars_and_matrix(spring: Path):
    hero = by_step(plan_file(spring))["hero"]
    first = hero[0]
    assert first.row_key == "SPR-001"
    assert dict(first.matrix) == {"ratio": "16x9"}
    assert first.params["prompt"] == (
        'Acme Citrus Spritz sneakers on a white marble pedestal, bold headline text "Step into spring"'
    )
    assert first.params["aspect_ratio"] == "16x9"
    assert first.params["magic_prompt"] == "OFF"
    assert {t.row_key for t in hero} == {"SPR-001", "SPR-002"}  # SPR-003 is retired
    assert sorted({t.matrix["ratio"] for t in hero}) == ["16x9", "1x1"]


def test_spring_launch_empty_backdrop_uses_the_default(spring: Path):
    """SPR-002 has an empty backdrop cell; the prompt should not read 'on a  pedestal'."""
    prompts = {t.params["prompt"] for t in by_step(plan_file(spring))["hero"] if t.row_key == "SPR-002"}
    assert prompts == {
        'Acme Bloom linen jacket on a white marble pedestal, bold headline text "Layers, lightly"'
    }


def test_spring_launch_outputs_are_distinct_and_inside(spring: Path):
    p = plan_file(spring)
    outputs = [o for t in p.tasks for o in t.outputs]
    assert len(outputs) == len(set(outputs)) == 24
    hero0 = p.tasks[0]
    assert hero0.outputs == (f"SPR-001/16x9/hero-0-{hero0.seed}.png",)
    assert p.out_dir == (spring.parent / "out" / "spring-launch").resolve()


def test_spring_launch_chains_each_image(spring: Path):
    p = plan_file(spring)
    steps = by_step(p)
    tasks = {t.id: t for t in p.tasks}
    images = {iid: t for t in p.tasks for iid in t.image_ids}
    for child, parent_step in (("stylized", "hero"), ("print", "stylized")):
        parents = [images[t.parent_image_id] for t in steps[child]]
        assert all(pt.step_id == parent_step for pt in parents)
        assert all(t.depends_on == (images[t.parent_image_id].id,) for t in steps[child])
        assert len({t.parent_image_id for t in steps[child]}) == 8  # one request per image
        for t in steps[child]:
            assert tasks[t.depends_on[0]].row_key == t.row_key
            assert tasks[t.depends_on[0]].matrix == t.matrix


# -- seeds ------------------------------------------------------------------------------


def test_derived_seeds_follow_the_documented_formula(spring: Path):
    p = plan_file(spring)
    lin = lineages(p)
    for t in p.tasks:
        assert t.seed_source == "derived"
        parent = list(lin[t.parent_image_id]) if t.parent_image_id else []
        assert t.seed == documented_seed(
            "spring-launch", t.row_key, t.step_id, dict(t.matrix), parent, t.image_indexes[0]
        )
        assert 0 <= t.seed <= MAX_SEED


def test_derived_seed_is_pinned(spring: Path):
    """The first hero seed, written down: a change of formula (or of machine) shows here."""
    first = plan_file(spring).tasks[0]
    assert (first.step_id, first.row_key, first.image_indexes) == ("hero", "SPR-001", (0,))
    assert first.seed == 1557548992


def test_derived_seeds_are_stable_and_distinct(spring: Path):
    a, b = plan_file(spring), plan_file(spring)

    def key(p: Plan) -> list[tuple]:
        return [(t.id, t.seed, t.outputs) for t in p.tasks]

    assert key(a) == key(b)
    seeds = [t.seed for t in a.tasks]
    assert len(set(seeds)) == len(seeds)


def test_seed_depends_on_recipe_name(tmp_path: Path):
    body = "rows: [{p: x}]\nsteps: [{id: a, op: generate, prompt: x}]\n"
    one = plan_file(write(tmp_path, "version: 1\nname: one\n" + body, "one.yaml", head=False))
    two = plan_file(write(tmp_path, "version: 1\nname: two\n" + body, "two.yaml", head=False))
    assert one.tasks[0].seed == documented_seed("one", "1", "a", {}, [], 0)
    assert one.tasks[0].seed != two.tasks[0].seed


@pytest.mark.parametrize(
    ("policy", "source", "seeds"),
    [
        ("random", "api", [None]),
        ("42", "fixed", [42]),
        ('"{{ 1000 + n }}"', "fixed", [1007]),
    ],
)
def test_seed_policies(tmp_path: Path, policy: str, source: str, seeds: list[int | None]):
    p = plan_file(
        write(
            tmp_path,
            f"""\
        seed: {policy}
        rows: [{{n: 7}}]
        steps: [{{id: a, op: generate, prompt: x}}]
        """,
        )
    )
    assert [t.seed for t in p.tasks] == seeds
    assert [t.seed_source for t in p.tasks] == [source]


# -- fan-out and cost -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "gen_n", "remix_n", "seed"),
    [
        (1, 1, 1, "derive"),
        (2, 2, 1, "derive"),
        (3, 2, 3, "derive"),
        (2, 4, 2, "derive"),
        (2, 2, 1, "random"),
        (3, 3, 2, "random"),
    ],
)
def test_fan_out(tmp_path: Path, rows: int, gen_n: int, remix_n: int, seed: str):
    inline = ", ".join(f"{{p: x{i}}}" for i in range(rows))
    p = plan_file(
        write(
            tmp_path,
            f"""\
        seed: {seed}
        rows: [{inline}]
        defaults: {{rendering_speed: TURBO}}
        steps:
          - {{id: gen, op: generate, prompt: "{{{{ p }}}}", num_images: {gen_n}}}
          - {{id: mix, op: remix, input: gen, prompt: again, num_images: {remix_n}}}
        """,
        )
    )
    s = p.summary()
    per_request = 1 if seed == "derive" else None  # derive splits N images into N requests
    gen, mix = s["steps"]["gen"], s["steps"]["mix"]
    assert gen["images"] == rows * gen_n
    assert mix["images"] == rows * gen_n * remix_n
    assert gen["requests"] == (rows * gen_n if per_request else rows)
    assert mix["requests"] == (rows * gen_n * remix_n if per_request else rows * gen_n)
    assert s["cost_usd"] == pytest.approx(0.03 * (gen["images"] + mix["images"]))
    assert len({t.parent_image_id for t in by_step(p)["mix"]}) == rows * gen_n


@pytest.mark.parametrize("rows", [1, 3, 7])
@pytest.mark.parametrize(
    ("n", "speed", "price"),
    [
        (1, "TURBO", 0.03),
        (2, "DEFAULT", 0.06),
        (4, "QUALITY", 0.09),
    ],
)
def test_cost_is_linear_in_rows_and_images(tmp_path: Path, rows: int, n: int, speed: str, price: float):
    inline = ", ".join(f"{{p: x{i}}}" for i in range(rows))
    s = plan_file(
        write(
            tmp_path,
            f"""\
        rows: [{inline}]
        steps: [{{id: a, op: generate, prompt: x, num_images: {n}, rendering_speed: {speed}}}]
        """,
        )
    ).summary()
    assert s["images"] == rows * n
    assert s["cost_usd"] == pytest.approx(rows * n * price)
    assert s["steps"]["a"]["cost_usd"] == pytest.approx(rows * n * price)


def test_unknown_price_is_counted_not_guessed(tmp_path: Path):
    path = write(
        tmp_path,
        """\
        rows: [{p: x}, {p: y}]
        steps: [{id: a, op: generate, prompt: x, rendering_speed: FLASH}]
        """,
    )
    s = plan_file(path).summary()
    assert (s["cost_usd"], s["unknown_cost_requests"]) == (0.0, 2)
    priced = plan(load_recipe(path), prices={"generate:FLASH": 0.02}).summary()
    assert (priced["cost_usd"], priced["unknown_cost_requests"]) == (0.04, 0)
    assert priced["price_table"].endswith("+cli")


def test_legacy_models_price_by_model(tmp_path: Path):
    s = plan_file(
        write(
            tmp_path,
            """\
        rows: [{p: x}]
        steps:
          - {id: a, op: generate, prompt: x, model: V_2A_TURBO, num_images: 2}
          - {id: b, op: remix, input: a, prompt: y, model: V_2}
        """,
        )
    ).summary()
    assert s["steps"]["a"]["cost_usd"] == pytest.approx(0.05)
    assert s["steps"]["b"]["cost_usd"] == pytest.approx(0.16)


# -- selection --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "keys"),
    [
        ({}, ["a", "c", "d"]),
        ({"limit": 2}, ["a", "c"]),
        ({"rows": "2-3"}, ["c"]),
        ({"rows": "4"}, ["d"]),
        ({"rows": "2-3", "limit": 1}, ["c"]),
        ({"sets": ["wanted=no"]}, ["b"]),
    ],
)
def test_row_selection(tmp_path: Path, kwargs: dict, keys: list[str]):
    (tmp_path / "d.csv").write_text("sku,on\na,yes\nb,no\nc,yes\nd,yes\n", encoding="utf-8")
    p = plan_file(
        write(
            tmp_path,
            """\
        vars: {wanted: "yes"}
        rows: {csv: d.csv, key: "{{ sku }}", where: "{{ on == wanted }}"}
        steps: [{id: a, op: generate, prompt: "{{ sku }}"}]
        """,
        ),
        **kwargs,
    )
    assert [t.row_key for t in p.tasks] == keys
    assert [t.params["prompt"] for t in p.tasks] == keys


def test_no_rows_selected_is_a_warning(tmp_path: Path):
    p = plan_file(
        write(
            tmp_path,
            """\
        rows: {inline: [{active: "no"}], where: "{{ active }}"}
        steps: [{id: a, op: generate, prompt: x}]
        """,
        )
    )
    assert p.tasks == []
    assert [str(w) for w in p.warnings] == [
        f"{tmp_path / 'recipe.yaml'}: no rows selected: the plan is empty"
    ]


def test_csv_cells_are_data_not_templates(tmp_path: Path):
    (tmp_path / "d.csv").write_text('p,q\n{{ 7*7 }},"=HYPERLINK(""http://x"",""y"")"\n', encoding="utf-8")
    p = plan_file(
        write(
            tmp_path,
            """\
        rows: {csv: d.csv}
        steps: [{id: a, op: generate, prompt: "{{ p }} {{ q }}"}]
        """,
        )
    )
    assert p.tasks[0].params["prompt"] == '{{ 7*7 }} =HYPERLINK("http://x","y")'


def test_template_fields_render_per_row(tmp_path: Path):
    p = plan_file(
        write(
            tmp_path,
            """\
        rows: [{n: "2", w: 30, r: "9:16"}, {n: "1", w: 70, r: "ASPECT_1_1"}]
        steps:
          - {id: a, op: generate, prompt: x, num_images: "{{ n }}", aspect_ratio: "{{ r }}"}
          - {id: b, op: remix, input: a, prompt: "{{ input.prompt }} again",
             image_weight: "{{ w }}"}
        """,
        )
    )
    gen = [(t.row_index, t.params["aspect_ratio"]) for t in by_step(p)["a"]]
    assert gen == [(0, "9x16"), (0, "9x16"), (1, "1x1")]
    assert [t.params["image_weight"] for t in by_step(p)["b"]] == [30, 30, 70]
    assert {t.params["prompt"] for t in by_step(p)["b"]} == {"x again"}


# -- refused plans ------------------------------------------------------------------------

# (id, recipe body after version/name, regex the RecipeError must match)
REFUSED = [
    (
        "unknown-input",
        """\
        steps:
          - {id: hero, op: generate, prompt: x}
          - {id: mix, op: remix, input: heor, prompt: x}
        """,
        r"steps\[1\]\.input: unknown step 'heor' — did you mean 'hero'\?",
    ),
    (
        "cycle",
        """\
        steps:
          - {id: a, op: remix, input: b, prompt: x}
          - {id: b, op: remix, input: a, prompt: x}
        """,
        r"steps\[0\]\.input: cycle: a -> b -> a",
    ),
    (
        "self-cycle",
        """\
        steps:
          - {id: a, op: remix, input: a, prompt: x}
        """,
        r"cycle: a -> a",
    ),
    (
        "duplicate-step-id",
        """\
        steps:
          - {id: a, op: generate, prompt: x}
          - {id: a, op: generate, prompt: y}
        """,
        r"steps\[1\]\.id: duplicate step id 'a'",
    ),
    (
        "needs-image",
        """\
        steps:
          - {id: a, op: remix, prompt: x}
        """,
        r"steps\[0\]: remix needs an image: set `input:` to an earlier step or `image:`",
    ),
    (
        "needs-mask",
        """\
        steps:
          - {id: a, op: generate, prompt: x}
          - {id: b, op: edit, input: a, prompt: x}
        """,
        r"steps\[1\]: edit needs a `mask:`",
    ),
    (
        "describe-is-not-an-image",
        """\
        steps:
          - {id: a, op: describe, image: img.png}
          - {id: b, op: remix, input: a, prompt: x}
        """,
        r"step 'a' is a describe step: it yields text, not images",
    ),
    (
        "negative-prompt-on-v3-edit",
        """\
        steps:
          - {id: a, op: edit, image: img.png, mask: mask.png, prompt: x, negative_prompt: y}
        """,
        r"steps\[0\]\.negative_prompt: edit \(v3, /v1/ideogram-v3/edit\) does not take "
        r"'negative_prompt' — the API would silently ignore it",
    ),
    (
        "legacy-edit-v2a",
        """\
        steps:
          - {id: a, op: edit, model: V_2A, image: img.png, mask: mask.png, prompt: x}
        """,
        r"steps\[0\]\.model: legacy edit accepts only V_2 or V_2_TURBO, not V_2A",
    ),
    (
        "style-type-v1",
        """\
        steps:
          - {id: a, op: generate, model: V_1, prompt: x, style_type: DESIGN}
        """,
        r"steps\[0\]\.style_type: style_type is not allowed with V_1",
    ),
    (
        "aspect-and-resolution",
        """\
        steps:
          - {id: a, op: generate, prompt: x, aspect_ratio: 16x9, resolution: 1024x1024}
        """,
        r"steps\[0\]: aspect_ratio and resolution exclude each other — set only one",
    ),
    (
        "aspect-7x3",
        """\
        steps:
          - {id: a, op: generate, prompt: x, aspect_ratio: 7x3}
        """,
        r"steps\[0\]\.aspect_ratio: aspect ratio '7x3' is not accepted here; expected one "
        r"of 1x3, ",
    ),
    (
        "unknown-model",
        """\
        steps:
          - {id: a, op: generate, prompt: x, model: V_4}
        """,
        r"steps\[0\]\.model: unknown model 'V_4' — expected one of V_3, ",
    ),
    (
        "reframe-needs-resolution",
        """\
        steps:
          - {id: a, op: reframe, image: img.png}
        """,
        r"steps\[0\]: reframe needs `resolution:`",
    ),
    (
        "rendered-num-images-9",
        """\
        rows: [{n: 9}]
        steps:
          - {id: a, op: generate, prompt: x, num_images: "{{ n }}"}
        """,
        r"steps\[0\]\.num_images: .*9.* — row .*recipe\.yaml:3",
    ),
    (
        "rendered-not-an-integer",
        """\
        rows: [{n: lots}]
        steps:
          - {id: a, op: generate, prompt: x}
          - {id: b, op: remix, input: a, prompt: x, image_weight: "{{ n }}"}
        """,
        r"steps\[1\]\.image_weight: renders to 'lots', not an integer — row .*recipe\.yaml:3",
    ),
    (
        "output-collision",
        """\
        rows: [{p: x}, {p: y}]
        steps: [{id: a, op: generate, prompt: x}]
        output: {file: "{{ step }}.png"}
        """,
        r"output\.file: two images would be written to 'a\.png' \(row .*recipe\.yaml \(row 1\), "
        r"step a and row .*recipe\.yaml \(row 2\), step a\) — add \{\{ step \}\}",
    ),
    (
        "output-collision-across-rows",
        """\
        rows: [{p: x}, {p: y}]
        steps: [{id: a, op: generate, prompt: x}]
        output: {file: "{{ step }}-{{ index }}.png"}
        """,
        r"two images would be written to 'a-0\.png' \(row .*recipe\.yaml \(row 1\), step a and row "
        r".*recipe\.yaml \(row 2\), step a\)",
    ),
    (
        "output-dotdot",
        """\
        steps: [{id: a, op: generate, prompt: x}]
        output: {file: "../x-{{ seed }}.png"}
        """,
        r"output\.file: '\.\./x-\d+\.png': contains '\.\.'; output\.file must stay inside "
        r"output\.dir",
    ),
    (
        "output-absolute",
        """\
        steps: [{id: a, op: generate, prompt: x}]
        output: {file: "/tmp/x-{{ seed }}.png"}
        """,
        r"is an absolute path; output\.file must stay inside output\.dir",
    ),
    (
        "output-drive",
        """\
        steps: [{id: a, op: generate, prompt: x}]
        output: {file: "C:\\\\x-{{ seed }}.png"}
        """,
        r"is an absolute path",
    ),
    (
        "output-con",
        """\
        steps: [{id: a, op: generate, prompt: x}]
        output: {file: "{{ key }}/CON"}
        """,
        r"'CON' is a reserved file name on Windows",
    ),
    (
        "output-nul-char",
        """\
        steps: [{id: a, op: generate, prompt: x}]
        output: {file: "a\\0b-{{ seed }}.png"}
        """,
        r"output\.file: 'a\\x00b-\d+\.png': contains a NUL character",
    ),
    (
        "output-state-dir",
        """\
        steps: [{id: a, op: generate, prompt: x}]
        output: {file: ".ideopipe/{{ seed }}.png"}
        """,
        r"'\.ideopipe' is reserved for ideopipe's own state",
    ),
    (
        "output-key-from-csv-escapes",
        """\
        rows: {inline: [{sku: "../../etc/x"}], key: "{{ sku }}"}
        steps: [{id: a, op: generate, prompt: x}]
        """,
        r"'\.\./\.\./etc/x/a-0-\d+\.png': contains '\.\.'",
    ),
    (
        "image-file-url",
        """\
        steps: [{id: a, op: remix, image: "file:///etc/passwd", prompt: x}]
        """,
        r"steps\[0\]\.image: 'file:///etc/passwd': only http\(s\) URLs are allowed, not file",
    ),
    (
        "image-data-url",
        """\
        steps: [{id: a, op: remix, image: "data:image/png;base64,iVBORw0KGgo=", prompt: x}]
        """,
        r"only http\(s\) URLs are allowed, not data scheme",
    ),
    (
        "image-private-ip",
        """\
        steps: [{id: a, op: remix, image: "http://10.0.0.5/x.png", prompt: x}]
        """,
        r"10\.0\.0\.5 is a private or link-local address \(set allow_private_urls: true",
    ),
    (
        "image-link-local",
        """\
        steps: [{id: a, op: remix, image: "http://169.254.169.254/latest/meta-data", prompt: x}]
        """,
        r"169\.254\.169\.254 is a private or link-local address",
    ),
    (
        "image-integer-ip",
        """\
        steps: [{id: a, op: remix, image: "http://2852039166/", prompt: x}]
        """,
        r"2852039166 is a private or link-local address",
    ),
    (
        "image-not-an-image",
        """\
        steps: [{id: a, op: remix, image: text.png, prompt: x}]
        """,
        r"steps\[0\]\.image: .*text\.png is not a PNG, JPEG or WebP image",
    ),
    (
        "image-missing",
        """\
        rows: [{photo: nope.png}]
        steps: [{id: a, op: remix, image: "{{ photo }}", prompt: x}]
        """,
        r"steps\[0\]\.image: file not found: .*nope\.png — row .*recipe\.yaml:3 "
        r"\(column photo\)",
    ),
    (
        "mask-wrong-size",
        """\
        steps: [{id: a, op: edit, image: img.png, mask: small-mask.png, prompt: x}]
        """,
        r"steps\[0\]\.mask: mask is 32x32 but the image is 64x64; they must be the same size",
    ),
    (
        "mask-not-black-and-white",
        """\
        steps: [{id: a, op: edit, image: img.png, mask: grey-mask.png, prompt: x}]
        """,
        r"steps\[0\]\.mask: mask must be black and white only",
    ),
    (
        "undefined-in-output-file",
        """\
        steps: [{id: a, op: generate, prompt: x}]
        output: {file: "{{ sku }}.png"}
        """,
        r"output\.file: undefined variable: 'sku' is undefined",
    ),
]


@pytest.mark.parametrize(("body", "match"), [pytest.param(b, m, id=i) for i, b, m in REFUSED])
def test_refused_plans(images: Path, capsys: pytest.CaptureFixture[str], body: str, match: str):
    path = write(images, body)
    before = sorted(images.rglob("*"))
    with pytest.raises(RecipeError, match=match) as info:
        plan_file(path)
    assert all(p.file == str(path) for p in info.value.problems)
    assert main(["plan", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert re.search(rf"^{re.escape(str(path))}:\d+:\d+: .*{match}", err, re.MULTILINE), err
    assert err.splitlines()[-1].endswith("error(s); nothing was sent")
    assert sorted(images.rglob("*")) == before  # nothing written: no out dir


def test_output_symlink_escape(tmp_path: Path):
    (tmp_path / "out").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out" / "esc").symlink_to(tmp_path / "elsewhere")
    path = write(
        tmp_path,
        """\
        steps: [{id: a, op: generate, prompt: x}]
        output: {dir: out, file: "esc/{{ seed }}.png"}
        """,
    )
    with pytest.raises(
        RecipeError,
        match=r"output\.file: 'esc/\d+\.png' escapes output\.dir "
        r"through a symlink",
    ):
        plan_file(path)
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_good_images_and_masks_plan(images: Path):
    p = plan_file(
        write(
            images,
            """\
        steps:
          - {id: a, op: edit, image: img.png, mask: mask.png, prompt: x}
          - {id: b, op: remix, image: "https://example.com/x.png", prompt: x}
        """,
        )
    )
    edit, remix = p.tasks
    assert [r.kind for r in edit.images["image"]] == ["file"]
    digest = hashlib.sha256((images / "img.png").read_bytes()).hexdigest()
    assert edit.images["image"][0].digest == digest
    assert [(r.kind, r.value) for r in remix.images["image"]] == [("url", "https://example.com/x.png")]


def test_same_problem_on_many_rows_is_folded(tmp_path: Path):
    inline = ", ".join(f"{{n: {i}}}" for i in range(12))
    with pytest.raises(RecipeError) as info:
        plan_file(
            write(
                tmp_path,
                f"""\
            rows: [{inline}]
            steps: [{{id: a, op: generate, prompt: "{{{{ missing }}}}"}}]
            """,
            )
        )
    (problem,) = info.value.problems  # once, with an exact count of the other rows
    assert problem.message == "undefined variable: 'missing' is undefined"
    assert problem.hint.endswith("recipe.yaml (row 1); the same problem on 11 more rows")


# -- purity: planning changes no process-wide state -------------------------------------------


@pytest.mark.parametrize("gc_enabled", [True, False])
def test_plan_leaves_gc_as_it_found_it(tmp_path: Path, gc_enabled: bool):
    (tmp_path / "rows.csv").write_text("product\nmug\nhat\n", encoding="utf-8")
    path = write(
        tmp_path,
        """\
        rows: {csv: rows.csv}
        steps: [{id: a, op: generate, prompt: "{{ product }}"}]
        """,
    )
    was, threshold = gc.isenabled(), gc.get_threshold()
    try:
        (gc.enable if gc_enabled else gc.disable)()
        assert len(plan_file(path).tasks) == 2
        assert gc.isenabled() is gc_enabled
        assert gc.get_threshold() == threshold
    finally:
        (gc.enable if was else gc.disable)()


def test_plan_leaves_the_csv_field_limit_alone(tmp_path: Path):
    (tmp_path / "rows.csv").write_text("product\n" + "x" * 200_000 + "\n", encoding="utf-8")
    path = write(
        tmp_path,
        """\
        rows: {csv: rows.csv}
        steps: [{id: a, op: generate, prompt: "{{ product[:10] }}"}]
        """,
    )
    before = csv.field_size_limit()
    try:
        csv.field_size_limit(1234)
        plan_file(path)
        assert csv.field_size_limit() == 1234
    finally:
        csv.field_size_limit(before)


def test_an_edited_input_image_gets_its_new_digest_in_the_same_process(images: Path):
    path = write(images, "steps: [{id: a, op: remix, image: img.png, prompt: x}]\n")
    first = plan_file(path).tasks[0]
    stat = (images / "img.png").stat()
    Image.new("RGB", (64, 64), (30, 200, 30)).save(images / "img.png")  # same size, new pixels
    os.utime(images / "img.png", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = plan_file(path).tasks[0]
    digest = hashlib.sha256((images / "img.png").read_bytes()).hexdigest()
    assert second.images["image"][0].digest == digest != first.images["image"][0].digest
    assert second.id != first.id  # a changed input is a new request


def test_a_broken_image_fixed_in_place_plans_in_the_same_process(images: Path):
    path = write(images, "steps: [{id: a, op: remix, image: text.png, prompt: x}]\n")
    with pytest.raises(RecipeError, match="not a PNG, JPEG or WebP"):
        plan_file(path)
    Image.new("RGB", (8, 8)).save(images / "text.png", format="PNG")
    assert plan_file(path).tasks[0].images["image"][0].digest


def test_the_cyclic_collector_keeps_running_while_planning(tmp_path: Path):
    """A planner that switched gc off (even if it switched it back on) would see no collection."""
    rows = "".join(f"p{i}\n" for i in range(3000))
    (tmp_path / "rows.csv").write_text("product\n" + rows, encoding="utf-8")
    path = write(
        tmp_path,
        """\
        rows: {csv: rows.csv}
        steps: [{id: a, op: generate, prompt: "{{ product }}"}]
        """,
    )
    seen: list[str] = []

    def count(phase: str, info: dict[str, int]) -> None:
        seen.append(phase)

    was = gc.isenabled()
    gc.enable()
    gc.callbacks.append(count)
    try:
        plan_file(path)
    finally:
        gc.callbacks.remove(count)
        (gc.enable if was else gc.disable)()
    assert "start" in seen


# -- output names every file system accepts (checked before anything is spent) -----------------

LONG_OK = "a" * 236  # + ".png" = 240 bytes: 255 with the 15 of `.<name>.<8 random>.part`
NAMES_REFUSED = [
    (
        "component-too-long",
        [LONG_OK + "b"],
        r"the name 'a{37}\.\.\.' is 241 bytes; a file name may have at most 240",
    ),
    (
        "multibyte-too-long",
        ["é" * 119],  # 119 characters, 238 bytes + ".png"
        r"is 242 bytes; a file name may have at most 240",
    ),
    ("path-too-long", ["/".join(["d" * 200] * 21)], r"the full path would be [\d,]+ bytes"),
    ("file-and-folder", ["x", "x.png/y"], r"'x\.png' would be a file and also the folder of 'x\.png/y\.png'"),
    ("case", ["Hat", "hat"], r"'Hat\.png' and 'hat\.png' are the same file on case-insensitive"),
    ("nfc-nfd", ["caf\u00e9", "cafe\u0301"], r"are the same file on case-insensitive or Unicode"),
    ("case-folder", ["Shoes/a", "shoes/a"], r"'Shoes/a\.png' and 'shoes/a\.png' are the same file"),
    ("case-file-and-folder", ["X", "x.png/y"], r"'X\.png' would be a file and also the folder"),
]


def names_recipe(tmp: Path, names: list[str], extra: str = "") -> Path:
    rows = ", ".join("{n: " + json.dumps(n) + "}" for n in names)
    return write(
        tmp,
        f"""\
        rows: [{rows}]
        steps: [{{id: a, op: generate, prompt: x}}]
        output: {{dir: out, file: "{{{{ n }}}}.png"{extra}}}
        """,
    )


@pytest.mark.parametrize(("names", "match"), [pytest.param(n, m, id=i) for i, n, m in NAMES_REFUSED])
def test_unsafe_output_names_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], names: list[str], match: str
):
    path = names_recipe(tmp_path, names)
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(RecipeError, match=match):
        plan_file(path)
    assert main(["run", str(path), "--provider", "emulator", "--yes"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    where = rf"^{re.escape(str(path))}:{text_line(path, 'output:')}:\d+: output\.file: "
    assert re.search(where + f".*{match}", err, re.MULTILINE), err
    assert sorted(tmp_path.rglob("*")) == before  # nothing written, nothing sent


def text_line(path: Path, start: str) -> int:
    """The 1-based line of `path` that starts with `start`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, 1) if line.startswith(start))


def test_longest_allowed_name_plans(tmp_path: Path):
    p = plan_file(names_recipe(tmp_path, [LONG_OK, "é" * 118]))
    assert [t.outputs[0] for t in p.tasks] == [LONG_OK + ".png", "é" * 118 + ".png"]


def test_every_name_problem_is_reported_at_once(tmp_path: Path):
    path = names_recipe(tmp_path, [LONG_OK + "b", "Hat", "hat", "x", "x.png/y"])
    with pytest.raises(RecipeError) as info:
        plan_file(path)
    messages = " | ".join(p.message for p in info.value.problems)
    assert "241 bytes" in messages
    assert "'Hat.png' and 'hat.png'" in messages
    assert "would be a file and also the folder" in messages


def test_case_collisions_can_be_allowed_explicitly(tmp_path: Path):
    path = names_recipe(tmp_path, ["Hat", "hat", "caf\u00e9", "cafe\u0301"], ", allow_case_collisions: true")
    assert [t.outputs[0] for t in plan_file(path).tasks] == [
        "Hat.png",
        "hat.png",
        "caf\u00e9.png",
        "cafe\u0301.png",
    ]
    with pytest.raises(RecipeError, match="would be a file and also the folder"):
        plan_file(names_recipe(tmp_path, ["x", "x.png/y"], ", allow_case_collisions: true"))


# -- never send "None" ----------------------------------------------------------------------------

CHAIN_WITHOUT_PROMPT = """\
    steps:
      - {{id: up, op: upscale, image: img.png}}
      - {{id: re, op: remix, input: up, prompt: "{prompt}"}}
    """


def test_input_prompt_of_a_parent_without_one_is_a_plan_error(images: Path):
    path = write(images, CHAIN_WITHOUT_PROMPT.format(prompt="{{ input.prompt }} as watercolour"))
    with pytest.raises(
        RecipeError,
        match=r"steps\[1\]\.prompt: input\.prompt has no value "
        r"\(write \{\{ input\.prompt \| default\(''\) \}\}",
    ):
        plan_file(path)


def test_input_prompt_default_gives_an_empty_text(images: Path):
    path = write(
        images, CHAIN_WITHOUT_PROMPT.format(prompt="{{ input.prompt | default('') }} as watercolour")
    )
    remix = plan_file(path).tasks[1]
    assert remix.params["prompt"] == " as watercolour"


def test_input_prompt_of_a_parent_with_one_is_its_prompt(tmp_path: Path):
    p = plan_file(
        write(
            tmp_path,
            """\
        steps:
          - {id: g, op: generate, prompt: a mug}
          - {id: re, op: remix, input: g, prompt: "{{ input.prompt }} as watercolour"}
        """,
        )
    )
    assert p.tasks[1].params["prompt"] == "a mug as watercolour"


@pytest.mark.parametrize(
    "template", ["{{ product }}", "{{ row.product }} on white", "{{ row['product'] }}", "{{ vars_none }}"]
)
def test_a_null_value_is_refused_not_sent_as_none(tmp_path: Path, template: str):
    (tmp_path / "rows.jsonl").write_text('{"product": null}\n', encoding="utf-8")
    path = write(
        tmp_path,
        f"""\
        vars: {{vars_none: null}}
        rows: {{jsonl: rows.jsonl}}
        steps: [{{id: a, op: generate, prompt: "{template}"}}]
        """,
    )
    with pytest.raises(RecipeError, match=r"has no value") as info:
        plan_file(path)
    assert "None" not in str(info.value).replace("(it is None)", "")


def test_run_time_fields_follow_the_documented_rules():
    from pipeline import templating
    from pipeline.planner.runtime import parent_input, step_results

    look = step_results([{"description": "", "api_prompt": None, "seed": None, "file": None}])
    ctx = {"steps": {"look": look}, "input": parent_input({"prompt": "a mug"}, {"api_prompt": None})}
    assert templating.render("[{{ steps.look.text }}|{{ steps.look.api_prompt }}]", ctx) == "[|]"
    assert templating.render("[{{ input.api_prompt }}] {{ input.prompt }}", ctx) == "[] a mug"
    for field in ("steps.look.seed", "steps.look.file", "input.seed", "steps.look.prompts[0]"):
        source = "{{ " + field + " }}"
        if field.endswith("[0]"):
            assert templating.render(source, ctx) == ""
            continue
        with pytest.raises(templating.MissingValue, match=re.escape(field) + " has no value"):
            templating.render(source, ctx)
    assert templating.render("{{ steps.look.seed | default(7) }}", ctx) == "7"
    assert step_results([])["text"] == ""


# -- reruns send only what the endpoint takes -----------------------------------------------------

REPRODUCE = [
    (
        "upscale-without-prompt",
        ops.Op.UPSCALE,
        "V_2",
        {"resemblance": 80},
        {"resemblance": 80, "magic_prompt": "OFF"},
    ),
    (
        "upscale-with-prompt",
        ops.Op.UPSCALE,
        "V_2",
        {"prompt": "a mug"},
        {"prompt": "API: a mug", "magic_prompt": "OFF"},
    ),
    (
        "legacy-magic-version-dropped",
        ops.Op.GENERATE,
        "V_2",
        {"prompt": "a", "magic_prompt": "AUTO", "magic_prompt_version": "V_0"},
        {"prompt": "API: a mug", "magic_prompt": "OFF"},
    ),
    (
        "v3-generate",
        ops.Op.GENERATE,
        "V_3",
        {"prompt": "a", "rendering_speed": "TURBO"},
        {"prompt": "API: a mug", "rendering_speed": "TURBO", "magic_prompt": "OFF"},
    ),
    ("describe-takes-neither", ops.Op.DESCRIBE, "V_2", {}, {}),
]


@pytest.mark.parametrize(
    ("op", "model", "params", "sent"), [pytest.param(*r[1:], id=r[0]) for r in REPRODUCE]
)
def test_reproduce_sends_only_what_the_endpoint_takes(
    op: ops.Op, model: str, params: dict[str, Any], sent: dict[str, Any]
):
    endpoint = ops.endpoint_for(op, model)
    assert endpoint is not None
    assert reproduce_params(endpoint, params, {"seed": 5, "api_prompt": "API: a mug"}) == sent


@pytest.mark.parametrize("recorded", [None, "", float("nan")])
def test_reproduce_keeps_the_prompt_when_none_was_recorded(recorded: Any):
    endpoint = ops.endpoint_for(ops.Op.GENERATE, "V_3")
    assert endpoint is not None
    assert reproduce_params(endpoint, {"prompt": "a"}, {"api_prompt": recorded})["prompt"] == "a"


def test_rerun_tasks_never_record_none_or_nan_as_a_prompt(tmp_path: Path):
    row = SimpleNamespace(
        task_id="t1",
        image_id="i1",
        step_id="up",
        op="upscale",
        endpoint="/upscale",
        model="V_2",
        row_index=0,
        row_key="1",
        matrix="{}",
        seed=5,
        image_index=0,
        file="1/up.png",
        api_prompt=float("nan"),
        cost_usd=float("nan"),
    )
    spec = {"params": {"resemblance": 80}, "images": {"image": ["step:p1"]}, "family": "legacy"}
    tasks, reproduce = rerun_tasks([row], {"t1": spec}, tmp_path, lambda iid: f"{iid}.png")
    (task,) = tasks
    assert task.params == {"resemblance": 80} and task.cost_usd is None
    assert task.images["image"][0].value == str(tmp_path / "p1.png")
    assert reproduce == {task.id: [{"seed": 5, "api_prompt": None}]}


# -- content keys and order ------------------------------------------------------------------------


def test_content_key_follows_the_documented_formula(tmp_path: Path):
    """sha256(canonical(what the step shares) + canonical(what the request adds)), computed here."""
    p = plan_file(
        write(
            tmp_path,
            """\
        rows: [{product: "mug \\"x\\" é"}]
        matrix: {colour: [red]}
        steps:
          - {id: g, op: generate, prompt: "{{ product }} {{ colour }}", aspect_ratio: "16x9"}
          - {id: u, op: upscale, input: g, resemblance: 80}
        """,
        )
    )
    gen, up = p.tasks

    def canonical(value: Any) -> str:
        return json.dumps(value, sort_keys=True, separators=(",", ":"))

    def key(task: Task, fixed: dict[str, Any], own: dict[str, Any], images: dict[str, Any]) -> str:
        same = {
            "op": task.op,
            "endpoint": task.endpoint,
            "provider": p.provider,
            "model": task.model,
            "fixed": fixed,
        }
        adds = [own, {}, task.seed, 1, images, [], "1", {"colour": "red"}, None]
        return hashlib.sha256((canonical(same) + canonical(adds)).encode()).hexdigest()

    assert gen.id == key(gen, {"aspect_ratio": "16x9"}, {"prompt": 'mug "x" é red'}, {})
    assert up.id == key(up, {"resemblance": 80}, {}, {"image": [f"step:{gen.image_ids[0]}:"]})
    assert dict(up.images) == {"image": (ImageRef("step", gen.image_ids[0]),)}


def test_steps_run_in_recipe_order_once_their_inputs_are_planned(tmp_path: Path):
    p = plan_file(
        write(
            tmp_path,
            """\
        rows: [{n: 1}]
        steps:
          - {id: story, op: remix, input: scene, prompt: x}
          - {id: look, op: generate, prompt: x}
          - {id: scene, op: remix, input: look, prompt: "{{ steps.look.prompt }}"}
          - {id: badge, op: generate, prompt: y}
        """,
        )
    )
    assert [t.step_id for t in p.tasks] == ["look", "scene", "story", "badge"]
    assert p.tasks[1].deferred == {"prompt": "{{ steps.look.prompt }}"}


def test_a_random_seed_parent_makes_input_seed_a_run_time_field(tmp_path: Path):
    p = plan_file(
        write(
            tmp_path,
            """\
        seed: random
        steps:
          - {id: g, op: generate, prompt: x}
          - {id: r, op: remix, input: g, prompt: "seed {{ input.seed }}"}
        """,
        )
    )
    assert p.tasks[1].deferred == {"prompt": "seed {{ input.seed }}"}
    assert "prompt" not in p.tasks[1].params


def test_a_chained_tasks_input_image_reads_as_a_plain_mapping(tmp_path: Path):
    p = plan_file(
        write(
            tmp_path,
            """\
        steps:
          - {id: g, op: generate, prompt: x}
          - {id: u, op: upscale, input: g}
        """,
        )
    )
    images = p.tasks[1].images
    expected = {"image": (ImageRef("step", p.tasks[0].image_ids[0]),)}
    assert images == expected and dict(images) == expected and list(images.items()) == list(expected.items())
    assert images.get("mask") is None and "image" in images and len(images) == 1
    with pytest.raises(KeyError, match="mask"):
        images["mask"]
    assert p.to_json()["tasks"][1]["images"] == {"image": [f"step:{p.tasks[0].image_ids[0]}"]}


FAST_RECIPE = """\
    rows:
      csv: rows.csv
      key: "{{ sku }}"
    matrix:
      look: [matte, gloss]
    vars:
      count: 3
    seed: derive
    defaults: {model: V_3, rendering_speed: TURBO, magic_prompt: "OFF"}
    steps:
      - id: hero
        op: generate
        prompt: "{{ product }} in {{ look }} finish"
        num_images: 2
        aspect_ratio: 16x9
      - id: alt
        op: generate
        prompt: "{{ product }} on {{ backdrop | default('white') }}"
      - id: counted
        op: generate
        prompt: "{{ product }} times {{ count }}"
      - id: remixed
        op: remix
        input: hero
        prompt: "{{ product }}, paper-cut, {{ look }}"
        num_images: 2
        image_weight: 60
      - id: print
        op: upscale
        input: remixed
        resemblance: 80
    output:
      dir: out
      file: "{{ key }}/{{ look }}/{{ step }}-{{ index }}-{{ seed }}.png"
"""


def test_fast_path_plans_exactly_what_the_general_path_plans(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from pipeline.planner import core, fast

    with open(tmp_path / "rows.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sku", "product", "backdrop"])
        for i in range(12):
            w.writerow([f"S{i:03d}", f"product {i}", "slate" if i % 3 else ""])
    (tmp_path / "out" / "S001").mkdir(parents=True)  # an existing folder: listed, then fast
    recipe = write(tmp_path, FAST_RECIPE)
    fast_made: list[Task] = []
    real = fast.fast_step

    def counting(*args: Any) -> Any:
        done = real(*args)
        fast_made.extend(done[0] if done else [])
        return done

    monkeypatch.setattr(core, "fast_step", counting)
    quick = plan_file(recipe)
    # hero, remixed and print are simple; alt (default filter) and counted (a number) are not
    assert {t.step_id for t in fast_made} == {"hero", "remixed", "print"}
    assert len(fast_made) == 12 * 2 * (2 + 4 + 4)
    monkeypatch.setattr(core, "fast_shape", lambda s, shape: None)
    fast_made.clear()
    general = plan_file(recipe)
    assert fast_made == []
    assert len(quick.tasks) == len(general.tasks) == 12 * 2 * (2 + 1 + 1 + 4 + 4)
    assert quick.tasks == general.tasks
    assert [t.to_json() for t in quick.tasks] == [t.to_json() for t in general.tasks]
    assert quick.summary() == general.summary()


def test_the_quick_plain_path_check_agrees_with_the_patterns():
    import random

    from pipeline.planner import paths

    rng = random.Random(13)
    alphabet = "aAcCoOnNpPrRuUxXlLmMtT019_-. /.\\:é*"
    words = ["con", "PRN", "aux", "Nul", "com1", "LPT9", "com10", "lpt", ".ideopipe", "a" * 201, "b" * 202]
    cases = ["", "/", "a", "a/", "/a", "a//b", "a/.b", ".a", "a.", "a ", " a", "-a", "con", "con.png"]
    cases += ["x/CON.tar.gz/y", "conx", "co.n", "a/com1", "a/com12", "x" * 201, "x" * 202, "S1/hero-0-1.png"]
    for _ in range(20_000):
        parts = [
            rng.choice(words)
            if rng.random() < 0.2
            else "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
            for _ in range(rng.randint(1, 3))
        ]
        cases.append("/".join(parts))
    differ = [c for c in cases if paths.is_plain(c) != paths._is_plain_by_pattern(c)]
    assert differ == []
    assert sum(paths.is_plain(c) for c in cases) > 1000  # both answers are well represented


@pytest.mark.parametrize(
    ("key", "keys"),
    [
        ("{{ sku }}", ["a1", "7", "c3"]),  # a number (JSONL) takes the full render: the same text
        ("{{ shop }}-{{ sku }}", ["x-a1", "north-7", "north-c3"]),  # a column, else the var
        ("{{ sku }}/{{ vars_only }}", ["a1/v", "7/v", "c3/v"]),
        ("{{ row.sku }}", ["a1", "7", "c3"]),
        ("  {{ sku }}  ", ["a1", "7", "c3"]),
    ],
)
def test_row_keys_render_as_templates_do(tmp_path: Path, key: str, keys: list[str]):
    lines = ['{"sku": "a1", "shop": "x"}', '{"sku": 7}', '{"sku": "c3"}']
    (tmp_path / "rows.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    path = write(
        tmp_path,
        f"""\
        vars: {{shop: north, vars_only: v}}
        rows: {{jsonl: rows.jsonl, key: "{key}"}}
        steps: [{{id: a, op: generate, prompt: x}}]
        """,
    )
    assert [t.row_key for t in plan_file(path).tasks] == keys
