"""The contact sheet of a real spring-launch run against the emulator, in headless Chromium."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from browser import COUNT_VISIBLE, needs_browser, open_page

from pipeline import api
from pipeline.manifest import read_manifest
from pipeline.runner import RunOptions

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def spring_run(emulator, tmp_path: Path):
    recipes = tmp_path / "recipes"
    shutil.copytree(REPO / "recipes", recipes, ignore=shutil.ignore_patterns("out", "*.lock.json"))
    return api.run_file(
        recipes / "spring-launch.yaml",
        RunOptions(base_url=emulator.base_url, quiet=True, yes=True, environ={"IDEOGRAM_API_KEY": "local"}),
    )


def test_spring_launch_report_totals_match_the_manifest(spring_run):
    frame = read_manifest(spring_run.manifest)
    assert len(frame) == 24 and set(frame["status"]) == {"ok"}
    html = spring_run.report.read_text("utf-8")
    assert "spring-launch" in html
    assert "$1.20" in html  # spent == the plan's estimate
    for image_id in frame["image_id"]:
        assert image_id in html


@needs_browser
def test_spring_launch_report_in_chromium(spring_run):
    frame = read_manifest(spring_run.manifest)
    with open_page(spring_run.report) as session:
        page = session.page
        images = session.load_all_images()
        assert len(images) == len(frame) == 24
        assert all(img["naturalWidth"] > 0 for img in images), images
        session.screenshot("report-spring-launch.png")
        visible = COUNT_VISIBLE
        assert session.evaluate(visible, '.card[data-step="print"]') == 8
        page.get_by_role("checkbox", name="print").uncheck()
        assert session.evaluate(visible, '.card[data-step="print"]:not(.context)') == 0
        page.get_by_role("searchbox").fill("SPR-002")
        assert session.evaluate(visible, "section.row") == 1
        assert session.console_errors == []
        assert session.external_requests == []
