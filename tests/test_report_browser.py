"""The contact sheet in headless Chromium: filters, search, escaping, the bundle, the layout."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from browser import COUNT_VISIBLE, needs_browser, open_page
from report_sample import ROWS, RUN, XSS, large_manifest, sample_manifest, sample_report

from pipeline.report import write_report


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out"


@pytest.fixture
def report(out: Path) -> Path:
    return sample_report(out)


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
        assert (
            session.evaluate("document.querySelector('section.row:not([hidden])').dataset.rowKey")
            == "mug-red"
        )
        page.get_by_role("searchbox").fill("earthy palette")
        assert session.evaluate(visible, "section.row") == 1
        assert session.evaluate(visible, ".card:not(.context)") == 1
        page.get_by_role("searchbox").fill("no such thing")
        assert session.evaluate(visible, "section.row") == 0
        assert session.evaluate("document.getElementById('empty').hidden") is False

        assert session.console_errors == []
        assert session.external_requests == []
        assert session.failed_requests == []


# ------------------------------------------------------ the bundle, layout, money


@needs_browser
def test_the_bundle_alone_in_an_empty_folder_shows_every_image(out: Path, tmp_path: Path) -> None:
    write_report(out, sample_manifest(out), RUN, ROWS, bundle=True)
    alone = tmp_path / "mailbox"
    alone.mkdir()
    shutil.copy(out / "report.html", alone / "report.html")
    assert [p.name for p in alone.iterdir()] == ["report.html"]
    with open_page(alone / "report.html") as session:
        images = session.load_all_images()
        assert len(images) == 12
        assert all(img["naturalWidth"] > 0 for img in images), images
        assert all(img["src"].startswith("data:image/") for img in images)
        assert session.failed_requests == []
        assert session.external_requests == []
        assert session.console_errors == []
        session.screenshot("report-bundle.png", full_page=False)


# Every card title: not clipped sideways or downwards, and given most of its card's width.
TITLES = """() => {
  // Rows off screen are skipped by content-visibility: lay them all out to measure them.
  for (const row of document.querySelectorAll('section.row')) row.style.contentVisibility = 'visible';
  return Array.from(document.querySelectorAll('.card .title'))
  .filter((el) => el.offsetParent !== null)
  .map((el) => {
    const card = el.closest('.card').getBoundingClientRect();
    return {text: el.textContent, shown: el.innerText, width: el.getBoundingClientRect().width,
            card: card.width, clippedX: el.scrollWidth > el.clientWidth + 1,
            clippedY: el.scrollHeight > el.clientHeight + 1};
  });
}"""
LONG_STEPS = {
    "hero": "hero-shot-for-the-spring-campaign",
    "variant": "paper_cut_illustration_variant_for_social_media_without_any_break",
    "big": "print-upscale",
}


@needs_browser
@pytest.mark.parametrize("compact", [False, True])
def test_card_titles_are_never_truncated(out: Path, compact: bool) -> None:
    manifest = sample_manifest(out)
    manifest["step_id"] = manifest["step_id"].replace(LONG_STEPS)
    manifest["op"] = manifest["op"].replace({"remix": "remix-with-a-long-op-name"})
    run = {**RUN, "steps": list(LONG_STEPS.values())}
    report = write_report(out, manifest, run, ROWS)
    with open_page(report, width=1100) as session:
        if compact:
            session.page.get_by_role("button", name="Compact grid").click()
            assert session.evaluate("document.body.classList.contains('compact')")
        titles = session.evaluate(TITLES)
        assert len(titles) == 16
        for t in titles:
            assert t["shown"].replace("\n", "") == t["text"], t  # every letter is drawn
            assert not t["clippedX"] and not t["clippedY"], t
            assert t["width"] >= 0.6 * t["card"], t
        session.screenshot(f"report-titles{'-compact' if compact else ''}.png")


CARD_WIDTHS = (
    "() => Array.from(document.querySelectorAll('.card')).map((c) => c.getBoundingClientRect().width)"
)
IN_VIEW = """() => Array.from(document.querySelectorAll('.card')).filter((c) => {
  const r = c.getBoundingClientRect();
  return r.top >= 0 && r.bottom <= innerHeight && r.width > 0;
}).length"""


@needs_browser
def test_compact_grid_toggles_and_is_remembered(out: Path) -> None:
    report = sample_report(out)
    with open_page(report) as session:
        page = session.page
        session.evaluate("window.scrollTo(0, document.querySelector('section.row').offsetTop)")
        roomy = session.evaluate(IN_VIEW)
        button = page.get_by_role("button", name="Compact grid")
        assert button.get_attribute("aria-pressed") == "false"
        button.click()
        assert button.get_attribute("aria-pressed") == "true"
        assert max(session.evaluate(CARD_WIDTHS)) <= 160
        session.evaluate("window.scrollTo(0, document.querySelector('section.row').offsetTop)")
        assert session.evaluate(IN_VIEW) > roomy
        page.reload()
        assert session.evaluate("document.body.classList.contains('compact')")  # remembered
        page.keyboard.press("c")
        assert not session.evaluate("document.body.classList.contains('compact')")
        assert session.console_errors == []


@needs_browser
def test_a_thousand_image_page_opens_compact_and_filters(out: Path) -> None:
    manifest = large_manifest(out, 84)  # 1,008 images
    started = time.perf_counter()
    report = write_report(out, manifest, {**RUN, "steps": ["hero", "variant", "big"]}, None)
    rendered = time.perf_counter() - started
    with open_page(report, timeout_ms=60_000) as session:
        page = session.page
        loaded = session.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
        assert session.evaluate("document.body.classList.contains('compact')")
        assert session.evaluate("document.querySelectorAll('article.card').length") == 1008
        assert max(session.evaluate(CARD_WIDTHS)) <= 160
        started = time.perf_counter()
        page.get_by_role("searchbox").fill("sku-0042")
        page.wait_for_function("document.getElementById('shown').textContent.startsWith('12 of 1008')")
        filtered = time.perf_counter() - started
        assert session.evaluate(COUNT_VISIBLE, "section.row") == 1
        images = session.load_all_images(timeout_ms=60_000)
        assert len(images) == 1008 and all(img["naturalWidth"] > 0 for img in images)
        assert session.console_errors == []
    print(
        f"\n1,008 images: written in {rendered:.2f} s, loaded in {loaded / 1000:.2f} s, "
        f"a search filtered in {filtered:.2f} s (rough: shared machine)"
    )
