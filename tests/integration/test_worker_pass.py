"""The worker's pass against a real store (both engines), with the in-memory transport.

Undo window, at-most-once, the per-recipient quota and digests, reminders, expiry, purges,
expired leases and the transport-less dry run, each seen from what left and what is stored.
"""

from __future__ import annotations

import email
import email.policy
from datetime import datetime, timedelta
from email.message import EmailMessage

import pytest
from sqlalchemy import update
from support import (
    T0,
    add_members,
    by_email,
    count,
    invitation,
    ledger_events,
    messages_of,
    rows,
    send_invites,
)

from courtois.delivery.compose import as_previewed, tokens_in
from courtois.delivery.render import preview_hash
from courtois.delivery.transport import MemoryTransport
from courtois.domain.contacts import ContactInput
from courtois.services import worker_due
from courtois.services.contacts import import_contacts, list_contacts, select_contacts
from courtois.services.context import Context
from courtois.services.decisions import expand_verdicts
from courtois.services.lifecycle import withdraw
from courtois.services.members import register_member
from courtois.services.previews import preview_invitations
from courtois.services.worker import run_pass
from courtois.store.tables import consents, contacts, decisions, messages
from courtois.tokens import Scope, read_token

UNDO = timedelta(minutes=10)
DAY = timedelta(days=1)
BO, CY = "bo@example.com", "cy@example.net"


def test_nothing_leaves_before_the_undo_window_then_exactly_once(ctx: Context) -> None:
    add_members(ctx)
    answer = by_email(send_invites(ctx, "ana", [BO], T0, note="Come and see"))
    invitation_id = answer[BO]["id"]
    transport = MemoryTransport()

    report = run_pass(ctx, T0 + UNDO - timedelta(seconds=1), transport)
    assert transport.sent == []
    assert (report.sent, report.waiting) == (0, 0)
    (message,) = messages_of(ctx, invitation_id)
    assert message.state == "scheduled"

    report = run_pass(ctx, T0 + UNDO, transport)
    assert report.sent == 1
    (outgoing,) = transport.sent
    assert (outgoing.to, outgoing.kind, outgoing.member_names) == (BO, "invitation", ("Ana",))
    assert outgoing.invitation_ids == (invitation_id,)
    assert outgoing.message_id == message.id
    assert "Ana" in outgoing.subject
    assert "Come and see" in outgoing.text
    assert "{token:" not in outgoing.text
    parsed = email.message_from_bytes(outgoing.raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    tokens = tokens_in(parsed, ctx.settings)
    assert read_token(ctx.settings.secret, Scope.UNSUBSCRIBE, tokens.unsubscribe) == invitation_id
    assert f"/u/{tokens.unsubscribe}" in outgoing.text
    # What was shown is what is sent (invariant 2): bar the per-recipient tokens, the message
    # delivered has the hash the consent pinned.
    (consent,) = rows(ctx, consents)
    shown = preview_invitations(ctx, "ana", 1, "Come and see", None, 0)
    delivered = as_previewed(parsed, tokens)
    assert preview_hash(delivered, *shown.follow_ups) == consent.preview_hash

    (message,) = messages_of(ctx, invitation_id)
    assert (message.state, message.sent_at, message.attempts) == ("sent", T0 + UNDO, 1)
    row = invitation(ctx, invitation_id)
    assert (row.state, row.sent_at) == ("sent", T0 + UNDO)
    assert row.expires_at == T0 + UNDO + timedelta(days=30)

    # Never twice, however many passes follow.
    for later in (T0 + UNDO, T0 + timedelta(hours=1), T0 + 2 * DAY):
        assert run_pass(ctx, later, transport).sent == 0
    assert len(transport.sent) == 1
    # The send stage's decision is stored beside the queue stage's.
    stages = [p["stage"] for e, p in ledger_events(ctx) if e == "decision"]
    assert stages == ["queue", "send"]


def test_a_message_withdrawn_during_the_undo_window_never_leaves(ctx: Context) -> None:
    add_members(ctx)
    answer = by_email(send_invites(ctx, "ana", [BO, CY], T0))
    withdraw(ctx, answer[BO]["id"], T0 + timedelta(minutes=9))
    transport = MemoryTransport()
    for instant in (T0 + UNDO, T0 + DAY, T0 + 40 * DAY):
        run_pass(ctx, instant, transport)
    assert [o.to for o in transport.sent] == [CY]
    assert [m.state for m in messages_of(ctx, answer[BO]["id"])] == ["cancelled"]
    assert invitation(ctx, answer[BO]["id"]).state == "withdrawn"


def test_two_members_inviting_one_address_are_spaced_by_the_quota(ctx: Context) -> None:
    add_members(ctx)
    ana = by_email(send_invites(ctx, "ana", [CY], T0))
    bruno = by_email(send_invites(ctx, "bruno", [CY], T0 + timedelta(minutes=1)))
    assert bruno[CY]["status"] == "scheduled"

    transport = MemoryTransport()
    when: list[datetime] = []
    instants = [T0 + UNDO + timedelta(minutes=m) for m in range(3)]
    instants += [T0 + DAY, T0 + 7 * DAY, T0 + 13 * DAY, T0 + UNDO + 14 * DAY - timedelta(seconds=1)]
    for instant in instants:
        run_pass(ctx, instant, transport)
        when += [instant] * (len(transport.sent) - len(when))
    # One email at first: Ana's alone, and nothing else for fourteen days.
    assert [(o.to, o.kind, o.member_names) for o in transport.sent] == [
        (CY, "invitation", ("Ana",))
    ]
    assert when == [T0 + UNDO]
    assert invitation(ctx, bruno[CY]["id"]).state == "scheduled"
    (deferred,) = messages_of(ctx, bruno[CY]["id"])
    assert deferred.state == "scheduled"
    assert deferred.scheduled_at >= T0 + UNDO + timedelta(days=14)
    reasons = rows(ctx, decisions, decisions.c.invitation_id == bruno[CY]["id"])
    assert any(
        v["rule"] == "recipient-quota" and v["outcome"] == "defer"
        for r in reasons
        for v in expand_verdicts(r.verdicts)
    )

    for instant in (deferred.scheduled_at, T0 + 15 * DAY, T0 + 20 * DAY):
        run_pass(ctx, instant, transport)
        when += [instant] * (len(transport.sent) - len(when))
    assert [(o.kind, o.member_names) for o in transport.sent] == [
        ("invitation", ("Ana",)),
        ("invitation", ("Bruno",)),
    ]
    first = invitation(ctx, ana[CY]["id"]).sent_at
    second = invitation(ctx, bruno[CY]["id"]).sent_at
    assert second - first >= timedelta(days=14)
    assert when[1] - when[0] >= timedelta(days=14)


def test_a_recipients_messages_due_together_never_straddle_two_batches(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ana's three invitations fill a batch (of three here); Bruno's to the same recipient
    comes after them in the worker's order. The batch takes it in too: one digest, rather
    than Ana's alone and Bruno's held two weeks by the inbox's quota."""
    monkeypatch.setattr(worker_due, "BATCH", 3)
    add_members(ctx)
    ana = by_email(send_invites(ctx, "ana", [CY, "x1@example.org", "x2@example.org"], T0))
    bruno = by_email(send_invites(ctx, "bruno", [CY], T0))
    transport = MemoryTransport()
    report = run_pass(ctx, T0 + UNDO, transport)
    to_cy = [o for o in transport.sent if o.to.lower() == CY]
    assert [(o.kind, set(o.invitation_ids)) for o in to_cy] == [
        ("digest", {ana[CY]["id"], bruno[CY]["id"]})
    ]
    assert (report.sent, report.deferred) == (3, 0)


def test_invitations_due_together_leave_as_one_digest(ctx: Context) -> None:
    add_members(ctx)
    ana = by_email(send_invites(ctx, "ana", [CY], T0))
    bruno = by_email(send_invites(ctx, "bruno", ["Cy@Example.net"], T0 + timedelta(minutes=1)))
    transport = MemoryTransport()

    # The worker was down for two weeks: both invitations are due at its next pass.
    report = run_pass(ctx, T0 + 15 * DAY, transport)
    (outgoing,) = transport.sent
    assert outgoing.kind == "digest"
    assert set(outgoing.member_names) == {"Ana", "Bruno"}
    assert set(outgoing.invitation_ids) == {ana[CY]["id"], bruno[CY]["id"]}
    assert "Ana" in outgoing.subject
    assert "Bruno" in outgoing.subject
    assert outgoing.to.lower() == CY
    assert (report.sent, report.digests) == (1, 1)

    both = messages_of(ctx, ana[CY]["id"]) + messages_of(ctx, bruno[CY]["id"])
    assert {m.state for m in both} == {"sent"}
    carriers = [m for m in both if m.carried_by is None]
    (carrier,) = carriers
    assert carrier.kind == "digest"
    assert [m.carried_by for m in both if m is not carrier] == [carrier.id]
    assert invitation(ctx, ana[CY]["id"]).state == "sent"
    assert invitation(ctx, bruno[CY]["id"]).state == "sent"

    run_pass(ctx, T0 + 16 * DAY, transport)
    assert len(transport.sent) == 1


def test_invitations_previewed_in_two_languages_never_share_one_email(ctx: Context) -> None:
    """A digest is written in one language and each section must be what its member
    previewed: Luc's French invitation does not ride in Ana's English email (which would
    differ from his consent and hold both); it waits for the inbox's quota, then goes."""
    add_members(ctx)
    register_member(ctx, "luc", "luc@example.fr", "Luc", "fr", T0)
    ana = by_email(send_invites(ctx, "ana", [BO], T0))
    luc = by_email(send_invites(ctx, "luc", [BO], T0))
    transport = MemoryTransport()

    report = run_pass(ctx, T0 + UNDO, transport)
    (first,) = transport.sent
    assert (first.kind, first.invitation_ids) == ("invitation", (ana[BO]["id"],))
    assert (report.sent, report.failed, report.waiting) == (1, 0, 1)
    assert invitation(ctx, luc[BO]["id"]).state == "scheduled"

    for days in (1, 15):
        run_pass(ctx, T0 + days * DAY, transport)
    second = transport.sent[1]
    assert (second.invitation_ids, second.member_names) == ((luc[BO]["id"],), ("Luc",))
    assert "vous invite" in second.subject
    assert len(transport.sent) == 2
    assert {invitation(ctx, i[BO]["id"]).state for i in (ana, luc)} == {"sent"}


def test_a_waiting_invitation_in_another_language_is_not_passed_by_later_ones(
    ctx: Context,
) -> None:
    """Luc's French invitation and Bruno's later English one wait for the same freed day of
    the inbox's quota: the older leads, in its language. Decided by member id, Bruno's won
    every such day, and Luc's expired unsent while later English ones left."""
    add_members(ctx)
    register_member(ctx, "luc", "luc@example.fr", "Luc", "fr", T0)
    transport = MemoryTransport()
    send_invites(ctx, "ana", [BO], T0)
    run_pass(ctx, T0 + UNDO, transport)
    luc = by_email(send_invites(ctx, "luc", [BO], T0 + DAY))
    run_pass(ctx, T0 + DAY + UNDO, transport)
    bruno = by_email(send_invites(ctx, "bruno", [BO], T0 + 2 * DAY))
    run_pass(ctx, T0 + 2 * DAY + UNDO, transport)
    waiting = [messages_of(ctx, i[BO]["id"])[0] for i in (luc, bruno)]
    assert [m.state for m in waiting] == ["scheduled", "scheduled"]
    assert waiting[0].scheduled_at == waiting[1].scheduled_at  # the same freed day
    for days in range(3, 17):
        run_pass(ctx, T0 + days * DAY + UNDO, transport)
    assert len(transport.sent) == 2
    second = transport.sent[1]
    assert (second.invitation_ids, second.member_names) == ((luc[BO]["id"],), ("Luc",))
    assert invitation(ctx, bruno[BO]["id"]).state == "scheduled"


def test_a_ticked_reminder_goes_once_fourteen_days_after_the_send(ctx: Context) -> None:
    add_members(ctx)
    answer = by_email(send_invites(ctx, "ana", [BO], T0, reminders=1))
    invitation_id = answer[BO]["id"]
    transport = MemoryTransport()

    run_pass(ctx, T0 + UNDO, transport)
    assert [o.kind for o in transport.sent] == ["invitation"]
    run_pass(ctx, T0 + UNDO + timedelta(days=14) - timedelta(seconds=1), transport)
    assert [o.kind for o in transport.sent] == ["invitation"]
    for days in (15, 30, 60):
        run_pass(ctx, T0 + timedelta(days=days), transport)
    assert [o.kind for o in transport.sent] == ["invitation", "reminder"]
    reminder = transport.sent[1]
    assert (reminder.to, reminder.invitation_ids) == (BO, (invitation_id,))
    kinds = [(m.kind, m.state) for m in messages_of(ctx, invitation_id)]
    assert kinds == [("invitation", "sent"), ("reminder", "sent")]
    (_, sent_reminder) = messages_of(ctx, invitation_id)
    assert sent_reminder.sent_at == T0 + timedelta(days=15)


def test_no_reminder_unless_the_member_ticked_it(ctx: Context) -> None:
    add_members(ctx)
    answer = by_email(send_invites(ctx, "ana", [BO], T0, reminders=0))
    transport = MemoryTransport()
    for instant in (T0 + UNDO, T0 + 15 * DAY, T0 + 30 * DAY, T0 + 60 * DAY):
        run_pass(ctx, instant, transport)
    assert [o.kind for o in transport.sent] == ["invitation"]
    assert [m.kind for m in messages_of(ctx, answer[BO]["id"])] == ["invitation"]
    assert count(ctx, messages, messages.c.kind == "reminder") == 0


def test_an_unanswered_invitation_expires_and_drops_its_address(ctx: Context) -> None:
    add_members(ctx)
    answer = by_email(send_invites(ctx, "ana", [BO], T0))
    invitation_id = answer[BO]["id"]
    transport = MemoryTransport()
    run_pass(ctx, T0 + UNDO, transport)

    report = run_pass(ctx, T0 + 30 * DAY, transport)
    assert report.expired == 0
    assert invitation(ctx, invitation_id).address == BO

    report = run_pass(ctx, T0 + 30 * DAY + UNDO, transport)
    assert report.expired == 1
    row = invitation(ctx, invitation_id)
    assert (row.state, row.address) == ("expired", None)
    assert row.recipient_digest == ctx.digest_email(BO)
    assert len(transport.sent) == 1
    moves = [p for e, p in ledger_events(ctx) if e == "invitation.state"]
    assert {"from": "sent", "to": "expired"}.items() <= moves[-1].items()


def test_contacts_are_purged_a_day_after_their_import_picked_or_not(ctx: Context) -> None:
    add_members(ctx)
    records = [ContactInput(BO, "Bo"), ContactInput(CY, "Cy"), ContactInput("dee@example.org")]
    report = import_contacts(ctx, "ana", records, "csv", T0)
    assert report.imported == 3
    assert {c["selected"] for c in list_contacts(ctx, "ana")} == {False}
    assert select_contacts(ctx, "ana", [CY], T0 + timedelta(minutes=1)) == 1
    later = import_contacts(ctx, "ana", [ContactInput("eve@example.org")], "csv", T0 + DAY)
    assert later.imported == 1

    assert run_pass(ctx, T0 + timedelta(hours=23), None).purged["contacts"] == 0
    assert count(ctx, contacts) == 4
    # Cy was picked and never invited: a pick keeps nobody past the day.
    purged = run_pass(ctx, T0 + timedelta(hours=25), None).purged
    assert purged["contacts"] == 3
    assert [c["email"] for c in list_contacts(ctx, "ana")] == ["eve@example.org"]
    assert ("data.purged", {"contacts": 3, "answers": 0}) in ledger_events(ctx)


def test_an_expired_lease_becomes_unknown_and_is_never_sent(ctx: Context) -> None:
    add_members(ctx)
    answer = by_email(send_invites(ctx, "ana", [BO], T0))
    (message,) = messages_of(ctx, answer[BO]["id"])
    # A worker claimed it and vanished before recording the outcome.
    with ctx.engine.begin() as connection:
        connection.execute(
            update(messages)
            .where(messages.c.id == message.id)
            .values(state="sending", lease_until=T0 + UNDO + timedelta(minutes=5), attempts=1)
        )
    transport = MemoryTransport()

    report = run_pass(ctx, T0 + timedelta(minutes=30), transport)
    assert report.unknown == 1
    (message,) = messages_of(ctx, answer[BO]["id"])
    assert message.state == "unknown"
    for instant in (T0 + timedelta(hours=1), T0 + 15 * DAY):
        assert run_pass(ctx, instant, transport).unknown == 0
    assert transport.sent == []
    (message,) = messages_of(ctx, answer[BO]["id"])
    assert (message.state, message.sent_at) == ("unknown", None)
    assert invitation(ctx, answer[BO]["id"]).sent_at is None


def test_a_lease_still_running_is_left_alone(ctx: Context) -> None:
    add_members(ctx)
    answer = by_email(send_invites(ctx, "ana", [BO], T0))
    with ctx.engine.begin() as connection:
        connection.execute(
            update(messages)
            .where(messages.c.invitation_id == answer[BO]["id"])
            .values(state="sending", lease_until=T0 + timedelta(minutes=15))
        )
    transport = MemoryTransport()
    assert run_pass(ctx, T0 + timedelta(minutes=12), transport).unknown == 0
    assert [m.state for m in messages_of(ctx, answer[BO]["id"])] == ["sending"]
    assert transport.sent == []


def test_without_a_transport_allowed_messages_wait(ctx: Context) -> None:
    add_members(ctx)
    answer = by_email(send_invites(ctx, "ana", [BO, CY], T0, reminders=1))

    report = run_pass(ctx, T0 + UNDO, None)
    assert (report.waiting, report.sent, report.cancelled) == (2, 0, 0)
    for item in answer.values():
        (message,) = messages_of(ctx, item["id"])
        assert (message.state, message.sent_at) == ("scheduled", None)
        row = invitation(ctx, item["id"])
        assert (row.state, row.sent_at) == ("scheduled", None)
    assert count(ctx, messages, messages.c.state == "sent") == 0
    assert count(ctx, messages, messages.c.kind == "reminder") == 0

    # Nothing was lost: the next pass with a transport sends them.
    transport = MemoryTransport()
    assert run_pass(ctx, T0 + timedelta(minutes=11), transport).sent == 2
    assert sorted(o.to for o in transport.sent) == [BO, CY]
