"""In a real browser: a recipient opens "Why you got this" from the link in the email that
reached them, and stops every email from the platform with one button, no account, no
cookie, no JavaScript. A screenshot at each step."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import timedelta
from email.message import EmailMessage

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
from pages_site import deliver
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select
from support import T0, add_members, send_invites

from courtois.domain.contacts import ContactInput
from courtois.services.contacts import import_contacts
from courtois.services.members import register_member
from courtois.store.tables import recipients

pytestmark = sqlite_only

BO = "bo@example.com"


def _why_link(raw: bytes, base_url: str) -> str:
    """The "why you got this" link as the recipient reads it in the email's text."""
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    body = parsed.get_body(("plain",))
    assert body is not None
    found = re.findall(re.escape(base_url) + r"/why/\S+", body.get_content())
    assert found, "no /why link in the email"
    return str(found[0])


def test_a_recipient_opens_why_from_the_email_and_stops_everyone(
    live: LiveSite,  # noqa: F811 - the fixture imported above, as pytest hands it over
    page: Page,  # noqa: F811 - same
    shots: Shots,  # noqa: F811 - same
) -> None:
    ctx = live.ctx
    add_members(ctx)
    send_invites(ctx, "ana", [BO], T0)
    (mail,) = deliver(ctx, T0 + timedelta(minutes=10))
    assert page.context.cookies() == []

    page.goto(_why_link(mail.outgoing.raw, live.base_url))
    expect(page.get_by_role("heading", name="Why you got this email")).to_be_visible()
    expect(page.get_by_text("Ana, a member of Agora, chose your address")).to_be_visible()
    shots(page, "why")

    page.get_by_role("button", name="Stop all emails").click()
    expect(page.get_by_role("heading", name="You are unsubscribed")).to_be_visible()
    shots(page, "stopped everyone")

    with ctx.engine.connect() as connection:
        stopped = connection.execute(
            select(recipients.c.unsubscribed_at).where(recipients.c.digest == ctx.digest_email(BO))
        ).scalar_one()
    assert stopped is not None
    assert page.context.cookies() == []
    # Bruno cannot reach them either: nothing more leaves for this address.
    send_invites(ctx, "bruno", [BO], T0 + timedelta(hours=1))
    assert deliver(ctx, T0 + timedelta(hours=2)) == []


NARROW_PHONE = 360
# Whether anything on the page scrolls sideways: the page itself, or a table inside it.
SIDEWAYS = """() => [document.documentElement, ...document.querySelectorAll("table")]
  .filter((element) => element.scrollWidth > element.clientWidth)
  .map((element) => element.tagName)"""


def test_at_360_px_the_why_page_needs_no_sideways_scroll(
    live: LiveSite,  # noqa: F811 - the fixture imported above, as pytest hands it over
    browser: Browser,  # noqa: F811 - same
    shots: Shots,  # noqa: F811 - same
) -> None:
    """A French recipient on a 360-pixel phone reads the page of a digest of two members'
    invitations, a third member's waiting and the names they saved the address under: the
    table of who invited them stacks each row, each cell on its own line after its column's
    name, so that neither the page nor the table scrolls sideways."""
    ctx = live.ctx
    register_member(ctx, "lea", "lea@members.example", "Léa Marchetti-Delacroix", "fr", T0)
    register_member(ctx, "bruno", "bruno@members.example", "Bruno Castellamare", "fr", T0)
    register_member(ctx, "cy", "cy@members.example", "Cyrille Vandenberghe", "fr", T0)
    import_contacts(ctx, "lea", [ContactInput(BO, "Bo Berg (voisin du troisième)")], "csv", T0)
    send_invites(ctx, "lea", [BO], T0, reminders=1)
    send_invites(ctx, "bruno", [BO], T0)
    (digest,) = deliver(ctx, T0 + timedelta(minutes=10))
    send_invites(ctx, "cy", [BO], T0 + timedelta(hours=1))
    live.clock.now = T0 + timedelta(hours=2)
    context = browser.new_context(viewport={"width": NARROW_PHONE, "height": 740}, locale="fr-FR")
    try:
        tab = context.new_page()
        tab.goto(_why_link(digest.outgoing.raw, live.base_url))
        expect(tab.get_by_text("en attente\u00a0: viendra dans un prochain e-mail")).to_be_visible()
        ticked = "Léa Marchetti-Delacroix nous a demandé de vous rappeler son invitation une fois"
        expect(tab.get_by_text(ticked)).to_contain_text("le 16 mars 2026")
        shots(tab, "why at 360")
        assert tab.evaluate(SIDEWAYS) == []
        width = tab.evaluate("document.documentElement.clientWidth")
        assert tab.evaluate("document.documentElement.scrollWidth") <= width
        # Each cell says which column it is: its label shows before it.
        consented = tab.locator('td[data-label="Consentement"]').first
        label = consented.evaluate("(cell) => getComputedStyle(cell, '::before').content")
        assert label == '"Consentement"'
        assert tab.get_by_role("button", name="Bloquer Cyrille Vandenberghe").count()
    finally:
        context.close()
