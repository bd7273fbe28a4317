"""Messages that fell due, and the claims the worker makes on them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, func, select

from courtois.domain.messages import MessageKind, MessageState
from courtois.services.context import Context
from courtois.store.bulk import unindexed
from courtois.store.tables import invitations, messages

BATCH = 200
# Digests start with two hex digits: 256 buckets to split among shards.
_BUCKETS = 256
# What a pass report counts of webhook attempts.
WEBHOOK_COUNTS = ("delivered", "failed", "given_up")
# How a failed webhook attempt's kind starts among a pass's problems.
WEBHOOK_PROBLEM = "webhook: "


@dataclass
class PassReport:
    """What one pass did, for the CLI and the logs (counts only, never addresses)."""

    sent: int = 0
    digests: int = 0
    deferred: int = 0
    cancelled: int = 0
    failed: int = 0
    retried: int = 0
    waiting: int = 0
    expired: int = 0
    unknown: int = 0
    purged: dict[str, int] = field(default_factory=dict)
    # What went wrong with the messages not accepted, by kind ("RCPT 451", "after data:
    # no reply in time"...), and with webhook attempts that failed ("webhook: HTTP 503"),
    # counted: no address, no server text, no URL.
    problems: dict[str, int] = field(default_factory=dict)
    # The pass's webhook attempts (the leading shard posts them): `failed` counts every
    # attempt that failed, `given_up` those of them that were an event's last.
    webhooks: dict[str, int] = field(default_factory=lambda: dict.fromkeys(WEBHOOK_COUNTS, 0))

    def as_dict(self) -> dict[str, Any]:
        """Plain form for JSON."""
        return {
            key: dict(value) if isinstance(value, dict) else value
            for key, value in self.__dict__.items()
        }

    def note(self, problem: str, count: int = 1) -> None:
        """Count one more message that met this problem."""
        if count:
            self.problems[problem] = self.problems.get(problem, 0) + count

    def webhook_trouble(self) -> str | None:
        """One line for the worker's log when webhook attempts failed in this pass (how
        many, of what kinds, how many given up), else None: a receiver that stopped
        answering is otherwise seen only on the admin page or in /metrics."""
        failed, given_up = self.webhooks["failed"], self.webhooks["given_up"]
        if not failed:
            return None
        kinds = ", ".join(
            f"{kind.removeprefix(WEBHOOK_PROBLEM)} {count}"
            for kind, count in sorted(self.problems.items())
            if kind.startswith(WEBHOOK_PROBLEM)
        )
        attempts = "attempt" if failed == 1 else "attempts"
        return (
            f"webhooks: {failed} {attempts} failed in this pass ({kinds}); {given_up} given up,"
            " the others tried again later"
        )


@dataclass(frozen=True, slots=True)
class Shard:
    """One of `count` workers' share of the recipients, by their digest: workers on
    different shards never decide for the same inbox nor claim the same message."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count <= _BUCKETS:
            raise ValueError(f"shard {self.index} of {self.count}: index must be below count")

    @property
    def prefixes(self) -> list[str]:
        """The first two hex digits of the digests in this shard."""
        return [f"{b:02x}" for b in range(_BUCKETS) if b % self.count == self.index]

    @property
    def leads(self) -> bool:
        """Whether this shard does the housekeeping every pass also does (one of them)."""
        return self.index == 0


@dataclass(frozen=True)
class Due:
    """A scheduled message whose time has come, with what deciding and sending it needs."""

    id: str
    invitation_id: str
    member_id: str
    digest: str
    kind: MessageKind
    consent_id: str
    address: str | None
    remind_at: datetime | None
    sent_at: datetime | None
    created_at: datetime
    attempts: int
    # The language the invitation was previewed in (None on rows older than that column's
    # use: the member's, read when composing).
    locale: str | None = None
    # When it was first claimed; None until then.
    first_attempt_at: datetime | None = None
    # When it fell due this time: a relay fault holds the retry deadline from then on.
    scheduled_at: datetime | None = None


@dataclass(frozen=True)
class Claim:
    """Messages to one recipient claimed (`sending`) to leave as one email: the carrier, and
    the others it carries when several invitations meet in one digest."""

    carrier: Due
    messages: tuple[Due, ...]

    @property
    def ids(self) -> list[str]:
        """Every message id of the claim."""
        return [m.id for m in self.messages]


# What deciding and sending a due message needs, from its row and its invitation's.
# Where a row of `_COLUMNS` holds the message's id and its recipient's digest.
_ID, _DIGEST = 0, 3
_COLUMNS = (
    select(
        messages.c.id,
        messages.c.invitation_id,
        messages.c.member_id,
        messages.c.recipient_digest,
        messages.c.kind,
        messages.c.created_at,
        messages.c.attempts,
        messages.c.first_attempt_at,
        messages.c.scheduled_at,
        invitations.c.consent_id,
        invitations.c.address,
        invitations.c.remind_at,
        invitations.c.sent_at,
        invitations.c.locale,
    )
    # Through the digest too: both tables are distributed by it, so the join stays within
    # each shard, and it runs on the invitations' primary key.
    .join(
        invitations,
        (invitations.c.recipient_digest == messages.c.recipient_digest)
        & (invitations.c.id == messages.c.invitation_id),
    )
)
_SCHEDULED = MessageState.SCHEDULED.value
_DUE = _COLUMNS.where(messages.c.state == _SCHEDULED)
# The state test when reading the messages of a few recipients, by the primary key (digest
# first). Without statistics SQLite would read them through ix_messages_state_scheduled,
# every message due on the platform: kept off the state there (`unindexed`).
_SCHEDULED_THERE = {
    "postgresql": messages.c.state == _SCHEDULED,
    "sqlite": unindexed(messages.c.state) == _SCHEDULED,
}
# Recipients per statement when completing a batch: well under every engine's limit.
_CHUNK = 500


def due_messages(
    ctx: Context, now: datetime, exclude: set[str], shard: Shard | None = None
) -> list[Due]:
    """The next batch of scheduled messages due at `now`, oldest first; those due at the
    same instant grouped by member, whose sending facts are then read once for the batch.

    A full batch is completed with every other message due to the recipients it holds
    (a few more than BATCH): the worker decides a recipient's due messages together, and
    merges them into one digest, so none may be left for the next batch, where the inbox's
    quota would find the first already sent and hold it back for weeks."""
    due = (
        _DUE.where(messages.c.scheduled_at <= now)
        .order_by(messages.c.scheduled_at, messages.c.member_id, messages.c.id)
        .limit(BATCH + len(exclude))
    )
    if shard is not None:
        due = due.where(func.substr(messages.c.recipient_digest, 1, 2).in_(shard.prefixes))
    with ctx.engine.connect() as connection:
        rows = connection.execute(due).all()
        batch = [r for r in rows if r[_ID] not in exclude][:BATCH]
        if len(rows) == BATCH + len(exclude):
            batch += _rest_for(connection, batch, now, exclude)
    # Unpacked by position, as `_COLUMNS` lists them: reading a row's field by name costs
    # SQLAlchemy's row an AttributeError raised and caught (0.7 us against 0.05 by
    # position), more than the rest of building the batch.
    return [
        Due(
            id=id_,
            invitation_id=invitation_id,
            member_id=member_id,
            digest=digest,
            kind=MessageKind(kind),
            consent_id=consent_id,
            address=address,
            remind_at=remind_at,
            sent_at=sent_at,
            created_at=created_at,
            attempts=attempts,
            locale=locale,
            first_attempt_at=first_attempt_at,
            scheduled_at=scheduled_at,
        )
        for (
            id_,
            invitation_id,
            member_id,
            digest,
            kind,
            created_at,
            attempts,
            first_attempt_at,
            scheduled_at,
            consent_id,
            address,
            remind_at,
            sent_at,
            locale,
        ) in batch
    ]


def _rest_for(
    connection: Connection, batch: list[Row[Any]], now: datetime, exclude: set[str]
) -> list[Row[Any]]:
    """The messages due to the batch's recipients that the batch does not hold.

    Their ids are read first, and whole rows only for the recipients that have more: most
    have none, and their rows, read again whole with their times, cost a full batch's."""
    held = exclude | {r[_ID] for r in batch}
    digests = sorted({r[_DIGEST] for r in batch})
    scheduled = _SCHEDULED_THERE[connection.dialect.name]
    rest = []
    for start in range(0, len(digests), _CHUNK):
        chunk = digests[start : start + _CHUNK]
        ids = connection.execute(
            select(messages.c.recipient_digest, messages.c.id).where(
                scheduled, messages.c.recipient_digest.in_(chunk), messages.c.scheduled_at <= now
            )
        )
        more = sorted({digest for digest, id_ in ids if id_ not in held})
        if not more:
            continue
        found = connection.execute(
            _COLUMNS.where(
                scheduled,
                messages.c.recipient_digest.in_(more),
                messages.c.scheduled_at <= now,
            ).order_by(messages.c.scheduled_at, messages.c.member_id, messages.c.id)
        )
        rest += [r for r in found if r[_ID] not in held]
    return rest
