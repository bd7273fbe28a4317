"""strict-eu's hand-sent text: the member reads every link in it, so its "why" and "stop"
links are shared ones, which show and act on that one invitation only. Whatever the
recipient did elsewhere (stopped another member, unsubscribed, got other emails), the page
a shared link opens says nothing of it, and no choice posted through it reaches another
member's invitation (invariant 11: a member sees "unavailable", never why). Over real HTTP,
on both engines."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from html import unescape

from pages_site import SENT_AT, Delivered, Site, invite_and_deliver, serve
from sqlalchemy import select
from support import T0, add_members, by_email, invitation, send_invites

from courtois.domain.contacts import ContactInput
from courtois.services.contacts import import_contacts
from courtois.services.context import Context
from courtois.services.members import register_member
from courtois.store.tables import recipient_blocks, recipients
from courtois.tokens import Scope, read_token

BO = "bo@example.com"
LATER = SENT_AT + timedelta(hours=3)


def _strict(ctx: Context) -> Context:
    policy = replace(ctx.settings.policy, profile="strict-eu")
    return Context(ctx.engine, replace(ctx.settings, policy=policy))


def _shared_text(ctx: Context, member_id: str) -> tuple[str, str, str]:
    """The member invites BO by hand: their invitation id, and the why and stop tokens of the
    text they are given to send."""
    item, why, stop = _hand_sent(ctx, member_id, BO)
    return item["id"], why, stop


def _hand_sent(ctx: Context, member_id: str, email: str) -> tuple[dict[str, str], str, str]:
    """The member invites `email` by hand: the answer's invitation, and the why and stop
    tokens of the text they are given to send."""
    answer = send_invites(_strict(ctx), member_id, [email], SENT_AT + timedelta(hours=1))
    item = by_email(answer)[email]
    text = item["share_text"]
    (why,) = set(re.findall(r"/why/([A-Za-z0-9_.-]+)", text))
    (stop,) = set(re.findall(r"/u/([A-Za-z0-9_.-]+)", text))
    return item, why, stop


def _blocked_members(ctx: Context) -> set[str]:
    with ctx.engine.connect() as connection:
        return set(
            connection.execute(
                select(recipient_blocks.c.member_id).where(
                    recipient_blocks.c.recipient_digest == ctx.digest_email(BO)
                )
            ).scalars()
        )


def _post(site: Site, token: str, action: str, **fields: str) -> str:
    response = site.post(f"/why/{token}", data={"action": action, **fields})
    assert response.status_code == 200, response.text
    return response.text


def test_the_texts_links_are_shared_ones_naming_its_invitation(ctx: Context) -> None:
    add_members(ctx)
    bruno, why, stop = _shared_text(ctx, "bruno")
    secrets = ctx.settings.token_secrets
    assert read_token(secrets, Scope.SHARED, why) == bruno
    assert read_token(secrets, Scope.SHARED, stop) == bruno
    with serve(ctx) as site:
        # A shared token is no recipient token: it neither accepts nor opens the mailto path.
        assert site.get(f"/join/{why}").status_code == 404
        assert invitation(ctx, bruno).state == "sent"


def _both_invited(ctx: Context) -> tuple[Delivered, str, str, str]:
    """Ana's email reached BO; Bruno then invites BO by hand. Ana's email, her invitation,
    Bruno's invitation and the why token of his text."""
    add_members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])
    (ana,) = mail.ids
    bruno, why, _stop = _shared_text(ctx, "bruno")
    return mail, ana, bruno, why


def test_a_shared_link_shows_nothing_the_member_does_not_know(ctx: Context) -> None:
    mail, ana, bruno, why = _both_invited(ctx)
    with serve(ctx) as site:
        site.clock.now = LATER
        before = site.get(f"/why/{why}")
        assert before.status_code == 200
        # What the recipient does through their own links changes their page...
        own_before = site.get(f"/why/{mail.tokens.why}").text
        assert "Ana" in own_before
        assert "Bruno" in own_before
        _post(site, mail.tokens.why, "stop-member", invitation=ana)
        assert "stopped" in site.get(f"/why/{mail.tokens.why}").text
        # ...and nothing of the shared one: no other member, no opt-out, no count.
        after = site.get(f"/why/{why}")
    assert after.text == before.text
    page = after.text
    assert "Bruno, a member of Agora" in page
    assert "Ana" not in page
    assert ana not in page
    assert "stopped" not in page
    assert "sent to you" not in page
    assert 'value="remind"' not in page
    for action in ("decline", "stop-member", "stop-everyone", "forget"):
        assert f'name="action" value="{action}"' in page
    assert bruno not in page  # no hidden invitation field: the link names its own


def test_choices_through_a_shared_link_reach_its_invitation_only(ctx: Context) -> None:
    mail, ana, bruno, why = _both_invited(ctx)
    with serve(ctx) as site:
        site.clock.now = LATER
        # Naming Ana's invitation stops the member behind the link, not Ana.
        stopped = _post(site, why, "stop-member", invitation=ana)
        assert "You will get no more emails from Bruno through Agora." in stopped
        assert _blocked_members(ctx) == {"bruno"}
        declined = _post(site, why, "decline")
        assert "This invitation is closed. Bruno will see that you declined." in declined
        assert "A member could still invite you" not in declined
        assert (invitation(ctx, bruno).state, invitation(ctx, ana).state) == ("declined", "sent")
        # A reminder is an email: nobody invited by hand gets one, whoever asks.
        remind = _post(site, why, "remind", date="2026-03-20")
        assert "We cannot send you a reminder:" in remind
        assert "sends no email about it" in remind
        # Through the recipient's own link, "not interested" still closes everything.
        _post(site, mail.tokens.why, "decline")
    assert invitation(ctx, ana).state == "declined"


def test_a_shared_page_does_not_deny_the_address_an_address_book_holds(ctx: Context) -> None:
    """A hand-sent invitation keeps no address, but address books may: Bruno picked Bo
    from his contacts, and Ana imported Bo too and keeps the contact, after Bo declined
    through the text's link. The shared page must not say that only a fingerprint is kept,
    nor count the address books (Bruno holds the link too, and Ana's contacts are none of
    his business, invariant 11)."""
    add_members(ctx)
    for member in ("ana", "bruno"):
        import_contacts(ctx, member, [ContactInput(BO, "Bo")], "test", T0)
    _bruno, why, _stop = _shared_text(ctx, "bruno")
    with serve(ctx) as site:
        site.clock.now = LATER
        pages = [_words(site.get(f"/why/{why}").text)]
        _post(site, why, "decline")
        pages.append(_words(site.get(f"/why/{why}").text))
    for page in pages:
        assert "Not your email address" not in page
        assert "With this invitation we keep not your email address but only this" in page
        assert (
            "Members who imported their contacts may also have your address among them, until"
            " they delete it or you ask us to forget it (below)."
        ) in page
        assert "in the contacts of" not in page


def test_a_shared_stop_link_stops_everything_and_says_no_more(ctx: Context) -> None:
    add_members(ctx)
    _bruno, why, stop = _shared_text(ctx, "bruno")
    with serve(ctx) as site:
        site.clock.now = LATER
        page = site.get(f"/u/{stop}")
        assert page.status_code == 200
        assert 'name="List-Unsubscribe" value="One-Click"' in page.text
        done = site.post(f"/u/{stop}", data={"List-Unsubscribe": "One-Click"})
        assert done.status_code == 200
        assert site.post(f"/u/{stop}", data={"List-Unsubscribe": "One-Click"}).text == done.text
        shared_page = site.get(f"/why/{why}").text
    with ctx.engine.connect() as connection:
        stopped_at = connection.execute(
            select(recipients.c.unsubscribed_at).where(recipients.c.digest == ctx.digest_email(BO))
        ).scalar_one()
    assert stopped_at == LATER
    assert "You stopped all emails" not in shared_page
    # The recipient invited anew by another member under either profile: refused, as ever.
    answer = by_email(send_invites(ctx, "ana", [BO], LATER + timedelta(days=1)))[BO]
    assert answer["decision"]["allowed"] is False


def test_a_shared_invitation_expires_and_reads_as_its_text_says(ctx: Context) -> None:
    """Out the moment it is shared: it expires the policy's days after that, and the text
    promises no reminder, since the platform sends none under strict-eu (asking for one is
    refused: `test_strict_eu.py`)."""
    add_members(ctx)
    at = SENT_AT + timedelta(hours=1)
    answer = send_invites(_strict(ctx), "bruno", [BO], at)
    item = by_email(answer)[BO]
    days = ctx.settings.policy.invitation_expiry_days
    row = invitation(ctx, item["id"])
    assert (row.sent_at, row.expires_at) == (at, at + timedelta(days=days))
    assert f"until the invitation expires after {days} days" in " ".join(item["share_text"].split())
    assert "reminder" not in item["share_text"]


def _words(html: str) -> str:
    """A page's text as read: entities decoded, every run of spaces one space."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def test_under_strict_eu_the_stop_pages_say_they_stop_invitations(ctx: Context) -> None:
    """strict-eu sends no email, so /u and /why promise no stop of emails: they say what the
    stop does there (no member can invite the recipient through the platform any more), in
    English and in French; and /u names the "why" link as the hand-sent text labels it."""
    add_members(ctx)
    register_member(ctx, "marie", "marie@example.com", "Marie", "fr", T0)
    bruno, bruno_why, bruno_stop = _hand_sent(ctx, "bruno", BO)
    marie, marie_why, marie_stop = _hand_sent(ctx, "marie", "cy@example.com")
    with serve(_strict(ctx)) as site:
        site.clock.now = LATER
        pages = {
            (lang, path): site.get(f"/{path}/{token}").text
            for lang, path, token in (
                ("en", "u", bruno_stop),
                ("en", "why", bruno_why),
                ("fr", "u", marie_stop),
                ("fr", "why", marie_why),
            )
        }
    english_stop, english_why = _words(pages["en", "u"]), _words(pages["en", "why"])
    assert "Stop invitations through Agora" in english_stop
    assert "One click and no member of Agora can invite you through it any more" in english_stop
    assert "Agora itself sends you no email" in english_stop
    assert "Stop invitations from Bruno" in english_stop
    assert "Stop emails" not in english_stop
    assert "sends you nothing more" not in english_stop
    label = "Why you got this, and what Agora holds about you"
    assert label in " ".join(bruno["share_text"].split())
    assert f"open “{label}” in the message" in english_stop
    assert "what we hold about you" not in english_stop
    assert (
        "Stop all invitations through Agora: no member can ever invite you through it again."
        in english_why
    )
    assert "Stop invitations from Bruno: they can never invite you again through Agora." in (
        english_why
    )
    assert "Stop all emails" not in english_why
    assert "Stop emails" not in english_why
    french_stop, french_why = _words(pages["fr", "u"]), _words(pages["fr", "why"])
    assert "Arrêter les invitations par Agora" in french_stop
    assert "plus aucun membre de la plateforme Agora ne pourra vous inviter" in french_stop
    assert "Bloquer Marie" in french_stop
    assert "Arrêter les e-mails" not in french_stop
    assert "ne vous envoie plus rien" not in french_stop
    label = "Pourquoi vous recevez ceci, et ce qu'Agora sait de vous"
    assert label in " ".join(marie["share_text"].split())
    assert f"ouvrez « {label} » dans le message" in french_stop
    assert "ce que nous savons de vous" not in french_stop
    assert "Arrêter toutes les invitations par Agora" in french_why
    assert "Bloquer Marie : cette personne ne pourra plus jamais vous inviter par Agora." in (
        french_why
    )
    assert "Arrêter tous les e-mails" not in french_why
