"""What an `audit export` says was stopped after a database's own history ends.

A database restored from a backup has lost what happened since: the opt-outs and "forget
me" of recipients, the suppressions, the members' withdrawals and revocations, and which
emails left. The ledger export taken before the restore still holds them, by digest and
by id only (invariant 10). This module reads such a file: its chain must hold (a file
that was changed, cut inside or is empty is refused whole), it must be the history of
this very database (it starts with the same entries, or nothing of it could name a row
here: another installation's digests are keyed by another secret), and the entries past
the last one the two share are turned into `Stop`s, in the order they happened, for
`reapply_stops` to apply.

Only the acts are read, not their consequences: an opt-out blocks invitations and cancels
emails, and each of those has its own entry, but re-applying the opt-out does all of it
again (the same reasons as `simulation.ledger` uses to tell them apart).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, select

from courtois.domain.errors import InvalidInput
from courtois.domain.ledger import FROM_EVERYONE, ChainReport, EventType, LedgerEntry
from courtois.domain.messages import MessageState
from courtois.services.audit import PAGE, verify_export
from courtois.services.ledger_rows import ROW_EVENTS, RowsRead, rows_in
from courtois.services.suppression import COMPLAINT, HARD_BOUNCE
from courtois.simulation.ledger import (
    ACCEPTED_BY_RECIPIENT,
    CARRIED_PREFIX,
    DECLINED_BY_RECIPIENT,
    WITHDRAWN_BY_MEMBER,
)
from courtois.store.tables import ledger


class StopKind(StrEnum):
    """Each kind of stop, as the command reports it."""

    OPTED_OUT = "opted_out"  # a recipient stopped all mail
    BLOCKED = "blocked"  # a recipient stopped one member
    FORGOTTEN = "forgotten"
    HARD_BOUNCE = "hard_bounce"  # suppressed: the address is dead
    COMPLAINT = "complaint"  # suppressed: a spam report (and the member charged, if named)
    JOINED = "joined"
    DECLINED = "declined"  # "not interested"
    ACCEPTED = "accepted"  # followed the join link: no reminder follows
    WITHDRAWN = "withdrawn"  # a member withdrew an invitation
    REVOKED = "revoked"  # a member revoked a consent
    CONTACTS_DELETED = "contacts_deleted"  # a member deleted their address book
    ERASED = "erased"  # a member's data was erased
    LEFT = "left"  # an email was handed to the mail server: never to be sent again


@dataclass(frozen=True, slots=True)
class Stop:
    """One act to re-apply: `subject` is the digest, invitation, consent, member or message
    id it is about; `member` the member a block or complaint names; `payload` the entry's
    own (a suppression is recorded again as it was)."""

    seq: int
    at: datetime
    kind: StopKind
    subject: str
    member: str | None = None
    payload: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class StopsRead:
    """A verified export: its entries, how many of them the database holds too (its own
    history up to the backup), the stops in the rest, in order, and the rows the rest
    made (`ledger_rows`)."""

    entries: int
    shared: int
    stops: list[Stop]
    rows: RowsRead


class ForeignLedger(InvalidInput):
    """The file is not this database's history (a command-line refusal: no API answers
    it, so it keeps its parent's problem type)."""


class BrokenExport(InvalidInput):
    """The file's chain does not hold, or it holds no entry."""

    def __init__(self, report: ChainReport) -> None:
        super().__init__(f"{report.refusal}; nothing was applied")
        self.report = report


_DIGEST = re.compile(r"[0-9a-f]{64}")
_MEMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")
_ID = re.compile(r"[0-9A-Za-z-]{1,36}")
# An email's last state in the file that says it left, or may have: sent, or handed to the
# mail server with no outcome recorded. A refusal put back as scheduled proves nothing
# left; a failed or cancelled one did not leave.
_LEFT = frozenset({MessageState.SENDING.value, MessageState.SENT.value, MessageState.UNKNOWN.value})
_ANSWERS = {
    ("declined", DECLINED_BY_RECIPIENT): StopKind.DECLINED,
    ("accepted", ACCEPTED_BY_RECIPIENT): StopKind.ACCEPTED,
    ("withdrawn", WITHDRAWN_BY_MEMBER): StopKind.WITHDRAWN,
}
_SUPPRESSIONS = {HARD_BOUNCE: StopKind.HARD_BOUNCE, COMPLAINT: StopKind.COMPLAINT}


def read_stops(engine: Engine, lines: Iterable[str]) -> StopsRead:
    """Verify the export, match it against this database's ledger, and read the stops past
    their common part. Raises BrokenExport, ForeignLedger, or InvalidInput naming an entry
    that is not as courtois writes it; nothing is applied then."""
    since: list[LedgerEntry] = []
    with closing(_stored_hashes(engine)) as stored:
        common = _Common(stored)

        def see(entry: LedgerEntry) -> None:
            if not common.holds(entry) and _relevant(entry):
                since.append(entry)

        report = verify_export(lines, see)
    if not report.ok:
        raise BrokenExport(report)
    if common.shared == 0 and common.stored_any:
        raise ForeignLedger(
            "the file is not this database's ledger: their first entries differ (another "
            "installation, or another secret key); nothing was applied"
        )
    return StopsRead(report.entries, common.shared, stops_in(since), rows_in(since))


def _relevant(entry: LedgerEntry) -> bool:
    return entry.event in _READERS or entry.event in ROW_EVENTS


class _Common:
    """Walks the database's ledger beside the file's, up to the first entry that differs:
    the chains are linked, so equal hashes at one place mean equal entries up to it."""

    def __init__(self, stored: Iterator[tuple[int, str]]) -> None:
        self._stored = stored
        self.shared = 0
        self.stored_any = False
        self._open = True

    def holds(self, entry: LedgerEntry) -> bool:
        if not self._open:
            return False
        row = next(self._stored, None)
        self.stored_any = self.stored_any or row is not None
        if row is None or row != (entry.seq, entry.hash):
            self._open = False
            return False
        self.shared = entry.seq
        return True


def _stored_hashes(engine: Engine) -> Generator[tuple[int, str], None, None]:
    """Each stored entry's (seq, hash) in order, page by page."""
    last = 0
    with engine.connect() as connection:
        while True:
            rows = connection.execute(
                select(ledger.c.seq, ledger.c.hash)
                .where(ledger.c.seq > last)
                .order_by(ledger.c.seq)
                .limit(PAGE)
            ).all()
            if not rows:
                return
            for row in rows:
                yield int(row.seq), str(row.hash)
            last = rows[-1].seq


def stops_in(entries: Iterable[LedgerEntry]) -> list[Stop]:
    """The acts among these entries, in ledger order; each email whose last state says it
    left comes at the place of its first entry here."""
    stops: list[Stop] = []
    emails: dict[str, _Email] = {}
    for entry in entries:
        if entry.event == EventType.MESSAGE_STATE.value:
            message = _text(entry, "message", _ID)
            emails.setdefault(message, _Email(entry)).moved(entry, _text(entry, "to", None))
            continue
        reader = _READERS.get(entry.event)
        stop = None if reader is None else reader(entry)
        if stop is not None:
            stops.append(stop)
    left = {message: email for message, email in emails.items() if email.last in _LEFT}
    carriers = {email.carried_by for email in left.values()}
    for message, email in left.items():
        payload = {
            "first_attempt_at": email.handed_at,
            "carried_by": email.carried_by,
            "carrier": message in carriers,
        }
        stops.append(Stop(email.first.seq, email.first.at, StopKind.LEFT, message, payload=payload))
    stops.sort(key=lambda stop: stop.seq)
    return stops


class _Email:
    """One email's moves in the file: its first entry, its last state, when it was first
    handed to the mail server, and the digest that carried it there, if one did."""

    def __init__(self, first: LedgerEntry) -> None:
        self.first = first
        self.last = ""
        self.handed_at: datetime | None = None
        self.carried_by: str | None = None

    def moved(self, entry: LedgerEntry, target: str) -> None:
        self.last = target
        if target == MessageState.SENDING.value:
            self.handed_at = self.handed_at or entry.at
            reason = str(entry.payload.get("reason") or "")
            carrier = reason[len(CARRIED_PREFIX) :] if reason.startswith(CARRIED_PREFIX) else None
            self.carried_by = carrier if carrier and _ID.fullmatch(carrier) else None
        elif target == MessageState.SCHEDULED.value:
            self.carried_by = None  # put back: whatever carried it did not take it


def _text(entry: LedgerEntry, key: str, form: re.Pattern[str] | None) -> str:
    """A payload field as courtois writes it, or the entry is refused by its number."""
    value = entry.payload.get(key)
    if not isinstance(value, str) or (form is not None and not form.fullmatch(value)):
        raise InvalidInput(
            f"entry {entry.seq} ({entry.event}) is not as courtois writes it: its {key!r} "
            "is missing or malformed; nothing was applied"
        )
    return value


def _unsubscribed(entry: LedgerEntry) -> Stop:
    digest, source = _text(entry, "recipient", _DIGEST), _text(entry, "from", _MEMBER)
    if source == FROM_EVERYONE:
        return Stop(entry.seq, entry.at, StopKind.OPTED_OUT, digest)
    return Stop(entry.seq, entry.at, StopKind.BLOCKED, digest, member=source)


Reader = Callable[[LedgerEntry], Stop | None]


def _recipient(kind: StopKind) -> Reader:
    def read(entry: LedgerEntry) -> Stop:
        return Stop(entry.seq, entry.at, kind, _text(entry, "recipient", _DIGEST))

    return read


def _suppressed(entry: LedgerEntry) -> Stop:
    digest, reason = _text(entry, "recipient", _DIGEST), _text(entry, "reason", None)
    kind = _SUPPRESSIONS.get(reason)
    if kind is None:
        raise InvalidInput(
            f"entry {entry.seq} ({entry.event}) gives an unknown reason; nothing was applied"
        )
    member = _text(entry, "member", _MEMBER) if "member" in entry.payload else None
    payload = {"recipient": digest, "reason": reason}
    if "source" in entry.payload:
        payload["source"] = _text(entry, "source", re.compile(r"[a-z-]{1,40}"))
    if member is not None:
        payload["member"] = member
    return Stop(entry.seq, entry.at, kind, digest, member=member, payload=payload)


def _invitation_state(entry: LedgerEntry) -> Stop | None:
    target, reason = _text(entry, "to", None), _text(entry, "reason", None)
    kind = _ANSWERS.get((target, reason))
    if kind is None:
        return None  # a consequence of another act, or not a stop
    return Stop(entry.seq, entry.at, kind, _text(entry, "invitation", _ID))


def _revoked(entry: LedgerEntry) -> Stop:
    return Stop(
        entry.seq,
        entry.at,
        StopKind.REVOKED,
        _text(entry, "consent", _ID),
        member=_text(entry, "member", _MEMBER),
    )


def _member(kind: StopKind) -> Reader:
    def read(entry: LedgerEntry) -> Stop:
        return Stop(entry.seq, entry.at, kind, _text(entry, "member", _MEMBER))

    return read


_READERS: dict[str, Reader] = {
    EventType.UNSUBSCRIBED.value: _unsubscribed,
    EventType.FORGOTTEN.value: _recipient(StopKind.FORGOTTEN),
    EventType.JOINED.value: _recipient(StopKind.JOINED),
    EventType.SUPPRESSED.value: _suppressed,
    EventType.INVITATION_STATE.value: _invitation_state,
    EventType.CONSENT_REVOKED.value: _revoked,
    EventType.CONTACTS_DELETED.value: _member(StopKind.CONTACTS_DELETED),
    EventType.MEMBER_ERASED.value: _member(StopKind.ERASED),
}
