"""Moving invitations and messages through their state machines, with a ledger entry each.

Every state change goes through here, so none escapes the machines' edges or the ledger.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select, update

from courtois.domain.invitations import INVITATION_MACHINE, InvitationState
from courtois.domain.ledger import EventType
from courtois.domain.messages import MESSAGE_MACHINE, MessageKind, MessageState
from courtois.services import sender_activity as activity
from courtois.services.unit_of_work import UnitOfWork
from courtois.services.webhooks import record_invitation_events
from courtois.store.tables import invitations, messages

# Ids per statement: well under every engine's limit on bound parameters.
_CHUNK = 500


def move_invitations(
    uow: UnitOfWork,
    where: ColumnElement[bool],
    target: InvitationState,
    reason: str,
    forget_address: bool = True,
    extra: dict[str, Any] | None = None,
) -> list[str]:
    """Move every matching invitation that has the edge to `target`; others are left alone.
    Their pending messages are cancelled; closed invitations drop their address."""
    rows = uow.conn.execute(
        select(invitations.c.id, invitations.c.state, invitations.c.member_id).where(where)
    ).all()
    values: dict[str, Any] = {"state": target.value, "updated_at": uow.now, **(extra or {})}
    if forget_address and INVITATION_MACHINE.is_final(target):
        values["address"] = None
    moved = []
    keys: list[tuple[str, str]] = []
    # Every invitation moved from one state gets the same values: one UPDATE per state and
    # chunk, not one per invitation (a worker's batch moves hundreds at once).
    by_state: dict[InvitationState, list[str]] = {}
    for row in rows:
        current = InvitationState(row.state)
        if not INVITATION_MACHINE.can(current, target):
            continue
        by_state.setdefault(current, []).append(row.id)
        uow.record(
            EventType.INVITATION_STATE,
            {"invitation": row.id, "from": current.value, "to": target.value, "reason": reason},
        )
        moved.append(row.id)
        keys.append((row.member_id, row.id))
    for current, ids in by_state.items():
        for start in range(0, len(ids), _CHUNK):
            uow.conn.execute(
                update(invitations)
                .where(
                    invitations.c.id.in_(ids[start : start + _CHUNK]),
                    invitations.c.state == current.value,
                )
                .values(**values)
            )
    sent_at = values.get("sent_at")
    if sent_at is not None and not isinstance(sent_at, datetime):
        raise TypeError("sent_at must be an instant: sender_activity keeps a copy of it")
    activity.record_moves(uow.conn, keys, target, sent_at)
    if moved and INVITATION_MACHINE.is_final(target):
        cancel_messages(uow, messages.c.invitation_id.in_(moved), reason)
    record_invitation_events(uow, moved, target)
    return moved


def cancel_messages(uow: UnitOfWork, where: ColumnElement[bool], reason: str) -> list[str]:
    """Cancel every matching message still waiting to be sent (nothing queued leaves)."""
    ids = list(
        uow.conn.execute(
            select(messages.c.id).where(where, messages.c.state == MessageState.SCHEDULED.value)
        ).scalars()
    )
    set_messages(uow, ids, MessageState.SCHEDULED, MessageState.CANCELLED, reason)
    return ids


def set_messages(
    uow: UnitOfWork,
    ids: Iterable[str],
    current: MessageState,
    target: MessageState,
    reason: str,
    **values: Any,
) -> None:
    """Move messages known to be in `current` to `target`, checked against the machine."""
    MESSAGE_MACHINE.check(current, target)
    id_list = list(ids)
    for start in range(0, len(id_list), _CHUNK):
        chunk = id_list[start : start + _CHUNK]
        uow.conn.execute(
            update(messages)
            .where(messages.c.id.in_(chunk), messages.c.state == current.value)
            .values(state=target.value, updated_at=uow.now, last_reason=reason[:200], **values)
        )
    if target is MessageState.CANCELLED:
        activity.record_cancelled(uow.conn, id_list)
    for message_id in id_list:
        uow.record(
            EventType.MESSAGE_STATE,
            {"message": message_id, "from": current.value, "to": target.value, "reason": reason},
        )


def scheduled_message(
    message_id: str,
    invitation_id: str,
    member_id: str,
    digest: str,
    kind: MessageKind,
    at: datetime,
    now: datetime,
) -> dict[str, Any]:
    """A new messages-table row, scheduled for `at`: the one shape every message starts in."""
    return {
        "id": message_id,
        "invitation_id": invitation_id,
        "member_id": member_id,
        "recipient_digest": digest,
        "kind": kind.value,
        "state": MessageState.SCHEDULED.value,
        "scheduled_at": at,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
        "sent_at": None,
        "lease_until": None,
        "carried_by": None,
        "last_reason": None,
    }
