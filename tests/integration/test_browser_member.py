"""In a real browser (Debian's Chromium), without a line of JavaScript on the pages: a member
signs in with the platform's link, imports an address book, chooses one contact, previews
the exact email (its own styles applied inside the sandboxed frame), consents, and withdraws
the invitation within the undo window. A screenshot at each step."""

from __future__ import annotations

from datetime import timedelta

from browser_support import (  # noqa: F401 - the fixtures this module uses
    LiveSite,
    Shots,
    browser,
    browser_context_args,
    live,
    page,
    playwright_driver,
    shots,
    sqlite_only,
)
from member_pages_support import add_member, sign_in_link
from pages_site import SENT_AT, invite_and_deliver
from playwright.sync_api import Browser, ConsoleMessage, Page, expect
from support import T0, rows, send_invites

from courtois.services.members import register_member
from courtois.store.tables import consents, contacts, invitations

pytestmark = sqlite_only

VCARDS = (
    b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Bo Berg\r\nEMAIL:bo@example.com\r\nEND:VCARD\r\n"
    b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Cy Chen\r\nEMAIL:cy@example.com\r\nEND:VCARD\r\n"
    b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:No Mail\r\nTEL:+33 1 23 45 67 89\r\nEND:VCARD\r\n"
)


def test_a_member_imports_chooses_previews_consents_and_withdraws(
    live: LiveSite,  # noqa: F811 - the fixture imported above, as pytest hands it over
    page: Page,  # noqa: F811 - same
    shots: Shots,  # noqa: F811 - same
) -> None:
    ctx = live.ctx
    add_member(ctx)
    problems: list[str] = []
    page.on("console", lambda message: _note(problems, message))

    page.goto(live.url(sign_in_link(live, "ana")))
    # The link only asks; the button, posted from this origin, signs in.
    expect(page.get_by_role("heading", name="Continue as Ana Lima?")).to_be_visible()
    shots(page, "continue as")
    page.get_by_role("button", name="Continue as Ana Lima").click()
    expect(page.get_by_role("heading", name="My invitations")).to_be_visible()
    shots(page, "signed in")

    page.get_by_role("link", name="Import contacts").first.click()
    page.set_input_files(
        "#file", files=[{"name": "book.vcf", "mimeType": "text/vcard", "buffer": VCARDS}]
    )
    page.get_by_role("button", name="Import the file").click()
    expect(page.get_by_text("2 contacts imported.")).to_be_visible()
    expect(page.get_by_role("cell", name="card 3")).to_be_visible()
    shots(page, "import report")

    page.get_by_role("link", name="Choose whom to invite").click()
    boxes = page.locator('input[name="chosen"]')
    expect(boxes).to_have_count(2)
    for index in range(2):
        expect(boxes.nth(index)).not_to_be_checked()
    page.get_by_label("Bo Berg").check()
    page.get_by_role("button", name="Save my choice").click()
    expect(page.get_by_text("Your choice is saved.")).to_be_visible()
    expect(page.get_by_label("Bo Berg")).to_be_checked()
    expect(page.get_by_label("Cy Chen")).not_to_be_checked()
    shots(page, "one contact chosen")

    page.get_by_role("link", name="Write and preview the invitation").click()
    reminder = page.locator('input[name="reminders"]')
    expect(reminder).not_to_be_checked()
    page.get_by_label("A note in your own words").fill("See you at the club!")
    page.get_by_role("button", name="Preview the email").click()
    expect(
        page.get_by_role("heading", name="The email, exactly as it will be sent")
    ).to_be_visible()
    email = page.frame_locator("iframe").first
    accept = email.get_by_role("link", name="Accept Ana Lima's invitation")
    expect(accept).to_be_visible()
    expect(email.get_by_text("See you at the club!")).to_be_visible()
    # The email's own inline styles apply inside the frame (allowed by hash, nothing else).
    expect(accept).to_have_css("background-color", "rgb(31, 95, 191)")
    shots(page, "preview")
    page.locator("iframe").first.scroll_into_view_if_needed()
    shots(page, "preview of the html email", full_page=False)
    # Scrolled by hand first: Playwright's own scroll from the frame leaves the click landing
    # where the box was (a headless Chromium quirk with out-of-process frames).
    consent = page.get_by_label("I ask Agora to send this invitation")
    consent.scroll_into_view_if_needed()

    consent.check()
    page.get_by_role("button", name="Agree and send").click()
    expect(page.get_by_role("heading", name="Invitations recorded")).to_be_visible()
    shots(page, "consented")
    (consent,) = rows(ctx, consents)
    assert consent.user_agent == page.evaluate("navigator.userAgent")
    assert consent.text_shown.startswith("I ask Agora to send this invitation")

    page.get_by_role("link", name="My invitations").first.click()
    expect(page.get_by_text("10 minutes left to undo")).to_be_visible()
    shots(page, "undo countdown")
    page.get_by_role("button", name="Withdraw").click()
    expect(page.get_by_text("The invitation is withdrawn")).to_be_visible()
    shots(page, "withdrawn")

    assert [r.state for r in rows(ctx, invitations)] == ["withdrawn"]
    assert not any(r.selected for r in rows(ctx, contacts))
    assert problems == []
    assert len(shots.taken) == 9


def _note(problems: list[str], message: ConsoleMessage) -> None:
    """Any error the browser reports (a blocked style or frame would show here)."""
    if message.type in ("error", "warning"):
        problems.append(message.text)


def test_the_pages_fit_a_phone_screen(
    live: LiveSite,  # noqa: F811 - the fixture imported above, as pytest hands it over
    browser: Browser,  # noqa: F811 - same
) -> None:
    """At 360 CSS pixels wide the page does not scroll sideways: a table holding a long
    address scrolls inside itself, the paste box and the email's text keep to the page."""
    ctx = live.ctx
    add_member(ctx)
    register_member(ctx, "bruno", "bruno@members.example", "Bruno", "en", T0)
    long_one = "a.very.long.address.of.someone@subdomain.of.a-long-example-domain.org"
    (mail,) = invite_and_deliver(ctx, "bruno", [long_one])
    send_invites(ctx, "ana", [long_one, "bo@example.com"], SENT_AT + timedelta(hours=1))
    live.clock.now = SENT_AT + timedelta(hours=1, minutes=2)
    context = browser.new_context(viewport={"width": 360, "height": 740})
    try:
        page = context.new_page()
        page.goto(live.url(sign_in_link(live, "ana")))
        page.get_by_role("button", name="Continue as Ana Lima").click()
        widths = {}
        for path in ("/member/", "/member/import", f"/why/{mail.tokens.why}"):
            page.goto(live.url(path))
            widths[path] = page.evaluate("document.documentElement.scrollWidth")
    finally:
        context.close()
    assert all(width <= 360 for width in widths.values()), widths
