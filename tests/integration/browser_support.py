"""Browser tests: Debian's Chromium driven by Playwright against the whole app served on a
free port (`live_app`), with a screenshot saved at each step.

A test module imports the fixtures it uses from here (`live`, `page`, `shots`, and the ones
they stand on: `browser`, `browser_context_args`, `playwright_driver`) and asks for them:
`live` is the app over the test's `ctx`, its `base_url` set to where it listens, so the
links in emails and sign-in links open in the browser; `page` is a fresh browser context
and tab, English unless the module overrides `browser_context_args`; `shots(page, "step")`
saves `test-artifacts/screenshots/<test>/<nn>-step.png` (a git-ignored folder).
`sqlite_only` (as `pytestmark`) runs a module on SQLite only.

Playwright's own browser download needs the network; the tests launch the system's
Chromium instead (`apt-get install chromium`), found at CHROMIUM.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from live_app import Clock, LiveSite, live_site, sqlite_only
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from courtois.services.context import Context

__all__ = [
    "CHROMIUM",
    "Clock",
    "LiveSite",
    "Shots",
    "broken_words",
    "browser",
    "browser_context_args",
    "live",
    "live_site",
    "page",
    "page_width",
    "playwright_driver",
    "shots",
    "sqlite_only",
]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
# Quick failures: every page here is served locally and renders at once.
TIMEOUT_MS = 5_000


@pytest.fixture
def live(ctx: Context) -> Iterator[LiveSite]:
    """The app over the test's database, served."""
    with live_site(ctx) as site:
        yield site


class _Shared:
    """One Playwright driver and one Chromium at a time.

    Each test module imports the fixtures, which are module-scoped: the sync driver runs an
    event loop in the test thread for as long as it lives, and any later test that starts
    an asyncio loop of its own (the SMTP and webhook tests do) would fail while it does. So
    the driver lives only as long as the browser tests of one module; a second driver in
    the same thread would fail ("Sync API inside the asyncio loop"), so the fixtures share
    these and the last one to finish stops them.
    """

    users = 0
    manager: Any = None
    driver: Playwright | None = None
    chromium: Browser | None = None

    @classmethod
    def start(cls) -> Playwright:
        if cls.driver is None:
            cls.manager = sync_playwright()
            cls.driver = cls.manager.__enter__()
        cls.users += 1
        return cls.driver

    @classmethod
    def browser(cls) -> Browser:
        if cls.chromium is None:
            assert cls.driver is not None
            cls.chromium = cls.driver.chromium.launch(executable_path=CHROMIUM, headless=True)
        return cls.chromium

    @classmethod
    def stop(cls) -> None:
        cls.users -= 1
        if cls.users > 0:
            return
        if cls.chromium is not None:
            cls.chromium.close()
            cls.chromium = None
        if cls.manager is not None:
            cls.manager.__exit__(None, None, None)
        cls.manager, cls.driver = None, None


@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    """The module's Playwright driver."""
    driver = _Shared.start()
    try:
        yield driver
    finally:
        _Shared.stop()


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright) -> Browser:
    """Debian's Chromium, headless, launched once for the module."""
    return _Shared.browser()


@pytest.fixture
def browser_context_args() -> dict[str, Any]:
    """Options of each test's browser context; override the fixture to change them."""
    return {"locale": "en-US", "viewport": {"width": 1000, "height": 800}}


@pytest.fixture
def page(browser: Browser, browser_context_args: dict[str, Any]) -> Iterator[Page]:
    """A fresh browser context (no cookies) and one tab in it."""
    context: BrowserContext = browser.new_context(**browser_context_args)
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    try:
        yield tab
    finally:
        context.close()


class Shots:
    """Numbered full-page screenshots of one test, kept as test artefacts."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.taken: list[Path] = []

    def __call__(self, page: Page, step: str, *, full_page: bool = True) -> Path:
        """Save the page as it is now; returns the file. Chromium leaves frames blank in
        full-page shots: scroll a frame into view and take the viewport (`full_page=False`)
        to see its content."""
        name = re.sub(r"[^a-z0-9]+", "-", step.lower()).strip("-") or "step"
        path = self.folder / f"{len(self.taken) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        self.taken.append(path)
        return path


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Shots:
    """Where this test's screenshots go (emptied first, so they are this run's)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)
    folder = ARTIFACTS / name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    return Shots(folder)


# Every word (a run without space or hyphen, the places a line may break) of the text inside
# the elements `selector` finds, whose glyphs the browser laid out on more than one line.
_BROKEN_WORDS = """(selector) => {
  const broken = [];
  for (const element of document.querySelectorAll(selector)) {
    const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const word of node.data.matchAll(/[^\\s\\-\u2010\u2011]+/g)) {
        const range = document.createRange();
        range.setStart(node, word.index);
        range.setEnd(node, word.index + word[0].length);
        const boxes = [...range.getClientRects()].filter((box) => box.width > 0);
        const lines = new Set(boxes.map((box) => Math.round(box.top)));
        if (lines.size > 1) broken.push(word[0]);
      }
    }
  }
  return [...new Set(broken)];
}"""


def broken_words(page: Page, selector: str) -> list[str]:
    """The words inside `selector`'s elements that the browser split across lines."""
    found: list[str] = page.evaluate(_BROKEN_WORDS, selector)
    return found


def page_width(page: Page) -> int:
    """How wide the document is laid out: more than the viewport means it scrolls sideways."""
    width: int = page.evaluate("document.documentElement.scrollWidth")
    return width
