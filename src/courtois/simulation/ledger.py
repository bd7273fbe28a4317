"""Reading the audit ledger as a replay's history.

The ledger holds every change in the order it was committed: consents, every decision with
each rule's outcome, invitation and message state changes, and the recipients' opt-outs,
joins, forget-me requests and suppressions. It is the one stream that has them all, dated
and in order; the tables keep only the latest state (a recipient's row keeps one
`unsubscribed_at`, and forgetting overwrites it).

Entries are matched on the reasons the services write (`withdrawn by the member`, ...)
where the event type alone does not tell a member's act from its consequences: a join
accepts the sent invitations and is replayed as the join, not as separate acceptances.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from courtois.domain.ledger import FROM_EVERYONE, EventType
from courtois.policy.rules import strict_eu
from courtois.simulation import events as ev

# The reasons (written by courtois.services) that mark a member's or recipient's own act.
WITHDRAWN_BY_MEMBER = "withdrawn by the member"
ACCEPTED_BY_RECIPIENT = "the recipient accepted"
DECLINED_BY_RECIPIENT = "the recipient is not interested"
CARRIED_PREFIX = "carried by digest "
LEASE_EXPIRED = "worker lease expired"

_NOTHING: tuple[ev.Event, ...] = ()
Payload = Mapping[str, Any]
# The address digest a member registered with (the ledger names members by id only).
MemberDigest = Callable[[str], str | None]


class LedgerReader:
    """Turns ledger entries, in sequence order, into replay and baseline events.

    Stateful, because some facts span entries: which consent the next queue decisions of a
    member belong to, and which sent messages were reminders or rode in a digest.
    """

    def __init__(self, member_digest: MemberDigest | None = None) -> None:
        self._member_digest = member_digest
        self._consents: dict[str, tuple[str, int]] = {}
        self._carried: set[str] = set()
        self._carriers: set[str] = set()
        self._reminders: set[str] = set()
        self._last_pass: datetime | None = None
        self._handlers: dict[str, Callable[[datetime, Payload], tuple[ev.Event, ...]]] = {
            EventType.CONSENT_GIVEN.value: self._consent_given,
            EventType.CONSENT_REVOKED.value: self._consent_revoked,
            EventType.DECISION.value: self._decision,
            EventType.INVITATION_STATE.value: self._invitation_state,
            EventType.MESSAGE_STATE.value: self._message_state,
            EventType.UNSUBSCRIBED.value: self._unsubscribed,
            EventType.JOINED.value: self._joined,
            EventType.FORGOTTEN.value: self._forgotten,
            EventType.SUPPRESSED.value: self._suppressed,
            EventType.PURGED.value: self._purged,
            EventType.MEMBER_REGISTERED.value: self._member_registered,
        }

    def read(self, at: datetime, event: str, payload: Payload) -> tuple[ev.Event, ...]:
        """The events one ledger entry stands for (often one, sometimes none or two)."""
        handler = self._handlers.get(event)
        return _NOTHING if handler is None else handler(at, payload)

    def _pass(self, at: datetime) -> tuple[ev.Event, ...]:
        """A trace of the worker: the first one at an instant marks its pass."""
        if at == self._last_pass:
            return _NOTHING
        self._last_pass = at
        return (ev.WorkerPass(at),)

    def _consent_given(self, at: datetime, p: Payload) -> tuple[ev.Event, ...]:
        # The invitations decided next for this member, in the same transaction, are its.
        self._consents[p["member"]] = (p["consent"], int(p["reminders"]))
        return _NOTHING

    def _consent_revoked(self, at: datetime, p: Payload) -> tuple[ev.Event, ...]:
        return (ev.Revoked(at, p["consent"]),)

    def _decision(self, at: datetime, p: Payload) -> tuple[ev.Event, ...]:
        stage, kind, outcome, rules = p["stage"], p["kind"], p["outcome"], p["rules"]
        shared = (
            outcome == "deny"
            and rules.get(strict_eu.CODE) == "deny"
            and sum(1 for said in rules.values() if said == "deny") == 1
        )
        recorded = ev.Recorded(at, stage, kind, outcome, rules, shared)
        if stage == "send":
            message = p.get("message")
            if kind == "reminder" and outcome == "allow" and message:
                self._reminders.add(message)
            return (*self._pass(at), recorded)
        if kind != "invitation":
            return (recorded,)  # a recipient's "remind me later": not replayed
        member = p["member"]
        consent, reminders = self._consents.get(member, ("", 0))
        requested = ev.Requested(at, p["invitation"], consent, member, p["recipient"], reminders)
        return (recorded, requested)

    def _invitation_state(self, at: datetime, p: Payload) -> tuple[ev.Event, ...]:
        target, reason = p["to"], p["reason"]
        if target == "sent":
            return (ev.RecordedFirstSend(at),)
        if target == "expired":
            return self._pass(at)
        if target == "withdrawn" and reason == WITHDRAWN_BY_MEMBER:
            return (ev.Withdrawn(at, p["invitation"]),)
        if target == "accepted" and reason == ACCEPTED_BY_RECIPIENT:
            return (ev.Answered(at, p["invitation"], True),)
        if target == "declined" and reason == DECLINED_BY_RECIPIENT:
            return (ev.Answered(at, p["invitation"], False),)
        return _NOTHING

    def _message_state(self, at: datetime, p: Payload) -> tuple[ev.Event, ...]:
        message, target, reason = p["message"], p["to"], p["reason"]
        if target == "sending":
            if reason.startswith(CARRIED_PREFIX):
                self._carried.add(message)
                self._carriers.add(reason.removeprefix(CARRIED_PREFIX))
            return _NOTHING
        if target == "sent":
            carried, reminder, digest = (
                message in self._carried,
                message in self._reminders,
                message in self._carriers,
            )
            self._forget(message)
            return (ev.RecordedDelivery(at, carried, reminder, digest),)
        if target == "unknown":
            return self._pass(at) if reason == LEASE_EXPIRED else _NOTHING
        self._forget(message)  # failed, cancelled, or back to scheduled for a retry
        return _NOTHING

    def _forget(self, message: str) -> None:
        self._carried.discard(message)
        self._carriers.discard(message)
        self._reminders.discard(message)

    def _unsubscribed(self, at: datetime, p: Payload) -> tuple[ev.Event, ...]:
        source = p["from"]
        return (ev.Unsubscribed(at, p["recipient"], None if source == FROM_EVERYONE else source),)

    def _joined(self, at: datetime, p: Payload) -> tuple[ev.Event, ...]:
        return (ev.Joined(at, p["recipient"]),)

    def _forgotten(self, at: datetime, p: Payload) -> tuple[ev.Event, ...]:
        return (ev.Forgotten(at, p["recipient"]),)

    def _suppressed(self, at: datetime, p: Payload) -> tuple[ev.Event, ...]:
        reported = p.get("source") == "report"
        return (ev.Suppressed(at, p["recipient"], p["reason"], p.get("member"), reported),)

    def _purged(self, at: datetime, p: Payload) -> tuple[ev.Event, ...]:
        return self._pass(at)

    def _member_registered(self, at: datetime, p: Payload) -> tuple[ev.Event, ...]:
        if not p.get("new") or self._member_digest is None:
            return _NOTHING
        digest = self._member_digest(p["member"])
        return _NOTHING if digest is None else (ev.BecameMember(at, digest),)
