"""On the narrowest phone screens (320 CSS pixels), in Debian's Chromium: no word in a table
or on a button is cut between letters, a table too wide scrolls inside itself, and nothing
makes the page scroll sideways; the same for the demo's own pages at 320 and 640 pixels,
whose tables say what each row and column is."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

from api_support import served
from browser_support import (  # noqa: F401 - the fixtures this module uses
    LiveSite,
    Shots,
    broken_words,
    browser,
    browser_context_args,
    live,
    page,
    page_width,
    playwright_driver,
    shots,
    sqlite_only,
)
from member_pages_support import add_member, sign_in_link
from pages_site import SENT_AT, deliver
from playwright.sync_api import Browser, Page
from support import T0, send_invites

from courtois.demo.capture import CaptureStore
from courtois.demo.home import DemoInfo, demo_router
from courtois.demo.seed import seed
from courtois.services.context import Context
from courtois.services.members import register_member
from courtois.web.app import create_app
from courtois.web.outbox import OutboxControls, outbox_router

pytestmark = sqlite_only

PHONE = 320
LONG_ADDRESS = "a.very.long.address.of.someone@subdomain.of.a-long-example-domain.org"
# Whether the element's content is wider than its box: it scrolls inside itself.
SCROLLS = "(element) => element.scrollWidth > element.clientWidth"


def test_at_320_px_words_stay_whole_and_a_wide_table_scrolls(
    live: LiveSite,  # noqa: F811 - the fixture imported above, as pytest hands it over
    browser: Browser,  # noqa: F811 - same
    shots: Shots,  # noqa: F811 - same
) -> None:
    """French, whose words are long ("Consentement", "Retirer"): the member's invitations,
    with a take-back button and a long address, and the recipient's page of a digest of two
    members' invitations, each with its stop button."""
    ctx = live.ctx
    add_member(ctx, locale="fr")
    register_member(ctx, "bruno", "bruno@members.example", "Bruno Marchetti", "fr", T0)
    send_invites(ctx, "bruno", [LONG_ADDRESS], T0)
    send_invites(ctx, "ana", [LONG_ADDRESS], T0)
    (digest,) = (mail for mail in deliver(ctx, SENT_AT) if mail.outgoing.kind == "digest")
    send_invites(ctx, "ana", ["bo@example.com"], SENT_AT + timedelta(hours=1))
    live.clock.now = SENT_AT + timedelta(hours=1, minutes=2)
    context = browser.new_context(viewport={"width": PHONE, "height": 640}, locale="fr-FR")
    try:
        tab = context.new_page()
        tab.goto(live.url(sign_in_link(live, "ana")))
        tab.locator('form[action^="/member/sign-in/"] button').click()
        tab.wait_for_url(live.url("/member/"))
        withdraw = tab.get_by_role("button", name="Retirer l'invitation à bo@example.com")
        assert withdraw.inner_text() == "Retirer"
        _fits(tab, shots, "invitations")
        invitations = tab.locator("table").first
        assert invitations.evaluate(SCROLLS)  # the long address: the table scrolls instead
        assert tab.get_by_role("columnheader", name="Action").count() == 2

        tab.goto(live.url(f"/why/{digest.tokens.why}"))
        assert tab.locator("td button").count() == 2  # stop Bruno, stop Ana
        _fits(tab, shots, "why")
        assert tab.get_by_role("columnheader", name="Consentement").count() == 1
        assert tab.get_by_role("columnheader", name="Action").count() == 1
    finally:
        context.close()


def _fits(tab: Page, shots: Shots, step: str) -> None:  # noqa: F811 - not the fixture
    """The page is no wider than the screen, and no word of a table or button is cut."""
    shots(tab, step)
    assert page_width(tab) <= PHONE
    assert broken_words(tab, "td, th, button") == []


def captured_invitation(base: str) -> bytes:
    """An email as the worker hands it over: long headers, a long signed link."""
    token = "eyJpIjoiMDE5NWUzYjQtN2Q0Zi03YzQxLWE1ZjYtOGJkN2QxYjFlNmQ5IiwicyI6InUifQ." + "x" * 43
    message = EmailMessage()
    message["From"] = '"Ana Lima via Agora" <invitations@agora.example.org>'
    message["To"] = LONG_ADDRESS
    message["Subject"] = "Ana Lima invites you to join Agora"
    message["List-Unsubscribe"] = f"<{base}/u/{token}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["DKIM-Signature"] = (
        "v=1; a=rsa-sha256; c=relaxed/relaxed; d=agora.example.org; s=demo; "
        "h=from:to:subject:list-unsubscribe; bh=" + "b" * 44 + "; b=" + "s" * 344
    )
    message.set_content(f"Hello,\n\nAccept the invitation:\n{base}/join/{token}\n")
    message.add_alternative(f'<p><a href="{base}/join/{token}">Accept</a></p>', subtype="html")
    return message.as_bytes()


@contextmanager
def demo_served(ctx: Context) -> Iterator[str]:
    """The demo's pages (`/demo`, `/outbox`, `/outbox/1`) on a seeded database, served, with
    one captured email of long headers and links in the outbox; their base URL."""
    seed(ctx, T0)
    store = CaptureStore()
    app = create_app(ctx)
    app.include_router(outbox_router(store, OutboxControls(send_now=lambda: "sent 0")))
    info = DemoInfo(
        ctx=ctx,
        config_file=Path("/home/someone/courtois-data/demo/courtois.toml"),
        smtp_url="smtp://127.0.0.1:40125",
        dkim_record_name="demo._domainkey.agora.example.org",
        dkim_record_value="v=DKIM1; k=rsa; p=" + "M" * 392,
        worker_interval=5.0,
    )
    app.include_router(demo_router(info, redirect_root=False))
    with served(app) as base:
        store.add("invitations@agora.example.org", (LONG_ADDRESS,), captured_invitation(base))
        yield base


# Every table has header cells; one without a header row has one in each of its rows.
TABLES_WITHOUT_HEADERS = """() => [...document.querySelectorAll("table")]
  .filter((table) => table.tHead
    ? table.tHead.querySelectorAll("th").length === 0
    : [...table.rows].some((row) => !row.querySelector("th")))
  .map((table) => table.rows[0].textContent.trim())"""


def test_the_demo_pages_fit_a_phone_and_a_small_tablet(
    ctx: Context,
    browser: Browser,  # noqa: F811 - the fixture imported above, as pytest hands it over
    shots: Shots,  # noqa: F811 - same
) -> None:
    with demo_served(ctx) as base:
        for width in (PHONE, 640):
            context = browser.new_context(viewport={"width": width, "height": 800})
            try:
                tab = context.new_page()
                for path in ("/demo", "/outbox", "/outbox/1"):
                    tab.goto(base + path)
                    shots(tab, f"{path} at {width}")
                    assert page_width(tab) <= width, (path, width)
                    assert tab.evaluate(TABLES_WITHOUT_HEADERS) == [], (path, width)
                    assert tab.locator("table").count() >= 1
                assert tab.locator("pre").last.evaluate(SCROLLS)  # the raw source, unfolded
            finally:
                context.close()
