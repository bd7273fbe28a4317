"""`/u/{token}`: RFC 8058 one-click unsubscribe over a real socket, on both engines.

The POST is sent byte for byte as mailbox providers send it (form-encoded, and multipart,
which RFC 8058 also allows); it stops everything at once, answers 200 without a redirect
or a cookie, and a repeat changes nothing. A GET, as link scanners do, changes nothing.
"""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta

from pages_site import (
    EVERY_PAGE,
    SENT_AT,
    deliver,
    invite_and_deliver,
    ledger_size,
    serve,
)
from sqlalchemy import select
from support import T0, add_members, all_stored_text, by_email, invitation, rows, send_invites

from courtois.services.context import Context
from courtois.services.members import register_member
from courtois.store.tables import messages, recipient_blocks, recipients

BO = "bo@example.com"
ONE_CLICK = b"List-Unsubscribe=One-Click"


def _unsubscribed_at(ctx: Context, address: str) -> object:
    with ctx.engine.connect() as connection:
        return connection.execute(
            select(recipients.c.unsubscribed_at).where(
                recipients.c.digest == ctx.digest_email(address)
            )
        ).scalar_one_or_none()


def test_one_click_post_as_a_mailbox_provider_sends_it_stops_everything(ctx: Context) -> None:
    add_members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])
    # Bruno's invitation waits for the inbox's quota: it would leave 14 days later.
    bruno = by_email(send_invites(ctx, "bruno", [BO], SENT_AT + timedelta(hours=1)))[BO]["id"]
    assert rows(ctx, messages, messages.c.invitation_id == bruno)[0].state == "scheduled"
    # The header the email carried is what the provider posts to.
    parsed = email.message_from_bytes(mail.outgoing.raw, policy=email.policy.default)
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https = str(parsed["List-Unsubscribe"]).split("<", 1)[1].split(">", 1)[0]
    path = https.removeprefix(ctx.settings.base_url)
    assert path == f"/u/{mail.tokens.unsubscribe}"

    with serve(ctx) as site:
        site.clock.now = SENT_AT + timedelta(hours=2)
        response = site.post(
            path,
            content=ONE_CLICK,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 200
        assert "location" not in response.headers
        assert "set-cookie" not in response.headers
        for name, value in EVERY_PAGE.items():
            assert response.headers[name] == value
        assert _unsubscribed_at(ctx, BO) == SENT_AT + timedelta(hours=2)
        assert invitation(ctx, bruno).state == "blocked"
        assert rows(ctx, messages, messages.c.invitation_id == bruno)[0].state == "cancelled"
        events = ledger_size(ctx)
        stored = all_stored_text(ctx)

        again = site.post(
            path, content=ONE_CLICK, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert (again.status_code, again.text) == (200, response.text)
        assert (ledger_size(ctx), all_stored_text(ctx)) == (events, stored)

    # Nothing leaves afterwards, and a new member's invitation is refused at once.
    assert deliver(ctx, SENT_AT + timedelta(days=30)) == []
    register_member(ctx, "cy", "cy@example.org", "Cy", "en", SENT_AT)
    late = by_email(send_invites(ctx, "cy", [BO], SENT_AT + timedelta(days=40)))[BO]
    assert late["status"] == "blocked"


def test_multipart_one_click_works_too(ctx: Context) -> None:
    add_members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])
    with serve(ctx) as site:
        response = site.post(
            f"/u/{mail.tokens.unsubscribe}", files={"List-Unsubscribe": (None, "One-Click")}
        )
        assert response.request.headers["content-type"].startswith("multipart/form-data")
    assert response.status_code == 200
    assert _unsubscribed_at(ctx, BO) == SENT_AT


def test_the_page_button_posts_the_same_thing(ctx: Context) -> None:
    add_members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])
    with serve(ctx) as site:
        page = site.get(f"/u/{mail.tokens.unsubscribe}")
        assert page.status_code == 200
        assert '<form method="post" action="">' in page.text
        assert '<input type="hidden" name="List-Unsubscribe" value="One-Click">' in page.text
        assert "<script" not in page.text.lower()
        assert _unsubscribed_at(ctx, BO) is None


def test_the_page_also_stops_only_the_emails_own_member(ctx: Context) -> None:
    """The email offers to stop its member's invitations or the platform's altogether: the
    page does both. Stopping Ana leaves Bruno free to invite, and the address opted in."""
    add_members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])
    with serve(ctx) as site:
        path = f"/u/{mail.tokens.unsubscribe}"
        page = site.get(path).text
        assert '<input type="hidden" name="action" value="stop-member">' in page
        assert "Stop emails from Ana" in page
        done = site.post(path, data={"action": "stop-member"})
        assert done.status_code == 200
        assert "You will get no more emails from Ana through Agora." in done.text
        events = ledger_size(ctx)
        assert site.post(path, data={"action": "stop-member"}).text == done.text
        assert ledger_size(ctx) == events
    assert _unsubscribed_at(ctx, BO) is None
    with ctx.engine.connect() as connection:
        blocked = connection.execute(
            select(recipient_blocks.c.member_id).where(
                recipient_blocks.c.recipient_digest == ctx.digest_email(BO)
            )
        ).scalars()
        assert list(blocked) == ["ana"]
    later = by_email(send_invites(ctx, "bruno", [BO], SENT_AT + timedelta(days=30)))[BO]
    assert later["status"] == "scheduled"


def test_a_get_changes_nothing(ctx: Context) -> None:
    """Link scanners fetch every link: GET and HEAD of /u and /why write nothing at all."""
    add_members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])
    before, events = all_stored_text(ctx), ledger_size(ctx)
    with serve(ctx) as site:
        for path in (
            f"/u/{mail.tokens.unsubscribe}",
            f"/u/{mail.tokens.unsubscribe}?List-Unsubscribe=One-Click",
            f"/why/{mail.tokens.why}",
            f"/why/{mail.tokens.why}?action=forget",
        ):
            assert site.get(path).status_code == 200
            head = site.client.head(site.base + path)
            assert (head.status_code, head.content) == (200, b"")
            assert head.headers["cache-control"] == "no-store"
    assert (all_stored_text(ctx), ledger_size(ctx)) == (before, events)
    assert _unsubscribed_at(ctx, BO) is None
    assert invitation(ctx, mail.ids[0]).address == BO


def test_a_post_that_does_not_ask_to_unsubscribe_changes_nothing(ctx: Context) -> None:
    add_members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])
    before, events = all_stored_text(ctx), ledger_size(ctx)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    with serve(ctx) as site:
        path = f"/u/{mail.tokens.unsubscribe}"
        for body in (b"", b"List-Unsubscribe=Two-Clicks", b"x" * 20_000):
            response = site.post(path, content=body, headers=form)
            assert response.status_code == 400
            assert response.headers["cache-control"] == "no-store"
            assert "Nothing was changed" in response.text
        with_file = site.post(path, files={"List-Unsubscribe": ("a.txt", b"One-Click")})
        assert with_file.status_code == 400
    assert (all_stored_text(ctx), ledger_size(ctx)) == (before, events)


def test_unsubscribe_takes_effect_before_the_next_send_decision(ctx: Context) -> None:
    """A one-click between queueing and the worker's pass wins (invariant 7)."""
    add_members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])
    later = by_email(send_invites(ctx, "bruno", [BO], T0 + timedelta(days=20)))[BO]["id"]
    with serve(ctx) as site:
        site.clock.now = T0 + timedelta(days=20, minutes=5)
        assert (
            site.post(
                f"/u/{mail.tokens.unsubscribe}", data={"List-Unsubscribe": "One-Click"}
            ).status_code
            == 200
        )
    assert deliver(ctx, T0 + timedelta(days=21)) == []
    assert invitation(ctx, later).state == "blocked"


def test_a_digests_page_stops_the_members_it_carried(ctx: Context) -> None:
    """A digest's footer offers to stop "these members": its page offers each member it
    carried and all of them at once, not only the first, nor a member of another email."""
    add_members(ctx)
    register_member(ctx, "cy", "cy@example.org", "Cy", "en", T0)
    register_member(ctx, "dee", "dee@example.org", "Dee", "en", T0)
    (alone,) = invite_and_deliver(ctx, "dee", [BO])
    later = T0 + timedelta(days=15)
    for member in ("ana", "bruno", "cy"):
        send_invites(ctx, member, [BO], later)
    (mail,) = deliver(ctx, later + timedelta(minutes=10))
    assert mail.outgoing.member_names == ("Ana", "Bruno", "Cy")
    ana, bruno, cy = mail.ids
    with serve(ctx) as site:
        site.clock.now = later + timedelta(hours=1)
        path = f"/u/{mail.tokens.unsubscribe}"
        page = site.get(path).text
        assert '<input type="hidden" name="action" value="stop-members">' in page
        assert "Stop emails from Ana, Bruno and Cy" in page
        for member, invited in (("Ana", ana), ("Bruno", bruno), ("Cy", cy)):
            assert f'name="invitation" value="{invited}"' in page
            assert f"Stop emails from {member}</button>" in page
        assert "Dee" not in page
        before = ledger_size(ctx), all_stored_text(ctx)
        stranger = site.post(path, data={"action": "stop-member", "invitation": alone.ids[0]})
        assert stranger.status_code == 400
        assert "Choose one of the members listed on the page." in stranger.text
        assert (ledger_size(ctx), all_stored_text(ctx)) == before

        one = site.post(path, data={"action": "stop-member", "invitation": bruno})
        assert "You will get no more emails from Bruno through Agora." in one.text
        done = site.post(path, data={"action": "stop-members"})
        assert done.status_code == 200
        assert "You will get no more emails from Ana, Bruno and Cy through Agora." in done.text
        events = ledger_size(ctx)
        assert site.post(path, data={"action": "stop-members"}).text == done.text
        assert ledger_size(ctx) == events
        # The single email's page still offers its one member, as its footer does.
        single = site.get(f"/u/{alone.tokens.unsubscribe}").text
        assert "Or only stop the invitations of Dee: other members" in single
        assert 'value="stop-members"' not in single
    assert _unsubscribed_at(ctx, BO) is None
    with ctx.engine.connect() as connection:
        blocked = connection.execute(
            select(recipient_blocks.c.member_id).where(
                recipient_blocks.c.recipient_digest == ctx.digest_email(BO)
            )
        ).scalars()
        assert sorted(blocked) == ["ana", "bruno", "cy"]


def test_stopping_every_member_of_a_digest_speaks_of_them_in_the_plural(ctx: Context) -> None:
    """The digest's "stop them all" answers that these members (not "this person") see only
    that the recipient is unavailable; stopping one of them speaks of one. In French and in
    English."""
    # A digest lists its members by id: in this order.
    french = (("m1", "Marie Dupont"), ("m2", "Luc Bernard"), ("m3", "Zoé Roux"))
    for member_id, name in french:
        register_member(ctx, member_id, f"{member_id}@example.com", name, "fr", T0)
        send_invites(ctx, member_id, [BO], T0)
    add_members(ctx)
    register_member(ctx, "cy", "cy@example.org", "Cy", "en", T0)
    for member_id in ("ana", "bruno", "cy"):
        send_invites(ctx, member_id, ["dee@example.com"], T0)
    mails = {mail.outgoing.to: mail for mail in deliver(ctx)}
    assert {to: len(mail.ids) for to, mail in mails.items()} == {BO: 3, "dee@example.com": 3}
    with serve(ctx) as site:
        site.clock.now = SENT_AT + timedelta(hours=1)
        path = f"/u/{mails[BO].tokens.unsubscribe}"
        assert "Bloquer Marie Dupont, Luc Bernard et Zoé Roux</button>" in site.get(path).text
        done = site.post(path, data={"action": "stop-members"}).text
        assert '<html lang="fr">' in done
        assert (
            "Marie Dupont, Luc Bernard et Zoé Roux ne pourront plus vous envoyer d'e-mails" in done
        )
        assert "Ces membres voient seulement que vous n'êtes pas joignable" in done
        assert "Cette personne" not in done
        one = site.post(path, data={"action": "stop-member", "invitation": mails[BO].ids[0]})
        assert "Cette personne voit seulement que vous n'êtes pas joignable" in one.text

        path = f"/u/{mails['dee@example.com'].tokens.unsubscribe}"
        done = site.post(path, data={"action": "stop-members"}).text
        assert "You will get no more emails from Ana, Bruno and Cy through Agora." in done
        assert "These members only see that you are unavailable, never why." in done
        assert "They only see" not in done
