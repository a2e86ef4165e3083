"""The contact sheet in headless Chromium: filters, search, escaping, the bundle, the layout."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser import COUNT_VISIBLE, needs_browser, open_page
from report_sample import XSS, sample_report


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
