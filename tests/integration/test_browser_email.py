"""In a real browser (Debian's Chromium), on a phone's width: the HTML of an email never
scrolls sideways, however long the words, links and names a member typed."""

from __future__ import annotations

from typing import Any

import pytest
from browser_support import (  # noqa: F401 - the fixtures this module uses
    Shots,
    browser,
    page,
    playwright_driver,
    shots,
)
from playwright.sync_api import Page

from courtois.delivery.render import Inviter, RenderContext, render
from courtois.domain.members import MAX_NAME_LENGTH
from courtois.domain.messages import MessageKind
from courtois.domain.preview import MAX_NOTE_LENGTH

PHONE = 360
LONG_WORD = "Bienvenue" * (MAX_NOTE_LENGTH // len("Bienvenue"))
LINK = "Look: https://example.org/join?token=" + "x7Kq9Zb" * 60
LONG_NAME = "Bartholomew" * (MAX_NAME_LENGTH // len("Bartholomew"))


@pytest.fixture
def browser_context_args() -> dict[str, Any]:
    """A phone's viewport."""
    return {"locale": "en-US", "viewport": {"width": PHONE, "height": 800}}


def _context(*inviters: Inviter) -> RenderContext:
    return RenderContext(
        platform="Agora",
        base_url="https://agora.test",
        inviters=inviters,
        postal_address="1 rue de la Paix\n75002 Paris",
    )


CASES = {
    "long-word-in-the-note": (MessageKind.INVITATION, (Inviter("Ana Lima", LONG_WORD),)),
    "link-in-the-note": (MessageKind.INVITATION, (Inviter("Ana Lima", LINK),)),
    "one-word-name": (MessageKind.INVITATION, (Inviter(LONG_NAME, "Hi"),)),
    "digest-of-them-all": (
        MessageKind.DIGEST,
        (Inviter("Ana Lima", LONG_WORD), Inviter(LONG_NAME, LINK), Inviter("Bo", "")),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("locale", ["en", "fr"])
def test_the_email_does_not_scroll_sideways_on_a_phone(
    page: Page,  # noqa: F811 - the fixture imported above, as pytest hands it over
    shots: Shots,  # noqa: F811 - same
    case: str,
    locale: str,
) -> None:
    kind, inviters = CASES[case]
    html = render(kind, locale, _context(*inviters)).html
    page.set_content(html)
    shots(page, case)
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.body.scrollWidth]"
    )
    assert max(widths) <= PHONE, widths
    # Nothing was cut off instead: the long note is all there, on several lines.
    note = inviters[0].note
    if len(note) > 100:
        quote = page.locator("blockquote").first
        assert quote.inner_text().replace("\n", "") == note
        box = quote.bounding_box()
        assert box is not None
        assert box["height"] > 10 * 24  # lines of 24 px
