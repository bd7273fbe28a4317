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
from playwright.sync_api import Page, expect
from sqlalchemy import select
from support import T0, add_members, send_invites

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
