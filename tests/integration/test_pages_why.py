"""`/why/{token}`: who invited you, when they consented, what is held about you, and each
choice (not interested, stop this member, stop everyone, forget me) with its effect on the
store and the ledger, each idempotent; over real HTTP, on both engines, in both languages.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from dataclasses import replace
from datetime import timedelta

import httpx
from live_app import strict_eu_site
from page_reading import DONE, heading_of, title_of
from pages_site import (
    EVERY_PAGE,
    SENT_AT,
    Delivered,
    Site,
    deliver,
    invite_and_deliver,
    ledger_size,
    serve,
)
from sqlalchemy import select
from support import (
    T0,
    add_members,
    all_stored_text,
    by_email,
    invitation,
    ledger_events,
    messages_of,
    rows,
    send_invites,
)

from courtois.domain.contacts import ContactInput
from courtois.services.contacts import import_contacts
from courtois.services.context import Context
from courtois.services.members import register_member
from courtois.store.tables import invitations, recipient_blocks, recipients

BO = "bo@example.com"
ADDRESS = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
LATER = SENT_AT + timedelta(hours=3)


def _act(site: Site, token: str, action: str, **fields: str) -> str:
    """Post one choice; it answers 200 with every page header."""
    response = site.post(f"/why/{token}", data={"action": action, **fields})
    assert response.status_code == 200, response.text
    for name, value in EVERY_PAGE.items():
        assert response.headers[name] == value
    return response.text


def _recipient(ctx: Context) -> object:
    with ctx.engine.connect() as connection:
        return connection.execute(
            select(recipients).where(recipients.c.digest == ctx.digest_email(BO))
        ).one()


def test_the_page_says_who_when_and_what_is_held(ctx: Context) -> None:
    add_members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])
    with serve(ctx) as site:
        page = site.get(f"/why/{mail.tokens.why}")
    assert page.status_code == 200
    for name, value in EVERY_PAGE.items():
        assert page.headers[name] == value
    assert "Ana, a member of Agora, chose your address" in page.text
    assert "on March 2, 2026, 9:00\u202fAM UTC" in page.text  # T0, when Ana consented
    # The only address on the page is the recipient's own, while the invitation is open.
    assert set(ADDRESS.findall(page.text)) == {BO}
    assert "kept only while an invitation to you is open" in page.text
    for action in ("decline", "remind", "stop-member", "stop-everyone", "forget"):
        assert f'name="action" value="{action}"' in page.text
    assert 'id="forget"' in page.text  # the email's "erase your address" link lands here
    assert '<th><span class="visually-hidden">Action</span></th>' in page.text
    assert "<script" not in page.text.lower()
    style = page.text.split("<style>", 1)[1].split("</style>", 1)[0]
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_the_page_names_the_privacy_contact_when_one_is_set(ctx: Context) -> None:
    add_members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])
    with serve(ctx) as site:
        assert "Questions about your data" not in site.get(f"/why/{mail.tokens.why}").text
    named = Context(
        ctx.engine, replace(ctx.settings, privacy_contact="<dpo@agora.example>\nor by post")
    )
    with serve(named) as site:
        page = site.get(f"/why/{mail.tokens.why}").text
    assert "Questions about your data: &lt;dpo@agora.example&gt;, or by post" in page


def test_each_outcome_is_titled_by_its_own_heading(ctx: Context) -> None:
    """A tab or a screen reader tells the outcomes apart by the title alone, as the page's
    heading does: never one "Done" for all."""
    add_members(ctx)
    addresses = [f"r{number}@example.com" for number in range(5)]
    mails = {mail.outgoing.to: mail for mail in invite_and_deliver(ctx, "ana", addresses)}
    actions = [
        ("decline", {}),
        ("stop-member", {}),
        ("stop-everyone", {}),
        ("forget", {}),
        ("remind", {"date": str(SENT_AT.date() + timedelta(days=20))}),
    ]
    with serve(ctx) as site:
        site.clock.now = LATER
        pages = {
            action: _act(site, mails[address].tokens.why, action, **fields)
            for address, (action, fields) in zip(addresses, actions, strict=True)
        }
    titles = {action: title_of(page) for action, page in pages.items()}
    for action, page in pages.items():
        assert titles[action] == f"{heading_of(page)} – Agora", action
        assert DONE in page, action
    assert len(set(titles.values())) == len(titles), titles


def test_not_interested_declines_once(ctx: Context) -> None:
    """The email brought Ana's invitation: that is what "not interested" closes. Bruno's,
    past its undo window but waiting on Bo's quota (the page lists it as waiting), reached
    nobody: it is left to Bruno and the quota, and Bruno must not read a decline of an
    email that never left."""
    add_members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])
    (ana,) = mail.ids
    waiting = by_email(send_invites(ctx, "bruno", [BO], SENT_AT + timedelta(hours=1)))[BO]["id"]
    assert invitation(ctx, waiting).state == "scheduled"
    with serve(ctx) as site:
        site.clock.now = LATER
        offer = site.get(f"/why/{mail.tokens.why}").text
        assert "Not interested: we close this invitation. Ana will see that you declined." in offer
        done = _act(site, mail.tokens.why, "decline")
        assert "Invitation declined" in done
        assert "This invitation is closed. Ana will see that you declined." in done
        events, stored = ledger_size(ctx), all_stored_text(ctx)
        assert _act(site, mail.tokens.why, "decline") == done
        assert (ledger_size(ctx), all_stored_text(ctx)) == (events, stored)
        page = site.get(f"/why/{mail.tokens.why}").text
    row = invitation(ctx, ana)
    assert (row.state, row.answered_at, row.address) == ("declined", LATER, None)
    kept = invitation(ctx, waiting)
    assert (kept.state, kept.address) == ("scheduled", BO)
    moved = [p for e, p in ledger_events(ctx) if e == "invitation.state" and p["to"] == "declined"]
    assert [(p["invitation"], p["from"], p["reason"]) for p in moved] == [
        (ana, "sent", "the recipient is not interested")
    ]
    # Nothing of the email is open any more: no choice about it is offered.
    assert 'value="decline"' not in page
    assert 'value="remind"' not in page


def test_declining_the_only_open_invitation_speaks_of_one(ctx: Context) -> None:
    """A recipient whose one open invitation is the linked one: the answer speaks of that
    invitation, not of "the invitations you had", and a repeat says the same; in English
    and in French."""
    add_members(ctx)
    register_member(ctx, "lea", "lea@example.com", "Léa", "fr", T0)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])
    (french,) = invite_and_deliver(ctx, "lea", ["cy@example.org"])
    with serve(ctx) as site:
        site.clock.now = LATER
        done = _act(site, mail.tokens.why, "decline")
        assert "This invitation is closed. Ana will see that you declined.</p>" in done
        assert "invitations you had" not in done
        assert _act(site, mail.tokens.why, "decline") == done
        done = _act(site, french.tokens.why, "decline")
        assert '<html lang="fr">' in done
        assert "Cette invitation est close. Léa verra que vous avez décliné.</p>" in done
        assert "invitations que vous aviez" not in done
    assert invitation(ctx, mail.ids[0]).state == "declined"


def test_stop_one_member_of_a_digest(ctx: Context) -> None:
    add_members(ctx)
    send_invites(ctx, "ana", [BO], T0)
    bruno = by_email(send_invites(ctx, "bruno", [BO], T0))[BO]["id"]
    (mail,) = deliver(ctx)
    assert mail.outgoing.kind == "digest"
    assert len(mail.ids) == 2
    digest = ctx.digest_email(BO)
    with serve(ctx) as site:
        site.clock.now = LATER
        page = site.get(f"/why/{mail.tokens.why}").text
        assert "Ana" in page
        assert "Bruno" in page
        assert f'name="invitation" value="{bruno}"' in page
        done = _act(site, mail.tokens.why, "stop-member", invitation=bruno)
        assert "You will get no more emails from Bruno through Agora." in done
        events, stored = ledger_size(ctx), all_stored_text(ctx)
        assert _act(site, mail.tokens.why, "stop-member", invitation=bruno) == done
        assert (ledger_size(ctx), all_stored_text(ctx)) == (events, stored)
        stranger = site.post(
            f"/why/{mail.tokens.why}",
            data={"action": "stop-member", "invitation": str(uuid.uuid4())},
        )
        assert stranger.status_code == 400
        assert (ledger_size(ctx), all_stored_text(ctx)) == (events, stored)
    blocks = rows(ctx, recipient_blocks)
    assert [(b.recipient_digest, b.member_id, b.at) for b in blocks] == [(digest, "bruno", LATER)]
    assert _recipient(ctx).unsubscribed_at is None  # Ana may still write
    stopped = [p for e, p in ledger_events(ctx) if e == "recipient.unsubscribed"]
    assert stopped == [{"recipient": digest, "from": "bruno"}]


def test_stop_everyone(ctx: Context) -> None:
    add_members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])
    with serve(ctx) as site:
        site.clock.now = LATER
        done = _act(site, mail.tokens.why, "stop-everyone")
        assert "Agora will send you no more emails, from any member." in done
        events = ledger_size(ctx)
        assert _act(site, mail.tokens.why, "stop-everyone") == done
        assert ledger_size(ctx) == events
        page = site.get(f"/why/{mail.tokens.why}").text
    assert _recipient(ctx).unsubscribed_at == LATER
    stopped = [p for e, p in ledger_events(ctx) if e == "recipient.unsubscribed"]
    assert stopped == [{"recipient": ctx.digest_email(BO), "from": "everyone"}]
    assert "You stopped all emails from Agora on March 2, 2026." in page
    assert 'value="stop-everyone"' not in page
    assert ADDRESS.findall(page) == []  # an opt-out keeps only the digest


def test_forget_me_leaves_only_the_digest(ctx: Context) -> None:
    add_members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])
    import_contacts(ctx, "bruno", [ContactInput(BO, "Bo Berg")], "csv", SENT_AT)
    assert BO in all_stored_text(ctx)
    with serve(ctx) as site:
        site.clock.now = LATER
        before = site.get(f"/why/{mail.tokens.why}").text
        assert "in the contacts of 1 member" in before
        done = _act(site, mail.tokens.why, "forget")
        assert "Your address is forgotten" in done
        events, stored = ledger_size(ctx), all_stored_text(ctx)
        assert _act(site, mail.tokens.why, "forget") == done
        assert (ledger_size(ctx), all_stored_text(ctx)) == (events, stored)
        page = site.get(f"/why/{mail.tokens.why}").text
    assert BO not in all_stored_text(ctx)
    assert "bo berg" not in all_stored_text(ctx)
    recipient = _recipient(ctx)
    assert (recipient.forgotten_at, recipient.unsubscribed_at) == (LATER, LATER)
    assert [p for e, p in ledger_events(ctx) if e == "recipient.forgotten"] == [
        {"recipient": ctx.digest_email(BO)}
    ]
    assert ADDRESS.findall(page) == []
    assert ctx.digest_email(BO) in page
    assert "You asked us to forget your address on March 2, 2026." in page


def test_not_interested_after_stopping_everything_gives_no_advice(ctx: Context) -> None:
    """A stale tab or a second click after "forget me": the invitation is declined, and the
    answer does not suggest stopping everything, which is done."""
    add_members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])
    advice = "A member could still invite you later"
    with serve(ctx) as site:
        site.clock.now = LATER
        assert advice in _act(site, mail.tokens.why, "decline")
        _act(site, mail.tokens.why, "forget")
        again = _act(site, mail.tokens.why, "decline")
    assert "Invitation declined" in again
    assert advice not in again


def test_names_are_escaped(ctx: Context) -> None:
    register_member(ctx, "zoe", "zoe@example.com", '<b onclick="x">Zoé</b> & co', "en", T0)
    (mail,) = invite_and_deliver(ctx, "zoe", [BO])
    with serve(ctx) as site:
        page = site.get(f"/why/{mail.tokens.why}").text
    assert "&lt;b onclick=&#34;x&#34;&gt;Zoé&lt;/b&gt; &amp; co" in page
    assert "<b onclick" not in page


def test_french_from_the_invitation_then_the_browser(ctx: Context) -> None:
    register_member(ctx, "lea", "lea@example.com", "Léa", "fr", T0)
    add_members(ctx)
    (french,) = invite_and_deliver(ctx, "lea", [BO])
    (english,) = invite_and_deliver(ctx, "ana", ["cy@example.com"], now=T0 + timedelta(days=1))
    with serve(ctx) as site:
        # The invitation's language wins over the browser's.
        page = site.get(f"/why/{french.tokens.why}", headers={"Accept-Language": "en"})
        assert '<html lang="fr">' in page.text
        assert "Pourquoi vous avez reçu cet e-mail" in page.text
        assert "le 2 mars 2026" in page.text
        page = site.get(f"/why/{english.tokens.why}", headers={"Accept-Language": "fr"})
        assert '<html lang="en">' in page.text
        stop = site.get(f"/u/{french.tokens.unsubscribe}")
        assert "Arrêter les e-mails envoyés par Agora" in stop.text
        done = site.post(f"/why/{french.tokens.why}", data={"action": "stop-everyone"})
        assert "Agora ne vous enverra plus aucun e-mail" in done.text
        # Without an invitation (a bad link), the browser's language, else English.
        french_404 = site.get("/why/nope", headers={"Accept-Language": "de, fr-CA;q=0.8, en;q=0.5"})
        assert '<html lang="fr">' in french_404.text
        assert "Ce lien n'est pas valide" in french_404.text
        assert '<html lang="en">' in site.get("/why/nope", headers={"Accept-Language": "de"}).text
        assert '<html lang="en">' in site.get("/why/nope").text


def test_after_declining_the_page_does_not_deny_the_address_an_address_book_holds(
    ctx: Context,
) -> None:
    """Bruno imported Bo and keeps the contact: once Ana's invitation is declined no
    invitation holds Bo's address, but Bruno's address book still does; the page must not
    say that only a fingerprint is kept."""
    add_members(ctx)
    import_contacts(ctx, "bruno", [ContactInput(BO, "Bo")], "test", T0)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])
    with serve(ctx) as site:
        site.clock.now = LATER
        _act(site, mail.tokens.why, "decline")
        page = site.get(f"/why/{mail.tokens.why}").text
    assert "Not your email address" not in page
    assert "only in the address books members imported" in page
    assert "in the contacts of 1 member" in page


def test_once_its_member_is_stopped_the_page_offers_no_stop_for_them(ctx: Context) -> None:
    add_members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])
    with serve(ctx) as site:
        site.clock.now = LATER
        before = site.get(f"/why/{mail.tokens.why}").text
        _act(site, mail.tokens.why, "stop-member")
        after = site.get(f"/why/{mail.tokens.why}").text
    assert 'value="stop-member"' in before
    assert 'value="stop-member"' not in after
    assert 'value="stop-everyone"' in after  # everyone else may still be stopped


def test_a_digests_page_opens_with_every_member_it_carried(ctx: Context) -> None:
    """Why a digest came: each of its members chose the address, not only the first one."""
    add_members(ctx)
    register_member(ctx, "cy", "cy@example.org", "Cy", "en", T0)
    for member in ("ana", "bruno", "cy"):
        send_invites(ctx, member, [BO], T0)
    (mail,) = deliver(ctx)
    assert mail.outgoing.kind == "digest"
    with serve(ctx) as site:
        page = site.get(f"/why/{mail.tokens.why}").text
    assert (
        "Ana, Bruno and Cy, members of Agora, each chose your address from their own "
        "contacts and asked us to invite you." in page
    )
    assert "a member of Agora" not in page
    assert "Each of them consented to their own invitation" in page
    assert "They consented to this invitation" not in page


def _held_about_bo(ctx: Context) -> Delivered:
    """Ana and Bruno saved Bo in their contacts, each under their own name for Bo; Ana's
    invitation, with a note to Bo alone, reached Bo; Bruno's, with a note too, came an hour
    later, past its undo window, and waits for Bo's quota; Cy's, a few minutes before the
    page is read, is still Cy's to take back."""
    add_members(ctx)
    register_member(ctx, "cy", "cy@example.org", "Cy", "en", T0)
    import_contacts(ctx, "ana", [ContactInput(BO, 'Bo "<b>B</b>" & co')], "csv", T0)
    import_contacts(ctx, "bruno", [ContactInput(BO, "Bobby")], "csv", T0)
    send_invites(ctx, "ana", [BO], T0, note="Hi Bo, see you there!")
    (mail,) = deliver(ctx)
    send_invites(ctx, "bruno", [BO], SENT_AT + timedelta(hours=1), note="Come, Bo.")
    send_invites(ctx, "cy", [BO], LATER - timedelta(minutes=2), note="Cy's word to Bo.")
    deliver(ctx, LATER)  # Bo's quota holds Bruno's: nothing leaves
    assert invitation(ctx, mail.ids[0]).state == "sent"
    return mail


def test_the_page_shows_the_names_notes_and_queued_invitations_held(ctx: Context) -> None:
    """What is held about Bo, in full: the name each member saved Bo under (escaped), how
    many notes members wrote to Bo alone (not their words), and Bruno's invitation that
    waits for Bo's next email. Cy's, still in its undo window, is nobody's news yet."""
    mail = _held_about_bo(ctx)
    (bruno,) = [r.id for r in rows(ctx, invitations) if r.member_id == "bruno"]
    with serve(ctx) as site:
        site.clock.now = LATER
        page = site.get(f"/why/{mail.tokens.why}").text
        # Bo stops Bruno: his invitation will never come, and the page no longer says it will.
        _act(site, mail.tokens.why, "stop-member", invitation=bruno)
        stopped = site.get(f"/why/{mail.tokens.why}").text
    saved_as = "Bo &#34;&lt;b&gt;B&lt;/b&gt;&#34; &amp; co"
    assert f"Ana saved your address under the name “{saved_as}”" in page
    assert "<b>B</b>" not in page
    assert "Bruno saved your address under the name “Bobby”" in page
    assert "2 personal notes members wrote to you alone" in page
    # Their words stay in the emails they wrote.
    assert "Hi Bo" not in page
    assert "Come, Bo" not in page
    waiting = re.search(r"<tr>\s*<td[^>]*>Bruno</td>.*?</tr>", page, re.S)
    assert waiting is not None
    assert "waiting: will come in a later email" in waiting.group(0)
    assert re.search(r"\bCy\b", page) is None
    assert "waiting: will come in a later email" not in stopped
    assert invitation(ctx, bruno).state == "blocked"  # never sent: no longer listed
    assert re.search(r"<td[^>]*>Bruno</td>", stopped) is None


def test_under_strict_eu_a_queued_invitation_is_said_not_to_come(ctx: Context) -> None:
    """Under strict-eu the platform sends no email: Bruno's invitation, queued before the
    profile changed, is refused when its turn comes (`strict-eu-no-email`), so the page does
    not promise it; in English and in French."""
    mail = _held_about_bo(ctx)
    with strict_eu_site(ctx, LATER) as site, httpx.Client() as client:
        page = client.get(site.url(f"/why/{mail.tokens.why}")).text
    assert "waiting: will come in a later email" not in page
    waiting = re.search(r"<tr>\s*<td[^>]*>Bruno</td>.*?</tr>", page, re.S)
    assert waiting is not None
    assert "not sent: Agora sends no invitation emails, so it will not reach you" in (
        waiting.group(0)
    )
    assert "Bruno saved your address under the name “Bobby”" in page
    # Its turn comes: refused, as the page said.
    assert deliver(site.ctx, LATER + timedelta(days=15)) == []
    bruno = [r for r in rows(ctx, invitations) if r.member_id == "bruno"]
    assert [r.state for r in bruno] == ["blocked"]


def test_a_reminder_the_member_ticked_is_shown_with_its_day(ctx: Context) -> None:
    """Ana ticked the one reminder Bo was told about: the page says it is planned and when,
    in the page's language, and that Bo may pick another day instead."""
    add_members(ctx)
    register_member(ctx, "lea", "lea@example.com", "Léa", "fr", T0)
    (mail,) = invite_and_deliver(ctx, "ana", [BO], reminders=1)
    (french,) = invite_and_deliver(ctx, "lea", ["cy@example.org"], reminders=1)
    (plain,) = invite_and_deliver(ctx, "bruno", ["di@example.org"])
    (due,) = [m.scheduled_at for m in messages_of(ctx, mail.ids[0]) if m.kind == "reminder"]
    assert due.date() == (SENT_AT + timedelta(days=14)).date()
    with serve(ctx) as site:
        site.clock.now = LATER
        page = site.get(f"/why/{mail.tokens.why}").text
        in_french = site.get(f"/why/{french.tokens.why}").text
        without = site.get(f"/why/{plain.tokens.why}").text
    assert (
        "Ana asked us to remind you of this invitation once, on March 16, 2026, and "
        "never again. You can pick another day instead." in page
    )
    assert "le 16 mars 2026" in in_french
    assert "Léa nous a demandé de vous rappeler cette invitation une fois" in in_french
    assert "asked us to remind you" not in without
