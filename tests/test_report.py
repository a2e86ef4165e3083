"""The HTML contact sheet: escaping, placeholders, lineage, thumbnails."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from PIL import Image
from report_sample import (
    CLEAN_ROWS,
    COLUMNS,
    ROWS,
    RUN,
    XSS,
    parse,
    png,
    sample_manifest,
    sample_report,
)

from pipeline.report import THUMB_MAX, thumb_path, write_report

# ------------------------------------------------------------------ plain tests


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out"


@pytest.fixture
def report(out: Path) -> Path:
    return sample_report(out)


def test_write_report_returns_path_and_leaves_no_temp_files(out: Path, report: Path) -> None:
    assert report == out / "report.html"
    assert report.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert not [p for p in out.iterdir() if p.suffix == ".tmp"]


@pytest.mark.parametrize(
    ("where", "change"),
    [
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
    ],
)
def test_every_value_is_escaped(out: Path, where: str, change: Any) -> None:
    manifest, run = sample_manifest(out), dict(RUN)
    rows = {k: dict(v) for k, v in CLEAN_ROWS.items()}
    change(manifest, run, rows)
    html = write_report(out, manifest, run, rows).read_text(encoding="utf-8")
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert parse(out / "report.html").scripts == 1  # only the page's own


def test_attribute_values_cannot_break_out(out: Path) -> None:
    manifest = sample_manifest(out)
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


@pytest.mark.parametrize(
    ("image_id", "label"),
    [
        ("mug-blue-r0b", "Unsafe"),
        ("mug-red-g2", "Failed"),
        ("mug-red-u1b", "In doubt"),
    ],
)
def test_problems_are_placeholders_not_images(report: Path, image_id: str, label: str) -> None:
    card = parse(report).cards[image_id]
    assert card["img"] is None
    assert "kind-placeholder" in card["classes"]
    html = report.read_text(encoding="utf-8")
    assert f'<strong class="ph-label">{label}</strong>' in html


@pytest.mark.parametrize("status", ["download_expired", "skipped_budget", "skipped_parent", "something_new"])
def test_every_other_status_is_a_labelled_placeholder(out: Path, status: str) -> None:
    manifest = sample_manifest(out)
    manifest.loc[0, "status"] = status
    manifest.loc[0, "error"] = pd.NA
    report = write_report(out, manifest, RUN, ROWS)
    card = parse(report).cards["mug-blue-g0"]
    assert card["img"] is None
    assert card["status"] == status
    assert "kind-placeholder" in card["classes"]


def test_missing_or_unreadable_file_is_a_placeholder(out: Path) -> None:
    manifest = sample_manifest(out)
    (out / manifest.loc[0, "file"]).unlink()
    (out / manifest.loc[1, "file"]).write_bytes(b"not a png")
    manifest.loc[2, "file"] = ""
    html = write_report(out, manifest, RUN, ROWS).read_text(encoding="utf-8")
    cards = parse(out / "report.html").cards
    for image_id in ("mug-blue-g0", "mug-blue-r0", "mug-blue-u0"):
        assert cards[image_id]["img"] is None, image_id
    assert html.count('<strong class="ph-label">File missing</strong>') == 2
    assert html.count('<strong class="ph-label">Unreadable</strong>') == 1


def test_every_img_points_at_an_existing_thumbnail(out: Path, report: Path) -> None:
    parsed = parse(report)
    assert len(parsed.imgs) == 12
    for src in parsed.imgs:
        assert src.startswith(".ideopipe/thumbs/")
        with Image.open(out / src) as thumb:
            assert max(thumb.size) <= THUMB_MAX
            assert thumb.format == "JPEG"


def test_lineage_nests_upscale_under_remix_under_generate(report: Path) -> None:
    cards = parse(report).cards
    assert cards["mug-blue-u1"]["ancestors"] == ["mug-blue-g1", "mug-blue-r1"]
    assert cards["mug-blue-r0b"]["ancestors"] == ["mug-blue-g0"]
    assert cards["mug-red-d0"]["ancestors"] == ["mug-red-g0", "mug-red-r0", "mug-red-u0"]
    assert cards["mug-red-g2"]["ancestors"] == []


def test_broken_lineage_still_draws_every_entry(out: Path) -> None:
    manifest = sample_manifest(out)
    manifest.loc[0, "parent_image_id"] = "mug-blue-u0"  # a cycle: g0 → r0 → u0 → g0
    manifest.loc[3, "parent_image_id"] = "from-another-run"
    write_report(out, manifest, RUN, ROWS)
    cards = parse(out / "report.html").cards
    assert set(cards) == set(manifest["image_id"])
    assert cards["mug-blue-g1"]["ancestors"] == []


def test_thumbnails_are_rebuilt_only_when_stale(out: Path) -> None:
    manifest = sample_manifest(out)
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
    manifest = sample_manifest(out)
    for column in COLUMNS:
        if column not in ("run_id", "row_key", "step_id", "image_id", "status", "file"):
            manifest[column] = None
    html = write_report(out, manifest, {"run_id": "r"}, None).read_text(encoding="utf-8")
    body = html[html.index("<body>") : html.rindex("<script>")]
    assert not re.search(r"\b(nan|NaN|None|NaT)\b|&lt;NA&gt;", body)
    assert len(parse(out / "report.html").imgs) == 12


def test_run_info_from_the_journal_is_understood(out: Path) -> None:
    run = {k: v for k, v in RUN.items() if k not in ("duration_s", "planned_cost_usd")}
    run |= {"planned_usd": 2.5, "status": "stopped"}
    html = write_report(out, sample_manifest(out), run, ROWS).read_text(encoding="utf-8")
    assert "planned $2.50" in html
    assert "3 min 12 s" in html  # from started_at and finished_at
    assert '<span class="badge tone-warn">stopped</span>' in html


def test_an_empty_manifest_still_makes_a_page(out: Path) -> None:
    out.mkdir()
    html = write_report(out, pd.DataFrame(columns=COLUMNS), RUN).read_text(encoding="utf-8")
    assert "This run has no entries." in html


def test_missing_key_column_is_refused(out: Path) -> None:
    with pytest.raises(ValueError, match=r"lacks required column.*image_id"):
        write_report(out, pd.DataFrame({"run_id": [], "row_key": [], "step_id": [], "status": []}), RUN)


def test_source_photos_and_masks_start_their_chains(out: Path, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    blue, red, mask = photos / "mug-blue.png", photos / "mug-red.jpg", photos / "mask.png"
    png(blue, (640, 480), (30, 90, 200), "blue")
    png(red, (640, 480), (200, 40, 40), "red")
    png(mask, (640, 480), (0, 0, 0), "mask")
    inputs = {
        "task-mug-blue-g0": {"image": [str(blue)], "mask": []},
        "task-mug-blue-g1": {"image": [str(blue)], "mask": []},
        "task-mug-red-g0": {"image": [str(red)], "mask": [str(mask)]},
    }
    report = write_report(out, sample_manifest(out), RUN, ROWS, inputs=inputs)
    cards = parse(report).cards
    sources = {k: c for k, c in cards.items() if c["role"] == "source"}
    assert len(sources) == 2
    assert all(c["img"] for c in sources.values())
    blue_id = next(k for k, c in sources.items() if len(c["imgs"]) == 1)
    red_id = next(k for k, c in sources.items() if len(c["imgs"]) == 2)  # photo + mask
    assert cards["mug-blue-g0"]["ancestors"] == [blue_id]
    assert cards["mug-blue-g1"]["ancestors"] == [blue_id]
    assert cards["mug-blue-u1"]["ancestors"] == [blue_id, "mug-blue-g1", "mug-blue-r1"]
    assert cards["mug-red-g0"]["ancestors"] == [red_id]
    assert cards["mug-red-g1"]["ancestors"] == []  # it read no photo
    for src in (s for c in sources.values() for s in c["imgs"]):
        with Image.open(out / src) as thumb:
            assert max(thumb.size) <= THUMB_MAX
    html = report.read_text(encoding="utf-8")
    assert ">mug-blue.png</h3>" in html and ">mug-red.jpg</h3>" in html
    assert "mask mask.png" in html


def test_a_missing_source_photo_is_a_placeholder(out: Path, tmp_path: Path) -> None:
    inputs = {"task-mug-blue-g0": {"image": [str(tmp_path / "gone.png")], "mask": []}}
    cards = parse(write_report(out, sample_manifest(out), RUN, ROWS, inputs=inputs)).cards
    source = next(c for c in cards.values() if c["role"] == "source")
    assert source["img"] is None
    assert "kind-placeholder" in source["classes"]
    assert cards["mug-blue-g0"]["img"]


def test_chains_are_grouped_by_matrix_value_within_a_row(out: Path) -> None:
    manifest = sample_manifest(out)
    second = manifest["image_id"].str.contains("1")  # the chains of image 1 get another value
    manifest.loc[second, "matrix"] = json.dumps({"style": "sketch"})
    html = write_report(out, manifest, RUN, ROWS).read_text(encoding="utf-8")
    row = html[html.index('data-row-key="mug-blue"') : html.index('data-row-key="mug-red"')]
    groups = row.split('<div class="group">')[1:]
    assert len(groups) == 2
    assert "<b>style</b> photo" in groups[0] and "<b>style</b> sketch" in groups[1]
    assert "mug-blue-g0" in groups[0] and "mug-blue-u0" in groups[0]
    assert "mug-blue-g1" in groups[1] and "mug-blue-u1" in groups[1]
    assert "mug-blue-g1" not in groups[0]


def test_one_matrix_value_needs_no_group_heading(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    assert html.count('<div class="group">') == 2  # one per row
    assert 'class="group-head"' not in html
