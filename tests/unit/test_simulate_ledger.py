"""Ledger entries read as replay events: which entry stands for what, and what spans
several entries (a consent and its decisions, digests, reminders, worker passes)."""

from __future__ import annotations

from typing import Any

from simulate_support import MINUTE, T0

from courtois.policy.chain import CHAIN
from courtois.simulation import events as ev
from courtois.simulation.ledger import LedgerReader

ALL_ALLOW = {rule.code: "allow" for rule in CHAIN}


def decision(stage: str, kind: str, outcome: str, **extra: Any) -> dict[str, Any]:
    rules = {**ALL_ALLOW, **extra.pop("rules", {})}
    return {
        "invitation": extra.pop("invitation", "i1"),
        "message": extra.pop("message", "m1"),
        "member": extra.pop("member", "ana"),
        "recipient": extra.pop("recipient", "d1"),
        "kind": kind,
        "stage": stage,
        "outcome": outcome,
        "rules": rules,
        "reasons": [],
    }


def test_queue_decisions_become_requests_under_the_members_last_consent() -> None:
    reader = LedgerReader()
    assert (
        reader.read(T0, "consent.given", {"consent": "c1", "member": "ana", "reminders": 1}) == ()
    )
    reader.read(T0, "consent.given", {"consent": "c2", "member": "bo", "reminders": 0})
    recorded, requested = reader.read(T0, "decision", decision("queue", "invitation", "defer"))
    assert requested == ev.Requested(T0, "i1", "c1", "ana", "d1", 1)
    assert isinstance(recorded, ev.Recorded)
    assert (recorded.stage, recorded.outcome, recorded.shared) == ("queue", "defer", False)
    assert recorded.rules["sender-quota"] == "allow"


def test_only_a_lone_strict_eu_refusal_is_shared_by_the_member() -> None:
    reader = LedgerReader()
    alone = decision("queue", "invitation", "deny", rules={"strict-eu-no-email": "deny"})
    recorded, _ = reader.read(T0, "decision", alone)
    assert recorded.shared is True
    both = decision(
        "queue",
        "invitation",
        "deny",
        rules={"strict-eu-no-email": "deny", "not-unsubscribed": "deny"},
    )
    recorded, _ = reader.read(T0, "decision", both)
    assert recorded.shared is False


def test_a_recipients_remind_me_later_is_counted_not_replayed() -> None:
    (recorded,) = LedgerReader().read(T0, "decision", decision("queue", "reminder", "defer"))
    assert isinstance(recorded, ev.Recorded)


def test_the_first_worker_trace_at_an_instant_marks_a_pass() -> None:
    reader = LedgerReader()
    later = T0 + MINUTE
    expired = {"invitation": "i9", "from": "sent", "to": "expired", "reason": "no answer"}
    assert reader.read(T0, "invitation.state", expired) == (ev.WorkerPass(T0),)
    first = reader.read(T0, "decision", decision("send", "invitation", "allow"))
    assert [type(e) for e in first] == [ev.Recorded]
    second = reader.read(later, "decision", decision("send", "invitation", "allow"))
    assert [type(e) for e in second] == [ev.WorkerPass, ev.Recorded]
    purged = reader.read(later + MINUTE, "data.purged", {"contacts": 1, "answers": 0})
    assert purged == (ev.WorkerPass(later + MINUTE),)


def test_deliveries_know_digests_and_reminders() -> None:
    reader = LedgerReader()
    reader.read(T0, "decision", decision("send", "reminder", "allow", message="r1"))

    def move(message: str, source: str, target: str, reason: str) -> tuple[ev.Event, ...]:
        payload = {"message": message, "from": source, "to": target, "reason": reason}
        return reader.read(T0, "message.state", payload)

    move("m1", "scheduled", "sending", "claimed by the worker")
    move("m2", "scheduled", "sending", "carried by digest m1")
    move("r1", "scheduled", "sending", "claimed by the worker")
    assert move("m1", "sending", "sent", "accepted by the server") == (
        ev.RecordedDelivery(T0, carried=False, reminder=False, digest=True),
    )
    assert move("m2", "sending", "sent", "accepted by the server") == (
        ev.RecordedDelivery(T0, carried=True, reminder=False, digest=False),
    )
    assert move("r1", "sending", "sent", "accepted by the server") == (
        ev.RecordedDelivery(T0, carried=False, reminder=True, digest=False),
    )
    # Retried after a temporary refusal: it may leave in another digest, or alone.
    move("m3", "scheduled", "sending", "carried by digest m4")
    move("m3", "sending", "scheduled", "temporary refusal")
    assert move("m3", "sending", "sent", "accepted")[0].carried is False


def test_member_and_recipient_acts_are_told_from_their_consequences() -> None:
    reader = LedgerReader()

    def moved(target: str, reason: str) -> tuple[ev.Event, ...]:
        payload = {"invitation": "i1", "from": "sent", "to": target, "reason": reason}
        return reader.read(T0, "invitation.state", payload)

    assert moved("withdrawn", "withdrawn by the member") == (ev.Withdrawn(T0, "i1"),)
    assert moved("withdrawn", "consent revoked") == ()  # the revocation is replayed
    assert moved("accepted", "the recipient accepted") == (ev.Answered(T0, "i1", True),)
    assert moved("accepted", "the recipient joined") == ()  # the join is replayed
    assert moved("declined", "the recipient is not interested") == (ev.Answered(T0, "i1", False),)
    assert moved("declined", "the recipient asked to be forgotten") == ()
    assert moved("sent", "sent") == (ev.RecordedFirstSend(T0),)
    assert moved("blocked", "the recipient unsubscribed") == ()


def test_recipient_events_keep_who_and_how() -> None:
    reader = LedgerReader()
    everyone = {"recipient": "d1", "from": "everyone"}
    assert reader.read(T0, "recipient.unsubscribed", everyone) == (ev.Unsubscribed(T0, "d1", None),)
    from_ana = {"recipient": "d1", "from": "ana"}
    assert reader.read(T0, "recipient.unsubscribed", from_ana)[0].member == "ana"
    report = {"recipient": "d1", "reason": "complaint", "source": "report", "member": "ana"}
    assert reader.read(T0, "recipient.suppressed", report) == (
        ev.Suppressed(T0, "d1", "complaint", "ana", True),
    )
    refusal = {"recipient": "d1", "reason": "hard-bounce"}
    assert reader.read(T0, "recipient.suppressed", refusal) == (
        ev.Suppressed(T0, "d1", "hard-bounce", None, False),
    )
    assert reader.read(T0, "recipient.joined", {"recipient": "d1"}) == (ev.Joined(T0, "d1"),)
    assert reader.read(T0, "recipient.forgotten", {"recipient": "d1"}) == (ev.Forgotten(T0, "d1"),)
    assert reader.read(T0, "consent.revoked", {"consent": "c1", "member": "ana"}) == (
        ev.Revoked(T0, "c1"),
    )
    assert reader.read(T0, "contacts.imported", {"member": "ana", "count": 3}) == ()


def test_a_new_member_becomes_a_member_digest_only_when_registered() -> None:
    digests = {"ana": "da"}
    reader = LedgerReader(digests.get)
    assert reader.read(T0, "member.registered", {"member": "ana", "new": True}) == (
        ev.BecameMember(T0, "da"),
    )
    assert reader.read(T0, "member.registered", {"member": "ana", "new": False}) == ()
    assert reader.read(T0, "member.registered", {"member": "zed", "new": True}) == ()
    assert LedgerReader().read(T0, "member.registered", {"member": "ana", "new": True}) == ()
