"""Emails whose fate nobody knows, and a person's word on each (invariant 8).

A message is `unknown` when its worker died mid-send or the connection broke after the body
left: it may have arrived. Nothing here sends anything. An admin who checked the mail
server's logs says which it was: `sent` (it arrived: the invitation counts as sent, as the
worker would have recorded it) or `failed` (it did not: the invitation is closed as not
delivered). A recipient who follows the email's join link says `sent` too, without any
admin (`recipient_actions.accept`). Each change goes through the state machines and into
the ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select

from courtois.domain.errors import InvalidInput
from courtois.domain.invitations import InvitationState
from courtois.domain.messages import MessageKind, MessageState, why_in_doubt
from courtois.services.context import Context
from courtois.services.email_arrived import handed_over_at, record_arrived
from courtois.services.locks import lock_recipients
from courtois.services.transitions import move_invitations, set_messages
from courtois.services.unit_of_work import UnitOfWork
from courtois.store.sql import comparable_text
from courtois.store.tables import invitations, messages

LISTED = 200
MAX_AT_ONCE = 500
SENT_REASON = "an admin confirmed it was delivered"
FAILED_REASON = "an admin found it was not delivered"
_UNKNOWN = MessageState.UNKNOWN.value


class Resolution(StrEnum):
    """What the admin found."""

    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True)
class UnknownMessage:
    """One email of uncertain fate (a digest's carrier stands for the ones it carried).
    `id` is the left part of the email's Message-ID, which the mail server's logs name;
    `first_attempt_at` is when it was first handed to the mail server."""

    id: str
    member_id: str
    recipient_digest: str
    kind: str
    scheduled_at: datetime
    unknown_since: datetime
    attempts: int
    last_reason: str | None
    carried: int
    first_attempt_at: datetime | None = None

    @property
    def handed_over_at(self) -> datetime | None:
        """When the email that may have arrived was handed to the mail server, if known."""
        return handed_over_at(self.attempts, self.first_attempt_at)

    @property
    def why(self) -> tuple[str, str]:
        """Why it is in doubt, for the page to word (`why_in_doubt`)."""
        return why_in_doubt(self.last_reason)


@dataclass(frozen=True)
class Resolved:
    """What a resolution changed: messages moved (carried ones included), invitations
    moved, and the chosen ids that were no longer unknown (resolved already)."""

    messages: int
    invitations: int
    already: tuple[str, ...]


def unknown_messages(ctx: Context, limit: int = LISTED) -> tuple[list[UnknownMessage], int]:
    """The oldest unknown emails (up to `limit`) and how many there are in all."""
    top = (messages.c.state == _UNKNOWN, messages.c.carried_by.is_(None))
    with ctx.engine.connect() as connection:
        total = int(connection.execute(select(func.count()).where(*top)).scalar_one())
        rows = connection.execute(
            select(messages)
            .where(*top)
            .order_by(messages.c.scheduled_at, messages.c.id)
            .limit(limit)
        ).all()
        carried: dict[str, int] = {}
        if rows:
            # A digest's messages share its recipient, whose index finds them.
            for carrier, number in connection.execute(
                select(messages.c.carried_by, func.count())
                .where(
                    messages.c.recipient_digest.in_(sorted({r.recipient_digest for r in rows})),
                    messages.c.state == _UNKNOWN,
                    messages.c.carried_by.is_not(None),
                )
                .group_by(messages.c.carried_by)
            ):
                carried[str(carrier)] = int(number)
    found = [
        UnknownMessage(
            r.id,
            r.member_id,
            r.recipient_digest,
            r.kind,
            r.scheduled_at,
            r.updated_at,
            r.attempts,
            r.last_reason,
            carried.get(r.id, 0),
            r.first_attempt_at,
        )
        for r in rows
    ]
    return found, total


def check_resolution(ids: Sequence[str], outcome: str) -> tuple[list[str], Resolution]:
    """The distinct ids and the outcome, or InvalidInput naming what is wrong."""
    try:
        resolution = Resolution(outcome)
    except ValueError:
        raise InvalidInput("Choose sent or failed.", {"outcome": "unknown"}) from None
    chosen = sorted({i.strip() for i in ids if i.strip()})
    if not chosen:
        raise InvalidInput("Choose at least one message.", {"message": "none chosen"})
    if len(chosen) > MAX_AT_ONCE:
        raise InvalidInput(
            f"Choose at most {MAX_AT_ONCE} messages at once.", {"message": "too many"}
        )
    if any(len(i) > 64 or not comparable_text(i) for i in chosen):
        raise InvalidInput("That is not a message id.", {"message": "not an id"})
    return chosen, resolution


def resolve_unknown(ctx: Context, ids: Sequence[str], outcome: str, now: datetime) -> Resolved:
    """Record what became of these unknown emails (with the ones a digest carried). Ids
    that name no message, or a message a digest carried (settled with its digest only),
    are refused and nothing changes; ids already resolved are left as they are and
    reported."""
    chosen, resolution = check_resolution(ids, outcome)
    with ctx.unit_of_work(now) as uow:
        named = uow.conn.execute(
            select(messages.c.id, messages.c.recipient_digest, messages.c.carried_by).where(
                messages.c.id.in_(chosen)
            )
        ).all()
        missing = set(chosen) - {r.id for r in named}
        if missing:
            raise InvalidInput(
                "Some of these messages do not exist.", {"message": f"{len(missing)} unknown ids"}
            )
        # A digest's parts left, or not, with the email that carried them: only the carrier
        # is offered, and settling a part alone would split one email's fate in two.
        if any(r.carried_by is not None for r in named):
            raise InvalidInput(
                "Some of these messages were carried in a digest: settle the digest.",
                {"message": "carried"},
            )
        digests = sorted({r.recipient_digest for r in named})
        lock_recipients(uow.conn, digests)
        # Read again under the recipients' locks: another admin may have just answered.
        rows = uow.conn.execute(
            select(messages).where(
                messages.c.recipient_digest.in_(digests),
                messages.c.state == _UNKNOWN,
                (messages.c.id.in_(chosen) | messages.c.carried_by.in_(chosen)),
            )
        ).all()
        open_ids = {r.id for r in rows}
        already = tuple(i for i in chosen if i not in open_ids)
        if resolution is Resolution.SENT:
            moved = record_arrived(uow, ctx, rows, SENT_REASON)
        else:
            moved = _not_delivered(uow, rows)
        uow.commit()
    return Resolved(len(rows), moved, already)


def _not_delivered(uow: UnitOfWork, rows: Sequence[Any]) -> int:
    """The emails never arrived: failed, and the invitations they were the first email of
    closed as not delivered (never sent again by themselves)."""
    set_messages(
        uow,
        [r.id for r in rows],
        MessageState.UNKNOWN,
        MessageState.FAILED,
        FAILED_REASON,
        lease_until=None,
    )
    first = [r.invitation_id for r in rows if r.kind != MessageKind.REMINDER.value]
    if not first:
        return 0
    return len(
        move_invitations(
            uow,
            invitations.c.id.in_(first) & (invitations.c.state == InvitationState.SCHEDULED.value),
            InvitationState.BOUNCED,
            FAILED_REASON,
        )
    )
