"""The one-click unsubscribe reads its invitation and stops everything in one transaction,
on both engines, with exactly the changes and ledger entries of `move_invitations` followed
by a cancel of the recipient's other emails.

What is checked: the ledger entries and their order (the blocked invitation, its email,
then the other emails still waiting), the counts `unsubscribe` answers, sender activity,
addresses; a token naming no invitation, and a repeat, write nothing; clicks racing on one
recipient record the opt-out once, because the "already unsubscribed?" question is asked
under the recipient's lock.
"""

from __future__ import annotations

import dataclasses
import threading
from datetime import timedelta

import pytest
from pages_site import SENT_AT, invite_and_deliver, ledger_size
from sqlalchemy import func, select
from support import all_stored_text, by_email, ledger_events, rows, send_invites

from conftest import SECRET
from courtois.config import Settings
from courtois.domain.errors import NotFound
from courtois.services.context import Context
from courtois.services.members import register_member
from courtois.services.recipient_actions import unsubscribe_link
from courtois.services.recipients import forget_recipient, unsubscribe
from courtois.store.tables import (
    invitations,
    messages,
    recipients,
    sender_activity,
    webhook_events,
)
from courtois.tokens import Scope, make_token


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Webhooks on (to a port nobody listens on): events are written only then, and some
    of these tests read them."""
    return dataclasses.replace(
        settings, webhook_url="http://127.0.0.1:9/hooks", webhook_secret="whsec-0123456789abcdef"
    )


BO = "bo@example.com"
REASON = "the recipient unsubscribed"


def _members(ctx: Context) -> None:
    for member in ("ana", "bruno", "cy"):
        register_member(ctx, member, f"{member}@example.org", member.title(), "en", SENT_AT)


def _token(invitation_id: str) -> str:
    return make_token(SECRET.encode(), Scope.UNSUBSCRIBE, invitation_id)


def test_one_click_writes_what_move_and_cancel_wrote(ctx: Context) -> None:
    _members(ctx)
    # Ana's invitation is sent, with a reminder waiting; Bruno's waits for the inbox quota.
    (mail,) = invite_and_deliver(ctx, "ana", [BO], reminders=1)
    sent = mail.ids[0]
    bruno = by_email(send_invites(ctx, "bruno", [BO], SENT_AT + timedelta(hours=1)))[BO]["id"]
    (bruno_email,) = rows(ctx, messages, messages.c.invitation_id == bruno)
    (reminder,) = [
        m for m in rows(ctx, messages, messages.c.invitation_id == sent) if m.state == "scheduled"
    ]
    before = len(ledger_events(ctx))

    link = unsubscribe_link(ctx, mail.tokens.unsubscribe, SENT_AT + timedelta(hours=2))

    assert (link.invitation_id, link.digest) == (sent, ctx.digest_email(BO))
    assert ledger_events(ctx)[before:] == [
        (
            "invitation.state",
            {"invitation": bruno, "from": "scheduled", "to": "blocked", "reason": REASON},
        ),
        (
            "message.state",
            {"message": bruno_email.id, "from": "scheduled", "to": "cancelled", "reason": REASON},
        ),
        (
            "message.state",
            {"message": reminder.id, "from": "scheduled", "to": "cancelled", "reason": REASON},
        ),
        ("recipient.unsubscribed", {"recipient": ctx.digest_email(BO), "from": "everyone"}),
    ]
    states = {r.id: r.state for r in rows(ctx, invitations)}
    assert (states[sent], states[bruno]) == ("sent", "blocked")
    assert {r.address for r in rows(ctx, invitations)} == {None}
    assert {m.state for m in rows(ctx, messages) if m.recipient_digest == link.digest} == {
        "sent",
        "cancelled",
    }
    activity = {r.invitation_id: r for r in rows(ctx, sender_activity)}
    assert activity[bruno].state == "blocked"
    assert activity[bruno].message_id is None
    with ctx.engine.connect() as connection:
        events = connection.execute(
            select(func.count())
            .select_from(webhook_events)
            .where(webhook_events.c.type == "recipient.unsubscribed")
        ).scalar_one()
    assert events == 1


def test_unsubscribe_counts_are_unchanged(ctx: Context) -> None:
    """`cancelled` counts the emails of invitations that were not blocked with them."""
    _members(ctx)
    invite_and_deliver(ctx, "ana", [BO], reminders=1)
    send_invites(ctx, "bruno", [BO], SENT_AT + timedelta(hours=1))
    counts = unsubscribe(ctx, ctx.digest_email(BO), SENT_AT + timedelta(hours=2))
    assert counts == {"blocked": 1, "cancelled": 1, "already_leaving": 0}


def test_unsubscribe_from_one_member_leaves_the_others(ctx: Context) -> None:
    _members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [BO], reminders=1)
    bruno = by_email(send_invites(ctx, "bruno", [BO], SENT_AT + timedelta(hours=1)))[BO]["id"]
    counts = unsubscribe(ctx, ctx.digest_email(BO), SENT_AT + timedelta(hours=2), "ana")
    assert counts == {"blocked": 0, "cancelled": 1, "already_leaving": 0}
    by_id = {r.id: r for r in rows(ctx, invitations)}
    assert (by_id[mail.ids[0]].address, by_id[bruno].address) == (None, BO)
    assert by_id[bruno].state == "scheduled"
    assert [m.state for m in rows(ctx, messages, messages.c.invitation_id == bruno)] == [
        "scheduled"
    ]


def test_a_token_naming_nothing_writes_nothing(ctx: Context) -> None:
    _members(ctx)
    invite_and_deliver(ctx, "ana", [BO])
    stored, events = all_stored_text(ctx), ledger_size(ctx)
    with pytest.raises(NotFound):
        unsubscribe_link(ctx, _token("no-such-invitation"), SENT_AT)
    with pytest.raises(NotFound):
        unsubscribe_link(ctx, "forged." + _token("x"), SENT_AT)
    assert (all_stored_text(ctx), ledger_size(ctx)) == (stored, events)


def test_a_repeat_writes_nothing(ctx: Context) -> None:
    _members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])
    unsubscribe_link(ctx, mail.tokens.unsubscribe, SENT_AT)
    stored, events = all_stored_text(ctx), ledger_size(ctx)
    again = unsubscribe_link(ctx, mail.tokens.unsubscribe, SENT_AT + timedelta(days=1))
    assert again.invitation_id == mail.ids[0]
    assert (all_stored_text(ctx), ledger_size(ctx)) == (stored, events)


def test_racing_clicks_record_the_opt_out_once(ctx: Context) -> None:
    _members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])
    start = threading.Barrier(6)
    failures: list[BaseException] = []

    def click() -> None:
        start.wait()
        try:
            unsubscribe_link(ctx, mail.tokens.unsubscribe, SENT_AT)
        except BaseException as error:  # reported below, not lost in the thread
            failures.append(error)

    threads = [threading.Thread(target=click) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == []
    opt_outs = [e for e, _ in ledger_events(ctx) if e == "recipient.unsubscribed"]
    assert opt_outs == ["recipient.unsubscribed"]


def test_a_repeated_stop_or_forget_is_told_once(ctx: Context) -> None:
    """The same command twice, a stop from one member twice, forget twice: each closes
    whatever is open again, but the ledger and the platform hear of each fact once, and
    the first instants are kept."""
    _members(ctx)
    send_invites(ctx, "ana", [BO], SENT_AT)
    digest = ctx.digest_email(BO)
    later = SENT_AT + timedelta(hours=1)
    for at in (SENT_AT, later):
        unsubscribe(ctx, digest, at, from_member="ana")
        unsubscribe(ctx, digest, at)
        forget_recipient(ctx, digest, at)
    events = ledger_events(ctx)
    assert [e for e in events if e[0] == "recipient.unsubscribed"] == [
        ("recipient.unsubscribed", {"recipient": digest, "from": "ana"}),
        ("recipient.unsubscribed", {"recipient": digest, "from": "everyone"}),
    ]
    assert [e for e in events if e[0] == "recipient.forgotten"] == [
        ("recipient.forgotten", {"recipient": digest})
    ]
    hooks = [row.payload["data"] for row in rows(ctx, webhook_events)]
    assert [(h["scope"], h["reason"]) for h in hooks] == [
        ("member", "unsubscribed"),
        ("everyone", "unsubscribed"),
        ("everyone", "forgotten"),
    ]
    (recipient,) = rows(ctx, recipients, recipients.c.digest == digest)
    assert (recipient.unsubscribed_at, recipient.forgotten_at) == (SENT_AT, SENT_AT)
