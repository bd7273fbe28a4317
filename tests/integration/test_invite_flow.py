"""The member's and the recipient's use cases against a real store (both engines).

register_member, preview and invite, idempotency, every decision kept, withdraw, revoke,
unsubscribe, joined and forget, each checked in the rows it leaves behind.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, select, text
from support import (
    MEMBER_RULE_CODES,
    RULE_CODES,
    T0,
    WRITTEN_BY_INVITE,
    add_members,
    all_stored_text,
    by_email,
    count,
    counts,
    invitation,
    ledger_events,
    messages_of,
    request_for,
    rows,
    send_invites,
    verdicts_of,
)

from courtois.delivery.transport import MemoryTransport
from courtois.domain.contacts import ContactInput
from courtois.domain.errors import Conflict, InvalidInput, NotFound
from courtois.services.contacts import import_contacts, list_contacts
from courtois.services.context import Context
from courtois.services.invitations import ConsentInput, invite
from courtois.services.lifecycle import revoke_consent, withdraw
from courtois.services.members import get_member, register_member
from courtois.services.previews import preview_invitations
from courtois.services.recipients import forget_recipient, mark_joined, unsubscribe
from courtois.services.worker import run_pass
from courtois.store.engine import WRITE_OPTION
from courtois.store.tables import (
    consent_recipients,
    consents,
    contacts,
    decisions,
    idempotency_keys,
    invitations,
    ledger,
    members,
    messages,
    recipients,
)

UNDO = timedelta(minutes=10)
BO, CY, DEE = "bo@example.com", "cy@example.com", "dee@example.org"


def outcome_of(verdicts: list[dict[str, object]], rule: str) -> object:
    (verdict,) = [v for v in verdicts if v["rule"] == rule]
    return verdict["outcome"]


# --- register_member --------------------------------------------------------------------------


def test_register_member_creates_then_updates_the_same_row(ctx: Context) -> None:
    created = register_member(ctx, "ana", " Ana@Example.com ", "Ana", "en", T0)
    assert created.email == "Ana@example.com"
    updated = register_member(ctx, "ana", "ana.new@example.com", "Ana B.", "fr-FR", T0 + UNDO)

    assert updated.locale == "fr"
    assert get_member(ctx, "ana") == updated
    (row,) = rows(ctx, members)
    assert (row.email, row.name, row.locale) == ("ana.new@example.com", "Ana B.", "fr")
    assert row.email_digest == ctx.digest_email("ANA.NEW@example.com")
    assert (row.created_at, row.updated_at) == (T0, T0 + UNDO)
    registered = [p for e, p in ledger_events(ctx) if e == "member.registered"]
    assert registered == [{"member": "ana", "new": True}, {"member": "ana", "new": False}]


BAD_MEMBERS: list[dict[str, str]] = [
    {"member_id": ""},
    {"member_id": "ana bo"},
    {"member_id": "-ana"},
    {"member_id": "ana\r\nx"},
    {"member_id": "a" * 129},
    {"name": "Ana\r\nBcc: eve@example.com"},
    {"name": "Ana\nBo"},
    {"name": "Ana\rBo"},
    {"name": "Ana\u2028Bo"},
    {"name": "   "},
    {"name": "A" * 121},
    {"locale": "de"},
    {"locale": "en\r\nX-Evil: 1"},
    {"email": "not-an-address"},
    {"email": "ana@example.com\r\nBcc: eve@example.com"},
]


def test_bad_member_fields_are_refused_and_nothing_is_written(ctx: Context) -> None:
    register_member(ctx, "ana", "ana@example.com", "Ana", "en", T0)
    before = counts(ctx, (members, ledger))
    good = {"member_id": "zed", "email": "zed@example.com", "name": "Zed", "locale": "en"}
    for change in BAD_MEMBERS:
        fields = {**good, **change}
        with pytest.raises(InvalidInput):
            register_member(ctx, now=T0, **fields)
        # An update of an existing member with a bad field changes nothing either.
        if "member_id" not in change:
            with pytest.raises(InvalidInput):
                register_member(ctx, now=T0, **{**fields, "member_id": "ana"})
    assert counts(ctx, (members, ledger)) == before
    assert get_member(ctx, "ana").name == "Ana"


def test_member_id_with_a_trailing_line_feed_is_refused(ctx: Context) -> None:
    before = counts(ctx, (members, ledger))
    with pytest.raises(InvalidInput):
        register_member(ctx, "ana\n", "ana@example.com", "Ana", "en", T0)
    assert counts(ctx, (members, ledger)) == before


# --- preview and invite -----------------------------------------------------------------------


def test_invite_records_the_consent_and_schedules_after_the_undo_window(ctx: Context) -> None:
    add_members(ctx)
    preview = preview_invitations(ctx, "ana", 2, "See you there!", None, 1)
    assert "Ana" in preview.subject
    assert "Agora" in preview.subject
    assert "See you there!" in preview.text
    assert "2 people" in preview.consent_text
    assert "one reminder" in preview.consent_text

    request = request_for(ctx, "ana", [BO, "CY@example.com"], reminders=1, note="See you there!")
    assert request.preview_hash == preview.preview_hash
    answer = invite(ctx, request, T0)

    (consent,) = rows(ctx, consents)
    assert answer["consent_id"] == consent.id
    assert consent.preview_hash == preview.preview_hash
    assert consent.text_shown == preview.consent_text
    assert (consent.reminders, consent.member_id, consent.given_at) == (1, "ana", T0)
    assert consent.revoked_at is None
    named = {r.recipient_digest for r in rows(ctx, consent_recipients)}
    assert named == {ctx.digest_email(BO), ctx.digest_email(CY)}

    assert sorted(i["email"] for i in answer["invitations"]) == ["CY@example.com", BO]
    for item in answer["invitations"]:
        assert item["status"] == "scheduled"
        assert item["scheduled_at"] == (T0 + UNDO).isoformat()
        assert item["decision"]["allowed"] is True
        assert [v["rule"] for v in item["decision"]["verdicts"]] == MEMBER_RULE_CODES
        row = invitation(ctx, item["id"])
        assert (row.state, row.address, row.consent_id) == ("scheduled", item["email"], consent.id)
        (message,) = messages_of(ctx, item["id"])
        assert (message.state, message.kind) == ("scheduled", "invitation")
        assert message.scheduled_at == T0 + UNDO
    events = [e for e, _ in ledger_events(ctx)]
    assert events.count("consent.given") == 1
    assert events.count("decision") == 2


def test_a_stale_preview_hash_is_a_conflict_and_writes_nothing(ctx: Context) -> None:
    add_members(ctx)
    old = request_for(ctx, "ana", [BO], note="first note")
    before = counts(ctx)
    with pytest.raises(Conflict):
        invite(ctx, dataclasses.replace(old, note="a different note"), T0)
    assert counts(ctx) == before
    # The member renamed themselves after the preview: the message they saw is not the one
    # that would go out under their name.
    register_member(ctx, "ana", "ana@example.com", "Ana Renamed", "en", T0)
    before = counts(ctx)
    with pytest.raises(Conflict):
        invite(ctx, old, T0)
    with pytest.raises(Conflict):
        invite(ctx, dataclasses.replace(old, preview_hash="0" * 64), T0)
    assert counts(ctx) == before


def test_a_consent_text_that_does_not_match_is_refused(ctx: Context) -> None:
    add_members(ctx)
    one = request_for(ctx, "ana", [BO])
    with_reminder = request_for(ctx, "ana", [BO], reminders=1)
    before = counts(ctx)
    # Shown a consent for one person, but the request names two.
    with pytest.raises(Conflict):
        invite(ctx, dataclasses.replace(one, emails=(BO, CY)), T0)
    # Shown a consent without the reminder, but the request asks for one.
    with pytest.raises(Conflict):
        invite(ctx, dataclasses.replace(with_reminder, consent=one.consent), T0)
    with pytest.raises(Conflict):
        invite(ctx, dataclasses.replace(one, consent=ConsentInput("I agree.")), T0)
    with pytest.raises(InvalidInput):
        invite(ctx, dataclasses.replace(one, consent=ConsentInput("  ")), T0)
    assert counts(ctx) == before


def test_one_invalid_address_refuses_the_whole_request(ctx: Context) -> None:
    add_members(ctx)
    request = request_for(ctx, "ana", [BO, CY, DEE])
    bad = dataclasses.replace(request, emails=(BO, "not an address", CY))
    before = counts(ctx)
    with pytest.raises(InvalidInput) as raised:
        invite(ctx, bad, T0)
    assert list(raised.value.details) == ["emails[1]"]  # by position: the address is not echoed
    with pytest.raises(InvalidInput):
        invite(ctx, dataclasses.replace(request, emails=()), T0)
    assert counts(ctx) == before
    assert before["consents"] == before["invitations"] == before["messages"] == 0


def test_unknown_member_cannot_preview_or_invite(ctx: Context) -> None:
    add_members(ctx)
    request = request_for(ctx, "ana", [BO])
    before = counts(ctx)
    with pytest.raises(NotFound):
        preview_invitations(ctx, "nobody", 1, "", None, 0)
    with pytest.raises(NotFound):
        invite(ctx, dataclasses.replace(request, member_id="nobody"), T0)
    assert counts(ctx) == before


def test_an_idempotency_key_replays_the_first_answer_and_creates_nothing(ctx: Context) -> None:
    add_members(ctx)
    request = request_for(ctx, "ana", [BO, CY], reminders=1)
    first = invite(ctx, request, T0, idempotency_key="click-1")
    after_first = counts(ctx)

    again = invite(ctx, request, T0 + timedelta(seconds=3), idempotency_key="click-1")
    assert again == first
    assert counts(ctx) == after_first

    other = request_for(ctx, "ana", [DEE])
    with pytest.raises(Conflict):
        invite(ctx, other, T0 + timedelta(seconds=5), idempotency_key="click-1")
    assert counts(ctx) == after_first
    # The key is scoped to the member: Bruno may use the same key for his own request.
    bruno = invite(ctx, request_for(ctx, "bruno", [DEE]), T0, idempotency_key="click-1")
    assert bruno["consent_id"] != first["consent_id"]
    assert count(ctx, consents) == 2


@pytest.mark.parametrize("change", ["language", "name", "policy"])
def test_a_repeat_gets_the_first_answer_whatever_would_be_refused_now(
    ctx: Context, change: str
) -> None:
    """Recorded, then the member's language (the consent sentence's), their name (the
    email's) or the operator's policy (no more reminders) changed: the same request with
    the same key was done, and is answered so, not refused as stale (invariant 8)."""
    add_members(ctx)
    register_member(ctx, "ana", "ana@example.com", "Ana", "fr", T0)
    request = request_for(ctx, "ana", [BO, CY], reminders=1, locale="fr")
    first = invite(ctx, request, T0, idempotency_key="retry-1")
    after_first = counts(ctx)
    later = T0 + timedelta(minutes=2)
    if change == "language":
        register_member(ctx, "ana", "ana@example.com", "Ana", "en", later)
    elif change == "name":
        register_member(ctx, "ana", "ana@example.com", "Ana Lima", "fr", later)
    else:
        policy = dataclasses.replace(ctx.settings.policy, reminder_cap=0)
        ctx = dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings, policy=policy))
    written = counts(ctx)
    assert invite(ctx, request, later, idempotency_key="retry-1") == first
    assert counts(ctx) == written
    assert (written["consents"], written["invitations"]) == (
        after_first["consents"],
        after_first["invitations"],
    )
    # Without the key it is a new request, checked against what it would send now.
    with pytest.raises((Conflict, InvalidInput)):
        invite(ctx, request, later)


def test_the_same_key_with_other_words_is_a_reused_key_not_a_repeat(ctx: Context) -> None:
    """The note and the language asked for are part of the request: with the first
    request's preview hash and sentence but other words, the same key is refused as
    reused (answered before any check, a stale hash must not pass for a repeat)."""
    add_members(ctx)
    request = request_for(ctx, "ana", [BO], note="first note")
    invite(ctx, request, T0, idempotency_key="words-1")
    before = counts(ctx)
    for other in (
        dataclasses.replace(request, note="another note"),
        dataclasses.replace(request, locale="fr"),
    ):
        with pytest.raises(Conflict) as raised:
            invite(ctx, other, T0, idempotency_key="words-1")
        assert "key" in raised.value.details
    assert counts(ctx) == before


def test_an_answer_kept_by_the_earlier_release_is_still_replayed(ctx: Context) -> None:
    """Answers stored before the fingerprint took in the note and the language (kept a
    day): the same request still gets its answer, once checked as that release did."""
    from courtois.services.idempotency import request_hash

    add_members(ctx)
    request = request_for(ctx, "ana", [BO], note="first note")
    first = invite(ctx, request, T0, idempotency_key="old-1")
    (digest,) = [r.recipient_digest for r in rows(ctx, invitations)]
    earlier = request_hash(
        {
            "member": "ana",
            "emails": [digest],
            "hash": request.preview_hash,
            "reminders": 0,
            "text": request.consent.text_shown,
        }
    )
    with ctx.engine.begin() as connection:
        connection.execute(idempotency_keys.update().values(request_hash=earlier))
    before = counts(ctx)
    assert invite(ctx, request, T0, idempotency_key="old-1") == first
    with pytest.raises(Conflict) as raised:
        invite(ctx, dataclasses.replace(request, note="other"), T0, idempotency_key="old-1")
    assert "preview_hash" in raised.value.details
    assert counts(ctx) == before


def test_a_double_click_racing_the_first_request_gets_the_first_answer(ctx: Context) -> None:
    """Both clicks arrive while the first is still in flight: the repeat must wait for the
    first answer, not invite again nor fail on the stored key (invariant 8)."""
    add_members(ctx)
    invite_request = request_for(ctx, "ana", [BO, CY])
    before = counts(ctx)
    answers: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def click() -> None:
        try:
            answers.append(invite(ctx, invite_request, T0, idempotency_key="double-click"))
        except BaseException as error:  # a failure in the thread must reach the test
            errors.append(error)

    # Another transaction holds the member's row while both clicks arrive.
    with ctx.engine.connect().execution_options(**{WRITE_OPTION: True}) as holder:
        holder.begin()
        holder.execute(select(members.c.id).where(members.c.id == "ana").with_for_update())
        threads = [threading.Thread(target=click) for _ in range(2)]
        for thread in threads:
            thread.start()
        _wait_until_blocked(holder, waiting=2)
        holder.rollback()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert len(answers) == 2
    assert answers[0] == answers[1]
    after = counts(ctx)
    assert after["consents"] == before["consents"] + 1
    assert after["invitations"] == before["invitations"] + 2


def _wait_until_blocked(holder: Connection, waiting: int) -> None:
    """On PostgreSQL, until `waiting` sessions wait on the holder's locks; SQLite's writers
    wait at BEGIN IMMEDIATE, which nothing exposes, so give them a moment there."""
    if holder.dialect.name != "postgresql":
        time.sleep(0.5)
        return
    # Any session of this database waiting on a heavyweight lock is one of the clicks: the
    # tests run one at a time, and the clicks queue on the member row the holder locked.
    query = text(
        "select count(*) from pg_stat_activity"
        " where wait_event_type = 'Lock' and datname = current_database()"
    )
    deadline = time.monotonic() + 30
    # pg_stat_activity is a snapshot taken once per transaction: clear it on every look.
    while holder.execute(text("select pg_stat_clear_snapshot()")) and (
        holder.execute(query).scalar_one() < waiting
    ):
        assert time.monotonic() < deadline, "the requests never reached the member's lock"
        time.sleep(0.05)


def test_every_decision_is_stored_with_all_ten_verdicts_in_chain_order(ctx: Context) -> None:
    add_members(ctx)
    unsubscribe(ctx, ctx.digest_email(DEE), T0)
    answer = by_email(send_invites(ctx, "ana", [BO, DEE, "Bruno@Example.com"], T0))

    assert answer[BO]["status"] == "scheduled"
    assert answer[DEE]["status"] == "blocked"
    assert answer["bruno@example.com"]["status"] == "blocked"
    expected = {
        BO: {"undo-window-elapsed": "defer"},
        DEE: {"not-unsubscribed": "deny", "undo-window-elapsed": "defer"},
        "bruno@example.com": {"not-a-member": "deny", "undo-window-elapsed": "defer"},
    }
    for email, item in answer.items():
        (stored,) = verdicts_of(ctx, item["id"])
        assert [v["rule"] for v in stored] == RULE_CODES
        for verdict in stored:
            assert verdict["outcome"] == expected[email].get(str(verdict["rule"]), "allow")
            assert verdict["reason"]
        # An unavailable recipient's list ends at that verdict, whatever made them so.
        shown = MEMBER_RULE_CODES
        if email == DEE:
            shown = MEMBER_RULE_CODES[: MEMBER_RULE_CODES.index("recipient-available") + 1]
        assert [v["rule"] for v in item["decision"]["verdicts"]] == shown
    (row,) = rows(ctx, decisions, decisions.c.invitation_id == answer[DEE]["id"])
    assert (row.outcome, row.stage, row.kind, row.message_id) == (
        "deny",
        "queue",
        "invitation",
        None,
    )
    assert row.recipient_digest == ctx.digest_email(DEE)
    # The member sees "unavailable" for an opt-out, never why (invariant 11).
    public = {v["rule"]: v["reason"] for v in answer[DEE]["decision"]["verdicts"]}
    assert public["recipient-available"] == "unavailable"
    assert "not-unsubscribed" not in public
    assert "unsubscribed from" not in repr(answer[DEE])
    # A refused invitation keeps no address and has no message.
    assert invitation(ctx, answer[DEE]["id"]).address is None
    assert messages_of(ctx, answer[DEE]["id"]) == []
    assert count(ctx, decisions) == 3


def test_a_member_invites_a_person_once(ctx: Context) -> None:
    add_members(ctx)
    first = by_email(send_invites(ctx, "ana", [BO, CY], T0))
    # Still waiting to go: asking again is refused.
    again = by_email(send_invites(ctx, "ana", ["Bo@Example.com"], T0 + timedelta(minutes=1)))
    assert again[BO]["status"] == "blocked"
    (stored,) = verdicts_of(ctx, again[BO]["id"])
    assert outcome_of(stored, "not-already-invited") == "deny"
    assert outcome_of(stored, "recipient-quota") == "defer"

    # Sent: still refused, long after.
    transport = MemoryTransport()
    run_pass(ctx, T0 + UNDO, transport)
    assert len(transport.sent) == 2
    later = by_email(send_invites(ctx, "ana", [BO], T0 + timedelta(days=200)))
    assert later[BO]["status"] == "blocked"
    (stored,) = verdicts_of(ctx, later[BO]["id"])
    assert outcome_of(stored, "not-already-invited") == "deny"

    # Withdrawn before it left: it may be made again.
    dee = by_email(send_invites(ctx, "ana", [DEE], T0 + timedelta(days=1)))
    withdraw(ctx, dee[DEE]["id"], T0 + timedelta(days=1, minutes=1))
    redo = by_email(send_invites(ctx, "ana", [DEE], T0 + timedelta(days=2)))
    assert redo[DEE]["status"] == "scheduled"
    # Another member inviting the same person is a different invitation (spaced by quota).
    other = by_email(send_invites(ctx, "bruno", [CY], T0 + timedelta(days=2)))
    assert other[CY]["status"] == "scheduled"
    assert first[CY]["id"] != other[CY]["id"]


# --- withdraw and revoke ----------------------------------------------------------------------


def test_withdraw_stops_a_scheduled_invitation(ctx: Context) -> None:
    add_members(ctx)
    answer = by_email(send_invites(ctx, "ana", [BO, CY], T0))
    bo_id = answer[BO]["id"]

    with pytest.raises(NotFound):
        withdraw(ctx, bo_id, T0 + timedelta(minutes=4), member_id="bruno")
    assert withdraw(ctx, bo_id, T0 + timedelta(minutes=5), member_id="ana") == "withdrawn"

    row = invitation(ctx, bo_id)
    assert (row.state, row.address) == ("withdrawn", None)
    assert row.updated_at == T0 + timedelta(minutes=5)
    (message,) = messages_of(ctx, bo_id)
    assert message.state == "cancelled"
    # The other invitation of the same consent is untouched.
    assert invitation(ctx, answer[CY]["id"]).state == "scheduled"
    assert invitation(ctx, answer[CY]["id"]).address == CY
    assert [p for e, p in ledger_events(ctx) if e == "invitation.state"] == [
        {
            "invitation": bo_id,
            "from": "scheduled",
            "to": "withdrawn",
            "reason": "withdrawn by the member",
        }
    ]

    before = counts(ctx)
    with pytest.raises(Conflict):
        withdraw(ctx, bo_id, T0 + timedelta(minutes=6))
    with pytest.raises(NotFound):
        withdraw(ctx, "00000000-0000-0000-0000-000000000000", T0 + timedelta(minutes=6))
    assert counts(ctx) == before


def test_revoking_a_consent_cancels_unsent_messages_and_reminders(ctx: Context) -> None:
    add_members(ctx)
    transport = MemoryTransport()
    # Cy just got Bruno's invitation, so Ana's invitation to Cy has to wait for the quota.
    send_invites(ctx, "bruno", [CY], T0)
    run_pass(ctx, T0 + UNDO, transport)
    hour = T0 + timedelta(hours=1)
    answer = send_invites(ctx, "ana", [BO, CY], hour, reminders=1)
    ana = by_email(answer)
    assert ana[CY]["status"] == "scheduled"

    run_pass(ctx, hour + UNDO, transport)
    assert [o.member_names for o in transport.sent] == [("Bruno",), ("Ana",)]
    assert transport.sent[1].to == BO
    assert invitation(ctx, ana[BO]["id"]).state == "sent"
    assert [m.kind for m in messages_of(ctx, ana[BO]["id"])] == ["invitation", "reminder"]
    assert invitation(ctx, ana[CY]["id"]).state == "scheduled"
    assert [m.state for m in messages_of(ctx, ana[CY]["id"])] == ["scheduled"]

    revoked_at = hour + timedelta(hours=1)
    result = revoke_consent(ctx, answer["consent_id"], revoked_at, member_id="ana")
    assert result == {"withdrawn": 1, "reminders_cancelled": 1, "already_leaving": 0}
    (consent,) = rows(ctx, consents, consents.c.id == answer["consent_id"])
    assert consent.revoked_at == revoked_at
    under = select(invitations.c.id).where(invitations.c.consent_id == answer["consent_id"])
    pending = count(
        ctx, messages, messages.c.invitation_id.in_(under) & (messages.c.state == "scheduled")
    )
    assert pending == 0
    assert invitation(ctx, ana[CY]["id"]).state == "withdrawn"
    assert invitation(ctx, ana[BO]["id"]).state == "sent"
    assert [m.state for m in messages_of(ctx, ana[BO]["id"])] == ["sent", "cancelled"]

    for days in (15, 30, 60):
        run_pass(ctx, T0 + timedelta(days=days), transport)
    assert [o.member_names for o in transport.sent] == [("Bruno",), ("Ana",)]

    with pytest.raises(Conflict):
        revoke_consent(ctx, answer["consent_id"], T0 + timedelta(days=61))
    with pytest.raises(NotFound):
        revoke_consent(ctx, "no-such-consent", T0 + timedelta(days=61))
    (bruno_consent,) = [c.id for c in rows(ctx, consents, consents.c.member_id == "bruno")]
    with pytest.raises(NotFound):
        revoke_consent(ctx, bruno_consent, T0 + timedelta(days=61), member_id="ana")


# --- the recipient's word ---------------------------------------------------------------------


def test_unsubscribing_from_everyone_is_final(ctx: Context) -> None:
    add_members(ctx)
    answer = by_email(send_invites(ctx, "ana", [BO, CY], T0))
    digest = ctx.digest_email("BO@example.com")

    # (The "cancelled" count only covers messages of invitations that stay open, such as
    # reminders; the blocked invitation's own message is cancelled with it.)
    assert unsubscribe(ctx, digest, T0 + timedelta(minutes=5))["blocked"] == 1
    row = invitation(ctx, answer[BO]["id"])
    assert (row.state, row.address) == ("blocked", None)
    assert [m.state for m in messages_of(ctx, answer[BO]["id"])] == ["cancelled"]
    assert invitation(ctx, answer[CY]["id"]).state == "scheduled"
    transport = MemoryTransport()
    run_pass(ctx, T0 + timedelta(hours=1), transport)
    assert [o.to for o in transport.sent] == [CY]

    # Bruno imports the address later and invites it: still refused, nothing lifts it.
    report = import_contacts(ctx, "bruno", [ContactInput(BO, "Bo")], "csv", T0 + timedelta(days=1))
    assert report.records == 1
    assert report.rejected == []
    later = by_email(send_invites(ctx, "bruno", [BO], T0 + timedelta(days=1)))
    assert later[BO]["status"] == "blocked"
    (stored,) = verdicts_of(ctx, later[BO]["id"])
    assert outcome_of(stored, "not-unsubscribed") == "deny"
    assert later[BO]["decision"]["allowed"] is False
    (recipient,) = rows(ctx, recipients, recipients.c.digest == digest)
    assert recipient.unsubscribed_at == T0 + timedelta(minutes=5)
    # Unsubscribing again is harmless and keeps the first date.
    unsubscribe(ctx, digest, T0 + timedelta(days=2))
    (recipient,) = rows(ctx, recipients, recipients.c.digest == digest)
    assert recipient.unsubscribed_at == T0 + timedelta(minutes=5)


def test_unsubscribing_from_one_member_stops_only_that_member(ctx: Context) -> None:
    add_members(ctx)
    ana = by_email(send_invites(ctx, "ana", [CY], T0))
    bruno = by_email(send_invites(ctx, "bruno", [CY], T0 + timedelta(minutes=1)))
    digest = ctx.digest_email(CY)
    import_contacts(ctx, "ana", [ContactInput(CY)], "csv", T0)
    import_contacts(ctx, "bruno", [ContactInput(CY)], "csv", T0)

    result = unsubscribe(ctx, digest, T0 + timedelta(minutes=5), from_member="ana")
    assert result["blocked"] == 1
    assert [m.state for m in messages_of(ctx, ana[CY]["id"])] == ["cancelled"]
    assert invitation(ctx, ana[CY]["id"]).state == "blocked"
    assert invitation(ctx, ana[CY]["id"]).address is None
    assert invitation(ctx, bruno[CY]["id"]).state == "scheduled"
    assert invitation(ctx, bruno[CY]["id"]).address == CY
    assert [c["email"] for c in list_contacts(ctx, "ana")] == []
    assert [c["email"] for c in list_contacts(ctx, "bruno")] == [CY]

    # A later import by Ana does not lift it; her new invitation is refused.
    import_contacts(ctx, "ana", [ContactInput(CY)], "vcard", T0 + timedelta(days=1))
    again = by_email(send_invites(ctx, "ana", [CY], T0 + timedelta(days=1)))
    assert again[CY]["status"] == "blocked"
    (stored,) = verdicts_of(ctx, again[CY]["id"])
    assert outcome_of(stored, "not-unsubscribed") == "deny"
    assert outcome_of(stored, "not-already-invited") == "allow"

    # Bruno's invitation still leaves, once its turn comes.
    transport = MemoryTransport()
    run_pass(ctx, T0 + timedelta(days=15), transport)
    assert [(o.to, o.member_names) for o in transport.sent] == [(CY, ("Bruno",))]


def test_a_joined_recipient_accepts_sent_invitations_and_blocks_scheduled_ones(
    ctx: Context,
) -> None:
    add_members(ctx)
    ana = by_email(send_invites(ctx, "ana", [BO], T0, reminders=1))
    transport = MemoryTransport()
    run_pass(ctx, T0 + UNDO, transport)
    assert invitation(ctx, ana[BO]["id"]).state == "sent"
    bruno = by_email(send_invites(ctx, "bruno", [BO, CY], T0 + timedelta(hours=1)))
    assert bruno[BO]["status"] == "scheduled"

    result = mark_joined(ctx, ctx.digest_email(BO), T0 + timedelta(hours=2))
    assert result == {"accepted": 1, "blocked": 1}
    accepted = invitation(ctx, ana[BO]["id"])
    assert (accepted.state, accepted.answered_at, accepted.address) == (
        "accepted",
        T0 + timedelta(hours=2),
        None,
    )
    assert [m.state for m in messages_of(ctx, ana[BO]["id"])] == ["sent", "cancelled"]
    assert invitation(ctx, bruno[BO]["id"]).state == "blocked"
    assert [m.state for m in messages_of(ctx, bruno[BO]["id"])] == ["cancelled"]
    assert invitation(ctx, bruno[CY]["id"]).state == "scheduled"

    later = by_email(send_invites(ctx, "bruno", ["bo@EXAMPLE.com"], T0 + timedelta(days=1)))
    assert later[BO]["status"] == "blocked"
    (stored,) = verdicts_of(ctx, later[BO]["id"])
    assert outcome_of(stored, "not-a-member") == "deny"
    sent_before = len(transport.sent)
    run_pass(ctx, T0 + timedelta(days=40), transport)
    assert all(o.to != BO for o in transport.sent[sent_before:])


def test_forget_keeps_only_the_digest_and_stays_opted_out(ctx: Context, tmp_path: Path) -> None:
    add_members(ctx)
    ana = by_email(send_invites(ctx, "ana", [BO, CY], T0, key="k-1"))
    import_contacts(ctx, "bruno", [ContactInput(BO, "Bo"), ContactInput(DEE)], "csv", T0)
    run_pass(ctx, T0 + UNDO, MemoryTransport())
    assert invitation(ctx, ana[BO]["id"]).state == "sent"
    assert BO in all_stored_text(ctx)
    digest = ctx.digest_email(BO)

    result = forget_recipient(ctx, digest, T0 + timedelta(hours=1))
    assert result == {"blocked": 0, "declined": 1, "contacts": 1}
    assert count(ctx, invitations, invitations.c.address == BO) == 0
    assert all(
        r.address is None for r in rows(ctx, invitations, invitations.c.recipient_digest == digest)
    )
    assert count(ctx, contacts, contacts.c.recipient_digest == digest) == 0
    assert [c["email"] for c in list_contacts(ctx, "bruno")] == [DEE]
    # The stored API answer quoted the address; it no longer does, and is kept for repeats.
    assert count(ctx, idempotency_keys) == 1
    assert BO not in all_stored_text(ctx)
    (recipient,) = rows(ctx, recipients, recipients.c.digest == digest)
    assert recipient.forgotten_at == recipient.unsubscribed_at == T0 + timedelta(hours=1)
    if ctx.engine.dialect.name == "sqlite":
        database = ctx.engine.url.database
        assert database is not None
        raw = Path(database).read_bytes() + _wal_bytes(Path(database))
        assert BO.encode() not in raw.lower()

    # A later import and invitation do not bring the address back into use.
    import_contacts(ctx, "bruno", [ContactInput(BO)], "csv", T0 + timedelta(days=1))
    assert count(ctx, contacts, contacts.c.recipient_digest == digest) == 0
    later = by_email(send_invites(ctx, "bruno", [BO], T0 + timedelta(days=1)))
    assert later[BO]["status"] == "blocked"
    (stored,) = verdicts_of(ctx, later[BO]["id"])
    assert outcome_of(stored, "not-unsubscribed") == "deny"
    assert invitation(ctx, later[BO]["id"]).address is None


def _wal_bytes(database: Path) -> bytes:
    wal = database.with_name(database.name + "-wal")
    return wal.read_bytes() if wal.exists() else b""


def test_every_written_table_is_untouched_by_refused_requests(ctx: Context) -> None:
    """A sweep over the refusals of this file: none leaves a row anywhere it could."""
    add_members(ctx)
    send_invites(ctx, "ana", [BO], T0)
    before = counts(ctx, (*WRITTEN_BY_INVITE, members, contacts))
    request = request_for(ctx, "ana", [CY])
    refusals = [
        lambda: invite(ctx, dataclasses.replace(request, emails=(CY, "@@")), T0),
        lambda: invite(ctx, dataclasses.replace(request, preview_hash="f" * 64), T0),
        lambda: invite(ctx, dataclasses.replace(request, reminders=2), T0),
        lambda: withdraw(ctx, "missing", T0),
        lambda: revoke_consent(ctx, "missing", T0),
        lambda: import_contacts(ctx, "nobody", [ContactInput(CY)], "csv", T0),
    ]
    for refuse in refusals:
        with pytest.raises((InvalidInput, Conflict, NotFound)):
            refuse()
    assert counts(ctx, (*WRITTEN_BY_INVITE, members, contacts)) == before
