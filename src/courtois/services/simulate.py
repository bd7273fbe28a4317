"""simulate: replay the recorded history under another policy, beside what happened.

The history is read as a stream, never whole: the ledger in sequence order (its primary
key), through a server-side cursor on PostgreSQL (`yield_per`), handed to the pure replay
(`courtois.simulation`), which keeps only what the rules' facts need. The ledger names a
new member by id; their address digest comes from the members table, read alongside in
registration order so that only the few registered at about the same time are held.

With `since`, the replay starts a warm-up span earlier (the 90-day sender rates, the life
of an invitation) and counts from `since`; what lasts forever is read from before that:
opt-outs, joins, forget-me requests, suppressions, and which members already invited
whom (as the history has it: the simulated world starts as the real one was).
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Text, func, select, type_coerce

from courtois.config import load_settings
from courtois.domain.ledger import EventType
from courtois.policy.config import PolicyConfig
from courtois.services.audit import read_at, read_payload
from courtois.services.context import Context
from courtois.simulation import events as ev
from courtois.simulation.compare import compare, warmup
from courtois.simulation.ledger import LedgerReader
from courtois.simulation.replay import IDLE_AFTER
from courtois.simulation.report import summary
from courtois.store.tables import invitations, ledger, members

# Rows fetched per round trip: large enough to amortise it, small enough to stay flat.
BATCH = 5000
# What the replay reads of the ledger; the rest (imports, registrations) it does not need.
REPLAYED = tuple(
    e.value
    for e in (
        EventType.CONSENT_GIVEN,
        EventType.CONSENT_REVOKED,
        EventType.DECISION,
        EventType.INVITATION_STATE,
        EventType.MESSAGE_STATE,
        EventType.UNSUBSCRIBED,
        EventType.JOINED,
        EventType.FORGOTTEN,
        EventType.SUPPRESSED,
        EventType.PURGED,
        EventType.MEMBER_REGISTERED,
    )
)
# What still matters from before the warm-up: the recipients' lasting word.
LASTING = tuple(
    e.value
    for e in (
        EventType.UNSUBSCRIBED,
        EventType.JOINED,
        EventType.FORGOTTEN,
        EventType.SUPPRESSED,
        EventType.MEMBER_REGISTERED,
    )
)


@dataclass(frozen=True, slots=True)
class Simulation:
    """What `simulate` found, and how long reading and replaying took."""

    report: dict[str, Any]
    seconds: float


def policy_from_file(path: str | Path) -> PolicyConfig:
    """The `[policy]` of a configuration file, through the loader the service uses: unknown
    keys and loosened hard caps are refused the same way. Keys the file leaves out take
    their documented defaults, and COURTOIS_POLICY_* variables are not applied: the file
    alone says what the other policy is."""
    return load_settings(path, environ={}).policy


def simulate(
    ctx: Context,
    new: PolicyConfig,
    since: datetime | None = None,
    idle_after: timedelta | None = IDLE_AFTER,
) -> Simulation:
    """Replay everything recorded (from `since`, after a warm-up) under the current policy
    and under `new`; report rule by rule beside what happened."""
    current = ctx.settings.policy
    started = time.perf_counter()
    start = None if since is None else since - warmup(current, new)
    with ctx.engine.connect() as connection, closing(history(connection, start)) as events:
        comparison = compare(events, current, new, since, idle_after)
    report = summary(comparison, current, new, start)
    return Simulation(report, time.perf_counter() - started)


def history(connection: Connection, start: datetime | None) -> Generator[ev.Event, None, None]:
    """Every event from `start` on (all of them without it), in order, preceded by what
    lasts from before it. Close it when done: it holds open cursors."""
    with closing(MemberDigests(connection)) as digests:
        reader = LedgerReader(digests)
        if start is None:
            yield from _ledger(connection, reader, ledger.c.event.in_(REPLAYED))
            return
        first = connection.execute(
            select(func.min(ledger.c.seq)).where(ledger.c.at >= start)
        ).scalar_one_or_none()
        # Nothing dated from `start` on: everything is before it (an empty main stream).
        boundary = first if first is not None else _after_last(connection)
        lasting = ledger.c.event.in_(LASTING) & (ledger.c.seq < boundary)
        yield from _ledger(connection, reader, lasting)
        yield from _invited_before(connection, start)
        recent = ledger.c.event.in_(REPLAYED) & (ledger.c.seq >= boundary)
        yield from _ledger(connection, reader, recent)


class MemberDigests:
    """Each new member's address digest, looked up as the ledger reaches their
    registration. Members are read in registration order, so the ones read ahead and not
    asked for yet are few."""

    def __init__(self, connection: Connection) -> None:
        query = select(members.c.id, members.c.email_digest).order_by(
            members.c.created_at, members.c.id
        )
        self._result = _stream(connection).execute(query)
        self._rows = iter(self._result)
        self._ahead: dict[str, str] = {}

    def close(self) -> None:
        """Release the cursor (a server-side one on PostgreSQL) before the connection."""
        self._result.close()

    def __call__(self, member_id: str) -> str | None:
        while member_id not in self._ahead:
            row = next(self._rows, None)
            if row is None:
                return None
            self._ahead[row.id] = row.email_digest
        # An erased member's digest is gone with their address: nobody to match.
        return self._ahead.pop(member_id) or None


def _after_last(connection: Connection) -> int:
    last = connection.execute(select(func.max(ledger.c.seq))).scalar_one_or_none()
    return int(last or 0) + 1


def _stream(connection: Connection) -> Connection:
    """A connection whose results are fetched in batches (a server-side cursor on
    PostgreSQL), so a million rows are never held at once."""
    return connection.execution_options(yield_per=BATCH)


def _ledger(connection: Connection, reader: LedgerReader, where: Any) -> Iterator[ev.Event]:
    """Ledger entries in sequence order, as replay events. The payload is read as text and
    decoded here, once per entry."""
    query = (
        select(
            ledger.c.seq,
            type_coerce(ledger.c.at, Text),
            ledger.c.event,
            type_coerce(ledger.c.payload, Text),
        )
        .where(where)
        .order_by(ledger.c.seq)
    )
    read = reader.read
    # An entry tampered into something unreadable is named (UnreadableEntry), not a crash.
    with _stream(connection).execute(query) as rows:
        for seq, at, event, payload in rows:
            yield from read(read_at(seq, at), event, read_payload(seq, payload))


def _invited_before(connection: Connection, start: datetime) -> Iterator[ev.Event]:
    """Who had already invited whom (the invitation left, then or later) before the
    replay starts. In no particular order: this only marks pairs, and sorting a large
    table for nothing would cost more than the scan."""
    query = select(
        invitations.c.created_at, invitations.c.member_id, invitations.c.recipient_digest
    ).where(invitations.c.created_at < start, invitations.c.sent_at.is_not(None))
    with _stream(connection).execute(query) as rows:
        for at, member, digest in rows:
            yield ev.AlreadyInvited(at, member, digest)
