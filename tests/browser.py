"""Drive the system's headless Chromium through Playwright, offline, for page tests.

    with open_page(report) as session:
        session.page.get_by_role("checkbox", name="upscale").uncheck()
        assert not session.console_errors
        assert not session.external_requests
        session.screenshot("report.png")

Playwright never downloads a browser here: it launches /usr/bin/chromium with a
fresh profile, and every request that is not for a local file is aborted and
recorded in `external_requests`, so a test can assert the page is self-contained.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = Path(os.environ.get("IDEOPIPE_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).parent.parent / "test-artifacts"
ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
)
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")  # none of these touch the network


def unavailable() -> str | None:
    """Why browser tests cannot run here, or None if they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    if not CHROMIUM.is_file():
        return f"no Chromium at {CHROMIUM}"
    return None


# JS: how many elements matching a selector are visible (pass the selector as the argument).
COUNT_VISIBLE = (
    "(sel) => Array.from(document.querySelectorAll(sel)).filter((el) => el.offsetParent !== null).length"
)

# Use as a decorator. A missing Chromium fails the test (with the reason) rather than
# skipping it: .ci/run installs Debian's chromium, and a silent skip would hide a gap.
needs_browser = pytest.mark.browser


@dataclass
class Session:
    """An open page and what it did: console errors, uncaught errors, requests."""

    page: Page
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)

    def evaluate(self, script: str, arg: Any = None) -> Any:
        """Run a JS expression or function in the page and return its value."""
        return self.page.evaluate(script, arg)

    def load_all_images(self, timeout_ms: int = 15_000) -> list[dict[str, Any]]:
        """Make lazy images load now; return each <img>'s src, naturalWidth and complete."""
        return self.page.evaluate(
            """async (timeout) => {
                const imgs = Array.from(document.images);
                for (const img of imgs) img.loading = "eager";
                const settle = (img) => img.decode().catch(() => null);
                const limit = new Promise((resolve) => setTimeout(resolve, timeout));
                await Promise.race([Promise.all(imgs.map(settle)), limit]);
                return imgs.map((img) => ({
                    src: img.currentSrc || img.src,
                    naturalWidth: img.naturalWidth,
                    complete: img.complete,
                }));
            }""",
            timeout_ms,
        )

    def screenshot(self, name: str, *, full_page: bool = True) -> Path:
        """Save a PNG under test-artifacts/ and return its path."""
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


@contextmanager
def open_page(
    path: Path,
    *,
    width: int = 1440,
    height: int = 900,
    timeout_ms: int = 15_000,
    init_script: str | None = None,
) -> Iterator[Session]:
    """Open a local HTML file in headless Chromium with a fresh, throwaway profile."""
    from playwright.sync_api import sync_playwright

    url = Path(path).resolve().as_uri()
    profile = tempfile.mkdtemp(prefix="ideopipe-chromium-")
    try:
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                user_data_dir=profile,
                executable_path=str(CHROMIUM),
                headless=True,
                args=list(ARGS),
                viewport={"width": width, "height": height},
                offline=True,
                service_workers="block",
            )
            try:
                context.set_default_timeout(timeout_ms)
                page = context.pages[0] if context.pages else context.new_page()
                session = Session(page)
                _record(context, page, session)
                if init_script:
                    context.add_init_script(init_script)
                page.goto(url, wait_until="load")
                yield session
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def render(path: Path, script: str, *, screenshot: str | None = None) -> tuple[list[str], Any]:
    """Open `path`, evaluate `script`, optionally save a screenshot; (console errors, result)."""
    with open_page(path) as session:
        result = session.evaluate(script)
        if screenshot:
            session.screenshot(screenshot)
        return list(session.console_errors), result


def _record(context: Any, page: Page, session: Session) -> None:
    def on_request(request: Any) -> None:
        session.requests.append(request.url)
        if not request.url.startswith(LOCAL_SCHEMES):
            session.external_requests.append(request.url)

    def on_console(message: Any) -> None:
        if message.type == "error":
            session.console_errors.append(f"console: {message.text}")

    def on_page_error(error: Any) -> None:
        session.console_errors.append(f"uncaught: {error}")

    def on_failed(request: Any) -> None:
        session.failed_requests.append(f"{request.url} ({request.failure})")

    context.on("request", on_request)
    context.on("requestfailed", on_failed)
    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    # Belt and braces: whatever the page asks of the network is refused.
    context.route(lambda url: not url.startswith(LOCAL_SCHEMES), lambda route: route.abort())
