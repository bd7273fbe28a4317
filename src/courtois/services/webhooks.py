"""The webhook outbox: what the platform is told about invitations, recipients and members.

Events are written by the transaction that makes the change they report, so an event is
never sent for a change that rolled back, nor lost for one that committed. They carry ids
and the recipient's digest only, never an address (invariant 10). None is written while
webhooks are off (no receiver configured): turning them on later does not replay the past.
Every timestamp in a payload has the same form, UTC with microseconds
(`2030-01-02T03:04:05.000000+00:00`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from courtois.domain.ids import new_id
from courtois.domain.invitations import InvitationState
from courtois.services.unit_of_work import UnitOfWork
from courtois.store.bulk import insert_rows
from courtois.store.tables import invitations, webhook_events

PENDING = "pending"

EVENT_OF_STATE = {
    InvitationState.SENT: "invitation.sent",
    InvitationState.ACCEPTED: "invitation.accepted",
    InvitationState.DECLINED: "invitation.declined",
    InvitationState.BOUNCED: "invitation.bounced",
}
UNSUBSCRIBED = "recipient.unsubscribed"
MEMBER_ERASED = "member.erased"
EVENT_TYPES = (*EVENT_OF_STATE.values(), UNSUBSCRIBED, MEMBER_ERASED)


def timestamp(moment: datetime) -> str:
    """A payload's timestamp, always in one form, whatever its microseconds."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def event_row(event: str, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    """One outbox row; its payload is the exact body the receiver will get."""
    event_id = new_id()
    return {
        "id": event_id,
        "type": event,
        "payload": {"id": event_id, "type": event, "created_at": timestamp(now), "data": data},
        "created_at": now,
        "state": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "lease_until": None,
        "delivered_at": None,
    }


def record_invitation_events(
    uow: UnitOfWork, invitation_ids: Sequence[str], state: InvitationState
) -> None:
    """Events for invitations that just reached `state`, if the platform hears of it."""
    event = EVENT_OF_STATE.get(state)
    if event is None or not invitation_ids or not uow.webhooks:
        return
    rows = []
    for start in range(0, len(invitation_ids), 500):
        chunk = list(invitation_ids[start : start + 500])
        for found in uow.conn.execute(
            select(
                invitations.c.id,
                invitations.c.member_id,
                invitations.c.consent_id,
                invitations.c.recipient_digest,
            ).where(invitations.c.id.in_(chunk))
        ):
            data = {
                "invitation_id": found.id,
                "member_id": found.member_id,
                "consent_id": found.consent_id,
                "recipient_digest": found.recipient_digest,
                "status": state.value,
            }
            rows.append(event_row(event, data, uow.now))
    insert_rows(uow.conn, webhook_events, rows)


def record_unsubscribed(
    uow: UnitOfWork, digest: str, from_member: str | None, reason: str = "unsubscribed"
) -> None:
    """The recipient stopped mail from one member or from everyone (`reason` says whether
    by unsubscribing or by asking to be forgotten)."""
    if not uow.webhooks:
        return
    data = {
        "recipient_digest": digest,
        "scope": "everyone" if from_member is None else "member",
        "member_id": from_member,
        "reason": reason,
    }
    insert_rows(uow.conn, webhook_events, [event_row(UNSUBSCRIBED, data, uow.now)])


def record_member_erased(uow: UnitOfWork, member_id: str) -> None:
    """The member's personal data was erased: a platform that mirrors courtois's changes
    hears of it as of any other."""
    if not uow.webhooks:
        return
    data = {"member_id": member_id, "erased_at": timestamp(uow.now)}
    insert_rows(uow.conn, webhook_events, [event_row(MEMBER_ERASED, data, uow.now)])
