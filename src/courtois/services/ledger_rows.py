"""What an `audit export` says was made after a database's own history ends: the consents,
invitations and emails created since the backup, by id and digest only.

A database restored from a backup has lost those rows, yet the links in the emails that
left name their invitations, the "already invited" rule and the quotas count them, and a
recipient's later answer is about one of them. The export holds what is needed to make them
again, without an address (invariant 10): each consent given (its member, the digests it
names, the hash of what was previewed, the reminders ticked), each decision (invitation,
email, member, digest, kind, outcome), and every move of an invitation or an email after
it. This module reads those entries (past the part the file shares with the database, as
`ledger_stops` finds it) into what each row was when the file ends; `rebuild_rows` writes
the ones the database lacks.

An invitation's state is read up to, not including, the answers and withdrawals that are
stops themselves (`ledger_stops`): those are applied again afterwards, through the service
that made them, onto the row rebuilt here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from courtois.domain.errors import InvalidInput
from courtois.domain.ledger import EventType, LedgerEntry
from courtois.domain.messages import MessageKind, MessageState
from courtois.policy.rules import strict_eu
from courtois.policy.verdict import Outcome
from courtois.simulation.ledger import (
    ACCEPTED_BY_RECIPIENT,
    CARRIED_PREFIX,
    DECLINED_BY_RECIPIENT,
    WITHDRAWN_BY_MEMBER,
)

_DIGEST = re.compile(r"[0-9a-f]{64}")
_MEMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")
_ID = re.compile(r"[0-9A-Za-z-]{1,36}")
# The invitation moves that are stops (`ledger_stops._ANSWERS`): applied again by their
# services, not written into the rebuilt row.
_STOP_MOVES = frozenset(
    {
        ("declined", DECLINED_BY_RECIPIENT),
        ("accepted", ACCEPTED_BY_RECIPIENT),
        ("withdrawn", WITHDRAWN_BY_MEMBER),
    }
)
ROW_EVENTS = frozenset(
    {
        EventType.CONSENT_GIVEN.value,
        EventType.DECISION.value,
        EventType.INVITATION_STATE.value,
        EventType.MESSAGE_STATE.value,
    }
)


@dataclass(frozen=True, slots=True)
class ConsentSeen:
    """A consent given after the backup, as its entry records it."""

    id: str
    member: str
    recipients: tuple[str, ...]
    preview_hash: str
    reminders: int
    given_at: datetime
    seq: int


@dataclass(slots=True)
class InvitationSeen:
    """An invitation made after the backup: its first decision, and its state when the
    file ends (None: it never moved, and the decision says where it stood)."""

    id: str
    member: str
    digest: str
    consent: str | None
    created_at: datetime
    refused: bool
    # Refused only because the member sends it from their own mailbox (strict-eu): sent.
    shared: bool
    state: str | None = None
    updated_at: datetime | None = None
    sent_at: datetime | None = None


@dataclass(slots=True)
class MessageSeen:
    """An email the file decided about: its invitation, and its last state (None: it never
    moved, it is scheduled)."""

    id: str
    invitation: str
    member: str
    digest: str
    kind: str
    created_at: datetime
    state: str | None = None
    updated_at: datetime | None = None
    last_reason: str | None = None
    last_seq: int = 0
    sent_at: datetime | None = None
    first_attempt_at: datetime | None = None
    attempts: int = 0
    carried_by: str | None = None


@dataclass(slots=True)
class RowsRead:
    """The rows an export shows made after the backup, and the entries that made them, in
    order (`rebuild_rows` records again those of the rows it writes)."""

    consents: dict[str, ConsentSeen] = field(default_factory=dict)
    invitations: dict[str, InvitationSeen] = field(default_factory=dict)
    messages: dict[str, MessageSeen] = field(default_factory=dict)
    entries: list[LedgerEntry] = field(default_factory=list)

    def carriers(self) -> set[str]:
        """The emails that took others along, as a digest."""
        return {m.carried_by for m in self.messages.values() if m.carried_by is not None}


def is_stop_move(payload: Mapping[str, Any]) -> bool:
    """Whether an invitation's move is an answer or withdrawal, re-applied as a stop."""
    return (payload.get("to"), payload.get("reason")) in _STOP_MOVES


def rows_in(entries: Iterable[LedgerEntry]) -> RowsRead:
    """The rows these entries (the file past its shared part, in order) made or moved.
    Raises InvalidInput naming an entry that is not as courtois writes it."""
    read = RowsRead()
    for entry in entries:
        if entry.event not in ROW_EVENTS:
            continue
        read.entries.append(entry)
        if entry.event == EventType.CONSENT_GIVEN.value:
            consent = _consent(entry)
            read.consents[consent.id] = consent
        elif entry.event == EventType.DECISION.value:
            _decision(read, entry)
        elif entry.event == EventType.INVITATION_STATE.value:
            _invitation_moved(read, entry)
        else:
            _message_moved(read, entry)
    return read


def _refused(entry: LedgerEntry, key: str) -> InvalidInput:
    return InvalidInput(
        f"entry {entry.seq} ({entry.event}) is not as courtois writes it: its {key!r} "
        "is missing or malformed; nothing was applied"
    )


def _text(entry: LedgerEntry, key: str, form: re.Pattern[str] | None) -> str:
    value = entry.payload.get(key)
    if not isinstance(value, str) or (form is not None and not form.fullmatch(value)):
        raise _refused(entry, key)
    return value


def _consent(entry: LedgerEntry) -> ConsentSeen:
    recipients = entry.payload.get("recipients")
    if not isinstance(recipients, list) or not all(
        isinstance(d, str) and _DIGEST.fullmatch(d) for d in recipients
    ):
        raise _refused(entry, "recipients")
    reminders = entry.payload.get("reminders")
    if not isinstance(reminders, int) or isinstance(reminders, bool) or reminders < 0:
        raise _refused(entry, "reminders")
    return ConsentSeen(
        _text(entry, "consent", _ID),
        _text(entry, "member", _MEMBER),
        tuple(recipients),
        _text(entry, "preview_hash", _DIGEST),
        reminders,
        entry.at,
        entry.seq,
    )


def _decision(read: RowsRead, entry: LedgerEntry) -> None:
    """The first decision about an invitation made after the backup (its queue decision,
    written with it), and the first about each email."""
    payload = entry.payload
    if payload.get("invitation") is None:
        return
    invitation = _text(entry, "invitation", _ID)
    member = _text(entry, "member", _MEMBER)
    digest = _text(entry, "recipient", _DIGEST)
    kind = _text(entry, "kind", None)
    if kind not in {k.value for k in MessageKind}:
        raise _refused(entry, "kind")
    outcome = _text(entry, "outcome", None)
    rules = payload.get("rules")
    if outcome not in {o.value for o in Outcome} or not isinstance(rules, dict):
        raise _refused(entry, "outcome")
    if invitation not in read.invitations and kind == MessageKind.INVITATION.value:
        refused = outcome == Outcome.DENY.value
        denying = {rule for rule, said in rules.items() if said == Outcome.DENY.value}
        read.invitations[invitation] = InvitationSeen(
            invitation,
            member,
            digest,
            _consent_of(read, member, digest),
            entry.at,
            refused,
            refused and denying == {strict_eu.CODE},
        )
    message = payload.get("message")
    if message is not None and _text(entry, "message", _ID) not in read.messages:
        read.messages[str(message)] = MessageSeen(
            str(message), invitation, member, digest, kind, entry.at
        )


def _consent_of(read: RowsRead, member: str, digest: str) -> str | None:
    """The consent the invitation was made under: the member's latest given so far naming
    this recipient (`invite` records it just before the invitations' decisions)."""
    found = [c for c in read.consents.values() if c.member == member and digest in c.recipients]
    return max(found, key=lambda c: c.seq).id if found else None


def _invitation_moved(read: RowsRead, entry: LedgerEntry) -> None:
    seen = read.invitations.get(_text(entry, "invitation", _ID))
    target = _text(entry, "to", None)
    if seen is None or is_stop_move(entry.payload):
        return
    seen.state, seen.updated_at = target, entry.at
    if target == "sent" and seen.sent_at is None:
        seen.sent_at = entry.at


def _message_moved(read: RowsRead, entry: LedgerEntry) -> None:
    seen = read.messages.get(_text(entry, "message", _ID))
    target = _text(entry, "to", None)
    if seen is None:
        return
    reason = str(entry.payload.get("reason") or "")
    seen.state, seen.updated_at, seen.last_reason, seen.last_seq = (
        target,
        entry.at,
        reason,
        entry.seq,
    )
    if target == MessageState.SENDING.value:
        seen.attempts += 1
        seen.first_attempt_at = seen.first_attempt_at or entry.at
        carrier = reason[len(CARRIED_PREFIX) :] if reason.startswith(CARRIED_PREFIX) else None
        seen.carried_by = carrier if carrier and _ID.fullmatch(carrier) else None
    elif target == MessageState.SCHEDULED.value:
        seen.carried_by = None  # put back: it goes alone, or with others, next time
    elif target == MessageState.SENT.value:
        seen.sent_at = entry.at
