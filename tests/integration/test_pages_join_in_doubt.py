"""`/join` from an email whose fate nobody knows (its worker died mid-send): the click proves
it arrived. The email is recorded sent when it was handed over, as an admin's "It arrived"
records it, and the invitation accepted at once: no reminder is left to ask someone who
answered, and the admin page no longer offers it (invariants 3 and 8)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from admin_support import admin_settings, sign_in
from doubt_support import CLAIMED, CLICKED, emails_in_doubt
from pages_site import ledger_size, serve
from sqlalchemy import select
from support import (
    T0,
    add_members,
    by_email,
    invitation,
    ledger_events,
    nothing_more_leaves,
    rows,
    send_invites,
)

from courtois.config import Settings
from courtois.services.admin_unknown import resolve_unknown, unknown_messages
from courtois.services.context import Context
from courtois.services.email_arrived import FOLLOWED_LINK
from courtois.services.recipient_actions import accept
from courtois.services.recipient_link import resolve_link
from courtois.services.recipients import mark_joined
from courtois.store.tables import messages, webhook_events
from courtois.tokens import Scope

P1 = "p1@example.org"
D1 = "d1@example.org"


@pytest.fixture
def settings() -> Settings:
    """With an API key (the admin pages are on) and a webhook receiver (events are kept);
    the receiver is never reached, and need not be."""
    return replace(
        admin_settings(),
        webhook_url="http://127.0.0.1:9/hooks",
        webhook_secret="whsec-0123456789abcdef",
    )


def _worker_died(ctx: Context, in_doubt: int) -> dict[str, str]:
    """The emails put in doubt (`emails_in_doubt`): each invitation's join token, read from
    the email that may have arrived."""
    joins = {}
    for invitation_ids, tokens in emails_in_doubt(ctx, in_doubt):
        joins.update(zip(invitation_ids, tokens.join, strict=True))
    return joins


def _messages_of(ctx: Context, invitation_id: str) -> list[tuple[str, str]]:
    return sorted(
        (m.kind, m.state) for m in rows(ctx, messages, messages.c.invitation_id == invitation_id)
    )


def _webhooks(ctx: Context, invitation_id: str) -> list[str]:
    with ctx.engine.connect() as connection:
        found = connection.execute(
            select(webhook_events.c.type, webhook_events.c.payload).order_by(
                webhook_events.c.created_at
            )
        ).all()
    return [t for t, payload in found if payload["data"].get("invitation_id") == invitation_id]


def test_following_the_join_link_of_an_email_in_doubt_settles_it_and_accepts(
    ctx: Context,
) -> None:
    add_members(ctx)
    (invitation_id,) = [
        i["id"] for i in send_invites(ctx, "ana", [P1], T0, reminders=1)["invitations"]
    ]
    joins = _worker_died(ctx, 1)
    (doubt,) = rows(ctx, messages, messages.c.invitation_id == invitation_id)
    assert (doubt.state, invitation(ctx, invitation_id).state) == ("unknown", "scheduled")
    with serve(ctx) as site:
        site.clock.now = CLICKED
        csrf = sign_in(site)
        assert f'value="{doubt.id}"' in site.get("/admin/unknown").text
        size = ledger_size(ctx)
        answer = site.get(f"/join/{joins[invitation_id]}")
        assert answer.status_code == 303
        assert answer.headers["location"].endswith(f"invitation={invitation_id}")

        # The email arrived when it was handed over; the invitation was sent from then and
        # is accepted now, with nothing left to remind the recipient of.
        (sent,) = rows(ctx, messages, messages.c.id == doubt.id)
        assert (sent.state, sent.sent_at, sent.last_reason) == ("sent", CLAIMED, FOLLOWED_LINK)
        row = invitation(ctx, invitation_id)
        assert (row.state, row.sent_at, row.answered_at) == ("accepted", CLAIMED, CLICKED)
        assert _messages_of(ctx, invitation_id) == [("invitation", "sent")]
        events = ledger_events(ctx)[size:]
        assert (
            "message.state",
            {"message": doubt.id, "from": "unknown", "to": "sent", "reason": FOLLOWED_LINK},
        ) in events
        moves = [(p["from"], p["to"], p["reason"]) for e, p in events if e == "invitation.state"]
        assert moves == [
            ("scheduled", "sent", FOLLOWED_LINK),
            ("sent", "accepted", "the recipient accepted"),
        ]
        assert _webhooks(ctx, invitation_id) == ["invitation.sent", "invitation.accepted"]

        # The admin has nothing left to settle; a second click changes nothing.
        listed = site.get("/admin/unknown")
        assert f'value="{doubt.id}"' not in listed.text
        refused = site.post("/admin/unknown", data={"csrf": csrf, "one": f"sent:{doubt.id}"})
        assert refused.status_code == 303
        assert "1 was settled already." in site.get(refused.headers["location"]).text
        size = ledger_size(ctx)
        again = site.get(f"/join/{joins[invitation_id]}")
        assert (again.status_code, ledger_size(ctx)) == (303, size)
    assert _messages_of(ctx, invitation_id) == [("invitation", "sent")]
    nothing_more_leaves(ctx)


def test_a_digest_in_doubt_arrives_whole_when_one_of_its_links_is_followed(
    ctx: Context,
) -> None:
    """Ana and Bruno invite d1 a minute apart, both ticking a reminder: one digest, in
    doubt. d1 follows Bruno's join link: the digest and the invitation it carried for Ana
    arrived too. Bruno's is accepted, with no reminder; Ana's is sent from the hand-over,
    with the reminder she ticked, as after any email that arrived."""
    add_members(ctx)
    ana = by_email(send_invites(ctx, "ana", [D1], T0, reminders=1))[D1]["id"]
    bruno = by_email(send_invites(ctx, "bruno", [D1], T0 + timedelta(minutes=1), reminders=1))[D1][
        "id"
    ]
    joins = _worker_died(ctx, 2)
    assert [m.kind for m in unknown_messages(ctx)[0]] == ["digest"]

    state = accept(ctx, resolve_link(ctx, Scope.JOIN, joins[bruno]), CLICKED)

    assert state == "accepted"
    for invitation_id in (ana, bruno):
        (first,) = rows(
            ctx,
            messages,
            (messages.c.invitation_id == invitation_id) & (messages.c.kind != "reminder"),
        )
        assert (first.state, first.sent_at, first.last_reason) == ("sent", CLAIMED, FOLLOWED_LINK)
        assert invitation(ctx, invitation_id).sent_at == CLAIMED
    assert (invitation(ctx, ana).state, invitation(ctx, bruno).state) == ("sent", "accepted")
    assert _messages_of(ctx, bruno) == [("invitation", "sent")]
    (reminder,) = rows(
        ctx, messages, (messages.c.invitation_id == ana) & (messages.c.kind == "reminder")
    )
    assert (reminder.state, reminder.scheduled_at) == (
        "scheduled",
        CLAIMED + ctx.settings.policy.reminder_interval,
    )
    assert unknown_messages(ctx) == ([], 0)
    assert _webhooks(ctx, ana) == ["invitation.sent"]
    assert _webhooks(ctx, bruno) == ["invitation.sent", "invitation.accepted"]


def test_a_click_on_an_expired_invitation_in_doubt_settles_nothing(ctx: Context) -> None:
    """A scheduled invitation past its expiry is closed, for a click too: the email stays
    for an admin to settle, and nothing is accepted."""
    add_members(ctx)
    (invitation_id,) = [i["id"] for i in send_invites(ctx, "ana", [P1], T0)["invitations"]]
    joins = _worker_died(ctx, 1)
    expires_at = invitation(ctx, invitation_id).expires_at
    size = ledger_size(ctx)

    state = accept(ctx, resolve_link(ctx, Scope.JOIN, joins[invitation_id]), expires_at)

    assert state == "scheduled"
    assert ledger_size(ctx) == size
    assert _messages_of(ctx, invitation_id) == [("invitation", "unknown")]


def test_a_recipient_who_joins_leaves_no_reminder_behind_an_email_in_doubt(
    ctx: Context,
) -> None:
    """`POST /v1/joined` proves nothing of an email (the recipient may have come on their
    own): the invitation still scheduled behind its email in doubt is closed as blocked,
    and when an admin later finds the email arrived, no reminder follows it."""
    add_members(ctx)
    (invitation_id,) = [
        i["id"] for i in send_invites(ctx, "ana", [P1], T0, reminders=1)["invitations"]
    ]
    _worker_died(ctx, 1)
    (doubt,) = rows(ctx, messages, messages.c.invitation_id == invitation_id)

    assert mark_joined(ctx, ctx.digest_email(P1), CLICKED) == {"accepted": 0, "blocked": 1}
    resolve_unknown(ctx, [doubt.id], "sent", CLICKED + timedelta(hours=1))

    assert invitation(ctx, invitation_id).state == "blocked"
    assert _messages_of(ctx, invitation_id) == [("invitation", "sent")]
    nothing_more_leaves(ctx)
