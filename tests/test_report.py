"""The HTML contact sheet: escaping, placeholders, lineage, thumbnails, and the page in Chromium."""

from __future__ import annotations

import json
import os
import re
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from browser import COUNT_VISIBLE, needs_browser, open_page
from PIL import Image, ImageDraw

from pipeline.money import totals, usd
from pipeline.report import THUMB_DIR, THUMB_MAX, thumb_path, write_report

XSS = "<script>alert(1)</script>"
LONG_PROMPT = ("A sunlit product shot of a ceramic mug on an oak table, soft window light, "
               "shallow depth of field, steam rising, muted earthy palette, 35mm photograph, "
               "clean negative space on the left for copy")

COLUMNS = [
    "schema_version", "run_id", "recipe", "recipe_sha256", "row_index", "row_key", "matrix",
    "step_id", "op", "provider", "endpoint", "model", "image_id", "parent_image_id",
    "image_index", "prompt", "api_prompt", "negative_prompt", "seed", "seed_source",
    "aspect_ratio", "resolution", "rendering_speed", "style_type", "magic_prompt",
    "is_image_safe", "description", "status", "error", "cost_usd", "file", "sha256", "width",
    "height", "bytes", "url", "attempts", "latency_s", "started_at", "finished_at",
]
# The manifest's nullable dtypes, so missing values arrive as pd.NA as in a real run.
DTYPES = {c: "string" for c in COLUMNS} | {
    c: "Int64" for c in ("schema_version", "row_index", "image_index", "seed", "width",
                         "height", "bytes", "attempts")
} | {"cost_usd": "Float64", "latency_s": "Float64", "is_image_safe": "boolean"}
STEP_COLOURS = {"hero": (79, 70, 229), "variant": (14, 116, 144), "big": (190, 18, 60)}
RUN = {
    "run_id": "20251121-154103-ab12", "recipe_name": "Spring launch heroes",
    "description": "Two hero shots per product, one remix each, upscaled for print.",
    "provider": "ideogram", "started_at": "2025-11-21T15:41:03Z",
    "finished_at": "2025-11-21T15:44:15Z", "duration_s": 192.4, "planned_cost_usd": 1.2,
    "budget_usd": 5.0, "spent_usd": 0.93, "status": "ok", "steps": ["hero", "variant", "big"],
}


def _png(path: Path, size: tuple[int, int], colour: tuple[int, int, int], label: str) -> None:
    """A small but recognisable picture: a gradient, a disc and a label."""
    img = Image.new("RGB", size)
    draw = ImageDraw.Draw(img)
    w, h = size
    for y in range(h):
        t = y / h
        draw.line([(0, y), (w, y)], fill=tuple(int(c * (1 - t) + 245 * t) for c in colour))
    r = min(w, h) // 4
    draw.ellipse([w // 2 - r, h // 2 - r, w // 2 + r, h // 2 + r], fill=(250, 250, 250))
    draw.text((16, 16), label, fill=(255, 255, 255), font_size=max(14, h // 14))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def _entry(row: int, key: str, step: str, op: str, image_id: str, parent: str | None,
           index: int, status: str = "ok", **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = dict.fromkeys(COLUMNS)
    entry.update(
        schema_version=1, run_id=RUN["run_id"], recipe="recipes/launch.yaml",
        recipe_sha256="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        row_index=row, row_key=key, matrix=json.dumps({"style": "photo"}), step_id=step, op=op,
        provider="ideogram", model="V_3", image_id=image_id, parent_image_id=parent,
        image_index=index, prompt=f"{key}: a {op} of the product",
        seed=1000 + row * 100 + index, seed_source="derived", aspect_ratio="4x3",
        rendering_speed="TURBO", status=status, cost_usd=0.03 if op == "generate" else 0.06,
        attempts=1,
    )
    if status == "ok" and op != "describe":
        size = (1024, 768) if op != "upscale" else (2048, 1536)
        entry.update(file=f"{key}/{step}/{image_id}.png", width=size[0], height=size[1])
    entry.update(extra)
    return entry


def _manifest(out: Path) -> pd.DataFrame:
    """Two rows: generate 2 → remix each → upscale each; plus the ways things go wrong."""
    entries = []
    for row, key in enumerate(["mug-blue", "mug-red"]):
        for i in range(2):
            gen, remix, up = f"{key}-g{i}", f"{key}-r{i}", f"{key}-u{i}"
            entries += [
                _entry(row, key, "hero", "generate", gen, None, i),
                _entry(row, key, "variant", "remix", remix, gen, 0),
                _entry(row, key, "big", "upscale", up, remix, 0),
            ]
    entries[0]["api_prompt"] = LONG_PROMPT  # magic prompt rewrote it
    entries[1]["cost_usd"] = None  # unknown price
    entries += [
        _entry(0, "mug-blue", "variant", "remix", "mug-blue-r0b", "mug-blue-g0", 1, "unsafe",
               error="422: image failed the safety check", is_image_safe=False),
        _entry(1, "mug-red", "hero", "generate", "mug-red-g2", None, 2, "failed",
               error="400 Bad Request: <b>prompt</b> too long"),
        _entry(1, "mug-red", "big", "upscale", "mug-red-u1b", "mug-red-r1", 1, "in_doubt",
               error="read timed out after 120 s"),
        _entry(1, "mug-red", "describe", "describe", "mug-red-d0", "mug-red-u0", 0,
               description="A red ceramic mug on a wooden table, morning light.", cost_usd=0.01),
    ]
    for e in entries:
        if e["file"]:
            colour = STEP_COLOURS[e["step_id"]]
            _png(out / e["file"], (e["width"] // 4, e["height"] // 4), colour, e["image_id"])
    return pd.DataFrame(entries, columns=COLUMNS).astype(DTYPES)


CLEAN_ROWS = {
    "mug-blue": {"product": "Mug", "colour": "blue", "headline": "Morning, made better"},
    "mug-red": {"product": "Mug", "colour": "red", "headline": "Red is the new blue"},
}
# One CSV cell is a script; another would set a flag if it ever ran.
ROWS = {**CLEAN_ROWS, "mug-red": {**CLEAN_ROWS["mug-red"], "headline": XSS,
                                  "note": "<script>window.__xss = 1</script>"}}


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out"


@pytest.fixture
def report(out: Path) -> Path:
    return write_report(out, _manifest(out), RUN, ROWS)


class _Cards(HTMLParser):
    """Each card's image id, status, whether it has an <img>, and its ancestors' ids."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str | None] = []  # one slot per open <li class="node">
        self.depth: list[str] = []  # open tags, to know which <li> closes
        self.cards: dict[str, dict[str, Any]] = {}
        self.current: str | None = None
        self.imgs: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "li":
            self.depth.append("node" if "node" in (a.get("class") or "").split() else "li")
            if self.depth[-1] == "node":
                self.stack.append(None)
        if tag == "article":
            image_id = a["data-image-id"] or ""
            ancestors = [s for s in self.stack[:-1] if s]
            self.cards[image_id] = {"status": a["data-status"], "classes": a["class"],
                                    "img": None, "ancestors": ancestors}
            self.stack[-1] = image_id
            self.current = image_id
        if tag == "img":
            self.imgs.append(a["src"] or "")
            if self.current:
                self.cards[self.current]["img"] = a["src"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "article":
            self.current = None
        if tag == "li" and self.depth.pop() == "node":
            self.stack.pop()


def _parse(path: Path) -> _Cards:
    parser = _Cards()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


# ------------------------------------------------------------------ plain tests


def test_write_report_returns_path_and_leaves_no_temp_files(out: Path, report: Path) -> None:
    assert report == out / "report.html"
    assert report.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert not [p for p in out.iterdir() if p.suffix == ".tmp"]


@pytest.mark.parametrize(("where", "change"), [
    ("csv cell", lambda m, run, rows: rows["mug-red"].__setitem__("headline", XSS)),
    ("csv column name", lambda m, run, rows: rows["mug-red"].__setitem__(XSS, "x")),
    ("prompt", lambda m, run, rows: m.__setitem__("api_prompt", XSS)),
    ("long prompt", lambda m, run, rows: m.__setitem__("api_prompt", XSS * 30)),
    ("error", lambda m, run, rows: m.__setitem__("error", XSS)),
    ("description", lambda m, run, rows: m.__setitem__("description", XSS)),
    ("recipe name", lambda m, run, rows: run.__setitem__("recipe_name", XSS)),
    ("run description", lambda m, run, rows: run.__setitem__("description", XSS)),
    ("row key", lambda m, run, rows: m.__setitem__("row_key", XSS)),
    ("step id", lambda m, run, rows: m.__setitem__("step_id", XSS)),
    ("model", lambda m, run, rows: m.__setitem__("model", XSS)),
    ("matrix", lambda m, run, rows: m.__setitem__("matrix", json.dumps({XSS: XSS}))),
    ("image id", lambda m, run, rows: m.__setitem__("image_id", m["image_id"] + XSS)),
])
def test_every_value_is_escaped(out: Path, where: str, change: Any) -> None:
    manifest, run = _manifest(out), dict(RUN)
    rows = {k: dict(v) for k, v in CLEAN_ROWS.items()}
    change(manifest, run, rows)
    html = write_report(out, manifest, run, rows).read_text(encoding="utf-8")
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert _parse(out / "report.html").scripts == 1  # only the page's own


def test_attribute_values_cannot_break_out(out: Path) -> None:
    manifest = _manifest(out)
    manifest["prompt"] = manifest["api_prompt"] = '" onmouseover="alert(1)'
    html = write_report(out, manifest, RUN, ROWS).read_text(encoding="utf-8")
    assert 'onmouseover="alert' not in html
    assert "&#34; onmouseover=&#34;alert(1)" in html


def test_csp_allows_only_the_page_script(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    assert "default-src 'none'" in html
    assert "script-src 'sha256-" in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html


@pytest.mark.parametrize(("image_id", "label"), [
    ("mug-blue-r0b", "Unsafe"),
    ("mug-red-g2", "Failed"),
    ("mug-red-u1b", "In doubt"),
])
def test_problems_are_placeholders_not_images(report: Path, image_id: str, label: str) -> None:
    card = _parse(report).cards[image_id]
    assert card["img"] is None
    assert "kind-placeholder" in card["classes"]
    html = report.read_text(encoding="utf-8")
    assert f'<strong class="ph-label">{label}</strong>' in html


@pytest.mark.parametrize("status", ["download_expired", "skipped_budget", "skipped_parent",
                                    "something_new"])
def test_every_other_status_is_a_labelled_placeholder(out: Path, status: str) -> None:
    manifest = _manifest(out)
    manifest.loc[0, "status"] = status
    manifest.loc[0, "error"] = pd.NA
    report = write_report(out, manifest, RUN, ROWS)
    card = _parse(report).cards["mug-blue-g0"]
    assert card["img"] is None
    assert card["status"] == status
    assert "kind-placeholder" in card["classes"]


def test_missing_or_unreadable_file_is_a_placeholder(out: Path) -> None:
    manifest = _manifest(out)
    (out / manifest.loc[0, "file"]).unlink()
    (out / manifest.loc[1, "file"]).write_bytes(b"not a png")
    manifest.loc[2, "file"] = ""
    html = write_report(out, manifest, RUN, ROWS).read_text(encoding="utf-8")
    cards = _parse(out / "report.html").cards
    for image_id in ("mug-blue-g0", "mug-blue-r0", "mug-blue-u0"):
        assert cards[image_id]["img"] is None, image_id
    assert html.count('<strong class="ph-label">File missing</strong>') == 2
    assert html.count('<strong class="ph-label">Unreadable</strong>') == 1


def test_every_img_points_at_an_existing_thumbnail(out: Path, report: Path) -> None:
    parsed = _parse(report)
    assert len(parsed.imgs) == 12
    for src in parsed.imgs:
        assert src.startswith(".ideopipe/thumbs/")
        with Image.open(out / src) as thumb:
            assert max(thumb.size) <= THUMB_MAX
            assert thumb.format == "JPEG"


def test_lineage_nests_upscale_under_remix_under_generate(report: Path) -> None:
    cards = _parse(report).cards
    assert cards["mug-blue-u1"]["ancestors"] == ["mug-blue-g1", "mug-blue-r1"]
    assert cards["mug-blue-r0b"]["ancestors"] == ["mug-blue-g0"]
    assert cards["mug-red-d0"]["ancestors"] == ["mug-red-g0", "mug-red-r0", "mug-red-u0"]
    assert cards["mug-red-g2"]["ancestors"] == []


def test_broken_lineage_still_draws_every_entry(out: Path) -> None:
    manifest = _manifest(out)
    manifest.loc[0, "parent_image_id"] = "mug-blue-u0"  # a cycle: g0 → r0 → u0 → g0
    manifest.loc[3, "parent_image_id"] = "from-another-run"
    write_report(out, manifest, RUN, ROWS)
    cards = _parse(out / "report.html").cards
    assert set(cards) == set(manifest["image_id"])
    assert cards["mug-blue-g1"]["ancestors"] == []


def test_thumbnails_are_rebuilt_only_when_stale(out: Path) -> None:
    manifest = _manifest(out)
    write_report(out, manifest, RUN, ROWS)
    thumb = thumb_path(out, "mug-blue-g0", manifest.loc[0, "file"])
    source = out / manifest.loc[0, "file"]
    old = time.time() - 100
    os.utime(thumb, (old, old))
    os.utime(source, (old - 50, old - 50))
    write_report(out, manifest, RUN, ROWS)
    assert thumb.stat().st_mtime == pytest.approx(old)  # fresh: untouched
    os.utime(source, (old + 50, old + 50))
    write_report(out, manifest, RUN, ROWS)
    assert thumb.stat().st_mtime > old + 50  # source is newer: rebuilt


def test_values_may_be_missing_anywhere_but_the_keys(out: Path) -> None:
    manifest = _manifest(out)
    for column in COLUMNS:
        if column not in ("run_id", "row_key", "step_id", "image_id", "status", "file"):
            manifest[column] = None
    html = write_report(out, manifest, {"run_id": "r"}, None).read_text(encoding="utf-8")
    body = html[html.index("<body>"):html.rindex("<script>")]
    assert not re.search(r"\b(nan|NaN|None|NaT)\b|&lt;NA&gt;", body)
    assert len(_parse(out / "report.html").imgs) == 12


def _money_cell(html: str, attribute: str, name: str) -> str:
    found = re.search(rf'{attribute}="{name}">(\$[0-9,.]+)<', html)
    assert found, f"no {attribute}={name} figure"
    return found.group(1)


def test_header_and_step_table_show_the_three_money_totals(out: Path) -> None:
    manifest = _manifest(out)
    html = write_report(out, manifest, RUN, ROWS).read_text(encoding="utf-8")
    money = totals(manifest, RUN["run_id"])
    # Worked by hand: 2 rows x (0.03 + 0.06 + 0.06), less one unknown price (0.06), plus the
    # unsafe remix (0.06), the failed generate (0.03) and the describe (0.01).
    assert money.run_spent == pytest.approx(0.64)
    assert money.batch_cost == pytest.approx(0.64)
    assert money.in_doubt == pytest.approx(0.06)
    for name in ("run_spent", "batch_cost", "in_doubt"):
        figure = usd(getattr(money, name))
        assert _money_cell(html, "data-money", name) == figure  # the header
        assert _money_cell(html, "data-total", name) == figure  # the step table's total
    assert money.describe() in html
    assert "simulated" not in money.describe()
    assert "planned $1.20" in html
    assert "budget $5.00" in html
    assert "3 min 12 s" in html
    assert "2025-11-21 15:41:03 UTC" in html
    assert "+?" in html  # the entry with an unknown price


def test_step_rows_add_up_to_the_totals(out: Path) -> None:
    html = write_report(out, _manifest(out), RUN, ROWS).read_text(encoding="utf-8")
    rows = re.findall(r'<tr data-step="([^"]+)">(.*?)</tr>', html)
    assert [step for step, _ in rows] == ["hero", "variant", "big", "describe"]
    spent = [re.findall(r"\$([0-9.]+)", cells)[0] for _, cells in rows]
    assert sum(float(v) for v in spent) == pytest.approx(
        float(_money_cell(html, "data-total", "run_spent")[1:]))


@pytest.mark.parametrize("style", ["columns", "legacy cached"])
def test_images_reused_from_earlier_runs_are_ok_and_not_spent_again(out: Path, style: str) -> None:
    manifest = _manifest(out)
    earlier = manifest["step_id"].eq("hero") & manifest["status"].eq("ok")
    if style == "columns":
        manifest["reused"] = earlier.astype("boolean")
        manifest["produced_by_run"] = manifest["run_id"].mask(earlier, "20251120-090000-old1")
    else:
        manifest.loc[earlier, "status"] = "cached"
    html = write_report(out, manifest, RUN, ROWS).read_text(encoding="utf-8")
    cards = _parse(out / "report.html").cards
    assert cards["mug-blue-g1"]["status"] == "ok"
    assert cards["mug-blue-g1"]["img"]
    assert "cached" not in {c["status"] for c in cards.values()}
    # The four hero images (4 x $0.03) were paid for by the earlier run.
    assert _money_cell(html, "data-money", "run_spent") == "$0.5200"
    assert _money_cell(html, "data-money", "batch_cost") == "$0.6400"
    assert "4 reused from earlier runs" in html
    if style == "columns":
        assert "reused from run 20251120-090000-old1" in html


def test_emulator_runs_are_labelled_simulated(out: Path) -> None:
    html = write_report(out, _manifest(out), {**RUN, "provider": "emulator"}, ROWS) \
        .read_text(encoding="utf-8")
    assert "simulated: spent this run $0.6400 · batch $0.6400" in html
    assert ", no real charge" in html
    assert 'data-simulated="true"' in html


@pytest.mark.parametrize(("status", "label"), [
    ("pending", "Pending"), ("not_saved", "Not saved"), ("skipped_parent", "Skipped: no input"),
])
def test_pending_and_not_saved_are_labelled_placeholders(out: Path, status: str, label: str) -> None:
    manifest = _manifest(out)
    manifest.loc[3, "status"] = status
    manifest.loc[3, ["error", "file"]] = pd.NA
    html = write_report(out, manifest, RUN, ROWS).read_text(encoding="utf-8")
    card = _parse(out / "report.html").cards["mug-blue-g1"]
    assert card["img"] is None
    assert f'<strong class="ph-label">{label}</strong>' in html


def test_run_info_from_the_journal_is_understood(out: Path) -> None:
    run = {k: v for k, v in RUN.items() if k not in ("duration_s", "planned_cost_usd")}
    run |= {"planned_usd": 2.5, "status": "stopped"}
    html = write_report(out, _manifest(out), run, ROWS).read_text(encoding="utf-8")
    assert "planned $2.50" in html
    assert "3 min 12 s" in html  # from started_at and finished_at
    assert '<span class="badge tone-warn">stopped</span>' in html


def test_an_empty_manifest_still_makes_a_page(out: Path) -> None:
    out.mkdir()
    html = write_report(out, pd.DataFrame(columns=COLUMNS), RUN).read_text(encoding="utf-8")
    assert "This run has no entries." in html


def test_missing_key_column_is_refused(out: Path) -> None:
    with pytest.raises(ValueError, match=r"lacks required column.*image_id"):
        write_report(out, pd.DataFrame({"run_id": [], "row_key": [], "step_id": [],
                                        "status": []}), RUN)


# ----------------------------------------------------------------- browser test


@pytest.mark.browser
@needs_browser
def test_report_in_chromium(out: Path, report: Path) -> None:
    hook = "window.alert = () => { window.__alerted = true; };"
    with open_page(report, init_script=hook) as session:
        page = session.page
        images = session.load_all_images()
        assert len(images) == 12
        assert all(img["naturalWidth"] > 0 for img in images), images

        # The <script> CSV cell is text, and nothing injected ran.
        assert session.evaluate("window.__xss === undefined && window.__alerted === undefined")
        text = session.evaluate("document.body.textContent")
        assert XSS in text
        assert "<script>window.__xss = 1</script>" in text
        assert session.evaluate("document.scripts.length") == 1

        session.screenshot("report.png")

        visible = COUNT_VISIBLE
        assert session.evaluate(visible, '.card[data-step="big"]') == 5

        # Unchecking a leaf step hides its cards.
        page.get_by_role("checkbox", name="big").uncheck()
        assert session.evaluate(visible, '.card[data-step="big"]:not(.context)') == 0
        assert session.evaluate(visible, '.card[data-step="big"].context') == 1  # has a describe
        assert session.evaluate(visible, '.card[data-step="variant"]') == 5
        # Unchecking a step with children keeps its cards only as dimmed context.
        page.get_by_role("checkbox", name="hero").uncheck()
        assert session.evaluate(visible, '.card[data-step="hero"]:not(.context)') == 0
        assert session.evaluate(visible, '.card[data-step="hero"].context') == 4
        page.get_by_role("button", name="Reset").click()
        page.wait_for_function("document.querySelectorAll('.card.context').length === 0")
        assert session.evaluate(visible, '.card[data-step="big"]') == 5

        # Status filter: only the problems.
        for box in page.get_by_role("checkbox").all():
            if box.get_attribute("name") == "status" and box.get_attribute("value") == "ok":
                box.uncheck()
        assert session.evaluate(visible, ".card:not(.context)") == 3
        session.screenshot("report-problems.png")

        page.get_by_role("button", name="Reset").click()
        # Search by row key hides the other row; by prompt text narrows the cards.
        page.get_by_role("searchbox").fill("mug-red")
        assert session.evaluate(visible, "section.row") == 1
        assert session.evaluate("document.querySelector('section.row:not([hidden])')"
                                ".dataset.rowKey") == "mug-red"
        page.get_by_role("searchbox").fill("earthy palette")
        assert session.evaluate(visible, "section.row") == 1
        assert session.evaluate(visible, ".card:not(.context)") == 1
        page.get_by_role("searchbox").fill("no such thing")
        assert session.evaluate(visible, "section.row") == 0
        assert session.evaluate("document.getElementById('empty').hidden") is False

        assert session.console_errors == []
        assert session.external_requests == []
        assert session.failed_requests == []
