"""Accessibility (WCAG 2.1 AA) of the served pages, the parts an audit with axe-core found
wanting, checked without axe: a field the server refused points to the message that says
why (a screen reader reads it with the field), a box that scrolls sideways on a phone takes
the keyboard's focus (else a keyboard user cannot scroll it), the demo's content sits in
landmarks, and the focused control shows a ring that stands out, dark nav bar included."""

from __future__ import annotations

from datetime import timedelta
from html.parser import HTMLParser

import httpx
import pytest
from admin_support import API_KEY, admin_settings, csrf_of, make_history, moment
from browser_support import (  # noqa: F401 - the fixtures this module uses
    LiveSite,
    browser,
    browser_context_args,
    live,
    page,
    playwright_driver,
    sqlite_only,
)
from member_pages_support import (
    MemberBrowser,
    add_member,
    consent_form,
    contact_ids,
    import_some,
    member_session,
    sign_in_link,
)
from playwright.sync_api import Browser, Page
from test_browser_narrow import demo_served

from courtois.config import Settings
from courtois.services.context import Context

pytestmark = sqlite_only

PHONE = 360


@pytest.fixture
def settings() -> Settings:
    """This module's settings: with an API key, so the admin pages are on."""
    return admin_settings()


class _Tags(HTMLParser):
    """Every element's attributes by id, and the text of each paragraph that has an id."""

    def __init__(self) -> None:
        super().__init__()
        self.by_id: dict[str, dict[str, str | None]] = {}
        self.text: dict[str, str] = {}
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {"tag": tag, **dict(attrs)}
        if found.get("id"):
            self.by_id[str(found["id"])] = found
            if tag == "p":
                self._open = str(found["id"])
                self.text[self._open] = ""

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self.text[self._open] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "p":
            self._open = None


def error_of(html: str, field_id: str) -> str:
    """What the page says is wrong with the field: the text of the alert its
    `aria-describedby` names, the field marked invalid."""
    tags = _Tags()
    tags.feed(html)
    field = tags.by_id[field_id]
    assert field.get("aria-invalid") == "true", field
    described = str(field.get("aria-describedby") or "")
    assert described, f"#{field_id} points to no message"
    for name in described.split():
        assert tags.by_id[name].get("role") == "alert", tags.by_id[name]
    return " ".join(" ".join(tags.text[name].split()) for name in described.split())


def is_sound(html: str, field_id: str) -> bool:
    """Whether the field is left unmarked (nothing is said to be wrong with it)."""
    tags = _Tags()
    tags.feed(html)
    field = tags.by_id[field_id]
    return "aria-invalid" not in field and "aria-describedby" not in field


def test_a_field_the_server_refused_points_to_the_message_that_says_why(
    ctx: Context,
    live: LiveSite,  # noqa: F811 - the fixture imported above, as pytest hands it over
) -> None:
    add_member(ctx)
    import_some(ctx, "ana", 2)
    with member_session(live) as ana:
        no_file = ana.http.post("/member/import/file", data={"csrf": ana.csrf()}, files={})
        nothing = ana.post("/member/import/paste", {"addresses": " "})
        _choose_one(ana)
        too_long = ana.post("/member/invite/preview", {"note": "x" * 1001, "locale": "en"})
        preview = ana.post("/member/invite/preview", {"note": "", "locale": "en"})
        unticked = {k: v for k, v in consent_form(preview.text).items() if k != "consent"}
        not_agreed = ana.post("/member/invite/send", unticked)
        refusal = ana.post("/member/contacts/delete", {})  # the box left unticked
        not_deleted = ana.get(refusal.headers["location"])
    with httpx.Client(base_url=live.base_url, timeout=30) as admin:
        form = admin.get("/admin/sign-in")
        wrong = admin.post("/admin/sign-in", data={"csrf": csrf_of(form), "key": "nope"})

    assert error_of(no_file.text, "file") == "Error: Nothing was imported: choose a file first."
    assert is_sound(no_file.text, "addresses")
    assert error_of(nothing.text, "addresses").endswith("paste at least one address.")
    assert is_sound(nothing.text, "file")
    assert error_of(too_long.text, "note").startswith("Error: The note is too long")
    assert is_sound(too_long.text, "locale")
    assert error_of(not_agreed.text, "consent").endswith(
        "tick the box to agree, or leave this page."
    )
    assert is_sound(preview.text, "note")
    assert is_sound(preview.text, "consent")
    assert "tick the box to confirm" in error_of(not_deleted.text, "confirm-delete")
    assert error_of(wrong.text, "key") == "That is not the API key. You are not signed in."
    assert is_sound(form.text, "key")


def _choose_one(member: MemberBrowser) -> None:
    ids = contact_ids(member.ctx, member.member_id)
    member.post("/member/contacts", {"action": "save", "shown": ids, "chosen": ids[:1]})


# Each box that scrolls sideways (its content wider than itself): whether the keyboard can
# reach it, being focusable itself or holding something that is.
SCROLLERS = """() => {
  const focusable = "a[href], button, input, select, textarea, [tabindex]:not([tabindex='-1'])";
  return [...document.querySelectorAll("body *")]
    .filter((box) => ["auto", "scroll"].includes(getComputedStyle(box).overflowX)
      && box.scrollWidth > box.clientWidth)
    .map((box) => ({
      box: box.outerHTML.slice(0, 80),
      reachable: box.tabIndex >= 0 || box.querySelector(focusable) !== null,
    }));
}"""
# The children of <body> outside any landmark (banner, main, navigation, contentinfo).
OUTSIDE_LANDMARKS = """() => [...document.body.children]
  .filter((child) => !["HEADER", "MAIN", "NAV", "FOOTER"].includes(child.tagName))
  .map((child) => child.outerHTML.slice(0, 80))"""


def _unreachable(tab: Page) -> list[str]:
    """The boxes that scroll sideways and that the keyboard cannot reach (asserting some
    scroll at all, or the check would prove nothing)."""
    found = tab.evaluate(SCROLLERS)
    assert found, "nothing scrolls sideways here"
    return [item["box"] for item in found if not item["reachable"]]


def test_on_a_phone_a_keyboard_reaches_every_box_that_scrolls_sideways(
    ctx: Context,
    live: LiveSite,  # noqa: F811 - the fixture imported above, as pytest hands it over
    browser: Browser,  # noqa: F811 - same
) -> None:
    """The admin's lookup of a recipient: its wide tables of invitations, emails and rule
    verdicts scroll inside themselves at 360 px; each takes the focus, named by its heading."""
    history = make_history(ctx)
    live.clock.now = moment(history.first_day + timedelta(days=4))
    context = browser.new_context(viewport={"width": PHONE, "height": 800})
    try:
        tab = context.new_page()
        tab.goto(live.url("/admin/sign-in"))
        tab.get_by_label("The platform's API key").fill(API_KEY)
        tab.get_by_role("button", name="Sign in").click()
        tab.wait_for_url(live.url("/admin"))
        tab.goto(live.url("/admin/lookup"))
        tab.get_by_label("Email address").fill(history.people["a1"])
        tab.get_by_role("button", name="Look up").click()
        assert _unreachable(tab) == []
        assert tab.get_by_role("table", name="2 invitations").count() == 1
    finally:
        context.close()


def test_the_demo_pages_keep_to_landmarks_and_their_scrolling_boxes_take_the_focus(
    ctx: Context,
    browser: Browser,  # noqa: F811 - the fixture imported above, as pytest hands it over
) -> None:
    with demo_served(ctx) as base:
        context = browser.new_context(viewport={"width": PHONE, "height": 800})
        try:
            tab = context.new_page()
            for path in ("/demo", "/outbox", "/outbox/1"):
                tab.goto(base + path)
                assert tab.locator("main").count() == 1, path
                assert tab.evaluate(OUTSIDE_LANDMARKS) == [], path
                assert _unreachable(tab) == [], path
        finally:
            context.close()


# The ring drawn around the focused element, as the browser computes it.
RING = """() => {
  const style = getComputedStyle(document.activeElement);
  return [style.outlineStyle, style.outlineWidth, style.outlineColor];
}"""
BLUE = "rgb(31, 95, 191)"
WHITE = "rgb(255, 255, 255)"


def _tab_to(tab: Page, text: str) -> list[str]:
    """Press Tab until the element whose text (or id) is `text` has the focus; its ring."""
    for _ in range(20):
        tab.keyboard.press("Tab")
        here = tab.evaluate("document.activeElement.id || document.activeElement.textContent")
        if here.strip() == text:
            ring: list[str] = tab.evaluate(RING)
            return ring
    raise AssertionError(f"Tab never reached {text!r}")


def test_the_focused_control_shows_a_ring_that_stands_out(
    live: LiveSite,  # noqa: F811 - the fixture imported above, as pytest hands it over
    page: Page,  # noqa: F811 - same
) -> None:
    """A solid 3 px ring in the pages' blue (not the browser's thin default), white on the
    admin's dark nav bar, where blue would hardly show."""
    add_member(live.ctx)
    page.goto(live.url(sign_in_link(live, "ana")))
    page.get_by_role("button", name="Continue as Ana Lima").click()
    page.wait_for_url(live.url("/member/"))
    assert _tab_to(page, "Import contacts") == ["solid", "3px", BLUE]

    page.goto(live.url("/admin/sign-in"))
    assert _tab_to(page, "key") == ["solid", "3px", BLUE]
    page.keyboard.type(API_KEY)
    page.keyboard.press("Enter")
    page.wait_for_url(live.url("/admin"))
    assert _tab_to(page, "Recipient lookup") == ["solid", "3px", WHITE]
