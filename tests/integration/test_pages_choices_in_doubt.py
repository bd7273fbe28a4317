"""Every choice a recipient makes from the links of an email whose fate nobody knows (its
worker died mid-send) proves, as a join does, that the email arrived: "not interested",
"remind me later", "stop this member", "stop everyone", "forget me", and the one-click
unsubscribe. The email is recorded sent when it was handed over, through the one function
an admin's "It arrived" and a join use, then the choice is made, on an invitation that was
sent. A second click finds nothing in doubt and writes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from doubt_support import CLAIMED, CLICKED, emails_in_doubt
from pages_site import ledger_size, serve
from support import T0, add_members, by_email, invitation, nothing_more_leaves, rows, send_invites

from courtois.services.admin_unknown import unknown_messages
from courtois.services.context import Context
from courtois.services.email_arrived import FOLLOWED_LINK
from courtois.store.tables import messages

P1 = "p1@example.org"
D1 = "d1@example.org"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def _reminders(ctx: Context, invitation_id: str) -> list[tuple[str, object]]:
    return sorted(
        (m.state, m.scheduled_at)
        for m in rows(
            ctx,
            messages,
            (messages.c.invitation_id == invitation_id) & (messages.c.kind == "reminder"),
        )
    )


def _arrived(ctx: Context, message_id: str) -> None:
    (sent,) = rows(ctx, messages, messages.c.id == message_id)
    assert (sent.state, sent.sent_at, sent.last_reason) == ("sent", CLAIMED, FOLLOWED_LINK)
    assert unknown_messages(ctx) == ([], 0)


@pytest.mark.parametrize(
    ("link", "form", "state"),
    [
        ("why", {"action": "decline"}, "declined"),
        ("why", {"action": "stop-member"}, "sent"),
        ("why", {"action": "stop-everyone"}, "sent"),
        ("why", {"action": "forget"}, "declined"),
        ("u", ONE_CLICK, "sent"),
        ("u", {"action": "stop-member"}, "sent"),
        ("u", {"action": "stop-members"}, "sent"),
    ],
)
def test_a_choice_from_an_email_in_doubt_records_it_arrived_then_makes_it(
    ctx: Context, link: str, form: dict[str, str], state: str
) -> None:
    add_members(ctx)
    (invitation_id,) = [
        i["id"] for i in send_invites(ctx, "ana", [P1], T0, reminders=1)["invitations"]
    ]
    ((_carried, tokens),) = emails_in_doubt(ctx, 1)
    (doubt,) = rows(ctx, messages, messages.c.invitation_id == invitation_id)
    assert (doubt.state, invitation(ctx, invitation_id).state) == ("unknown", "scheduled")
    token = tokens.why if link == "why" else tokens.unsubscribe
    with serve(ctx) as site:
        site.clock.now = CLICKED
        answer = site.post(f"/{link}/{token}", data=form)
        assert answer.status_code == 200, answer.text

        # The email arrived when it was handed over; its invitation was sent from then,
        # and what the choice did is done to a sent invitation: no reminder is left.
        _arrived(ctx, doubt.id)
        row = invitation(ctx, invitation_id)
        assert (row.state, row.sent_at) == (state, CLAIMED)
        assert [s for s, _at in _reminders(ctx, invitation_id)] in ([], ["cancelled"])

        size = ledger_size(ctx)
        again = site.post(f"/{link}/{token}", data=form)
        assert (again.status_code, ledger_size(ctx)) == (200, size)
    nothing_more_leaves(ctx)


def test_remind_me_later_from_an_email_in_doubt_schedules_the_reminder_asked(
    ctx: Context,
) -> None:
    """Before, the invitation still scheduled behind its email in doubt answered "closed",
    and no reminder could be asked. Now the email arrived, the invitation was sent at its
    hand-over, and the reminder asked replaces the one its member ticked."""
    add_members(ctx)
    (invitation_id,) = [
        i["id"] for i in send_invites(ctx, "ana", [P1], T0, reminders=1)["invitations"]
    ]
    ((_carried, tokens),) = emails_in_doubt(ctx, 1)
    (doubt,) = rows(ctx, messages, messages.c.invitation_id == invitation_id)
    day = CLICKED.date() + timedelta(days=20)
    form = {"action": "remind", "date": day.isoformat(), "invitation": invitation_id}
    with serve(ctx) as site:
        site.clock.now = CLICKED
        answer = site.post(f"/why/{tokens.why}", data=form)
        assert answer.status_code == 200, answer.text
        _arrived(ctx, doubt.id)
        row = invitation(ctx, invitation_id)
        assert (row.state, row.sent_at) == ("sent", CLAIMED)
        asked = CLAIMED.replace(year=day.year, month=day.month, day=day.day)
        assert ("scheduled", asked) in _reminders(ctx, invitation_id)
        assert [s for s, _at in _reminders(ctx, invitation_id)].count("scheduled") == 1

        size = ledger_size(ctx)
        again = site.post(f"/why/{tokens.why}", data=form)
        assert (again.status_code, ledger_size(ctx)) == (200, size)


def test_stopping_one_member_of_a_digest_in_doubt_leaves_the_other_sent_with_its_reminder(
    ctx: Context,
) -> None:
    """Ana and Bruno invite d1 a minute apart, both ticking a reminder: one digest, in
    doubt. d1 stops Bruno from its unsubscribe page: the digest arrived, both invitations
    were sent at its hand-over; Bruno's reminder is cancelled, Ana's stays as she ticked
    it."""
    add_members(ctx)
    ana = by_email(send_invites(ctx, "ana", [D1], T0, reminders=1))[D1]["id"]
    bruno = by_email(send_invites(ctx, "bruno", [D1], T0 + timedelta(minutes=1), reminders=1))[D1][
        "id"
    ]
    ((carried, tokens),) = emails_in_doubt(ctx, 2)
    assert set(carried) == {ana, bruno}
    (digest,) = [m for m in unknown_messages(ctx)[0] if m.kind == "digest"]
    with serve(ctx) as site:
        site.clock.now = CLICKED
        answer = site.post(
            f"/u/{tokens.unsubscribe}", data={"action": "stop-member", "invitation": bruno}
        )
        assert answer.status_code == 200, answer.text
    _arrived(ctx, digest.id)
    for invitation_id in (ana, bruno):
        row = invitation(ctx, invitation_id)
        assert (row.state, row.sent_at) == ("sent", CLAIMED)
    interval = ctx.settings.policy.reminder_interval
    assert _reminders(ctx, ana) == [("scheduled", CLAIMED + interval)]
    assert [s for s, _at in _reminders(ctx, bruno)] == ["cancelled"]
