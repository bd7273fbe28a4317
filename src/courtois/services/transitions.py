"""Moving invitations and messages through their state machines, with a ledger entry each.

Every state change goes through here, so none escapes the machines' edges or the ledger.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import ClauseElement, ColumnElement, Table, Update, bindparam, select, update

from courtois.domain.invitations import INVITATION_MACHINE, InvitationState
from courtois.domain.ledger import EventType
from courtois.domain.messages import MESSAGE_MACHINE, MessageKind, MessageState
from courtois.services import sender_activity as activity
from courtois.services.unit_of_work import UnitOfWork
from courtois.services.webhooks import record_invitation_events
from courtois.store.tables import invitations, messages

# Ids per statement: well under every engine's limit on bound parameters.
_CHUNK = 500


# What a move needs of each invitation it considers: a row that starts (id, state,
# member_id), read by position (a SQLAlchemy row's fields read by name cost an
# AttributeError raised and caught each, 0.7 us, and a worker's batch moves hundreds).
FoundInvitation = Sequence[Any]


@lru_cache(maxsize=64)
def _moving(table: Table, names: tuple[str, ...]) -> Update:
    """`UPDATE table SET <names> WHERE id IN :b_ids AND state = :b_from`, built once per
    table and set of columns: building and cache-keying the statement on every move cost
    more CPU than running it. The values bind as `v_<column>` (no column is named so, and
    a parameter named like a column would be taken as one more SET)."""
    return (
        update(table)
        .where(
            table.c.id.in_(bindparam("b_ids", expanding=True)),
            table.c.state == bindparam("b_from", type_=table.c.state.type),
        )
        .values({name: bindparam(f"v_{name}", type_=table.c[name].type) for name in names})
    )


def _run_moves(
    uow: UnitOfWork, table: Table, ids: Sequence[str], current: str, values: dict[str, Any]
) -> None:
    """Set `values` on the rows among `ids` still in state `current`, by chunks of ids.
    Values that are SQL expressions (`attempts + 1`) cannot be bound: those statements are
    built as they come."""
    if not ids:
        return
    if any(isinstance(value, ClauseElement) for value in values.values()):
        for start in range(0, len(ids), _CHUNK):
            uow.conn.execute(
                update(table)
                .where(table.c.id.in_(list(ids[start : start + _CHUNK])), table.c.state == current)
                .values(**values)
            )
        return
    statement = _moving(table, tuple(values))
    bound = {f"v_{name}": value for name, value in values.items()}
    for start in range(0, len(ids), _CHUNK):
        chunk = list(ids[start : start + _CHUNK])
        uow.conn.execute(statement, {"b_ids": chunk, "b_from": current, **bound})


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
    moved = move_found(uow, rows, target, reason, forget_address, extra)
    if moved and INVITATION_MACHINE.is_final(target):
        cancel_messages(uow, messages.c.invitation_id.in_(moved), reason)
    record_invitation_events(uow, moved, target)
    return moved


def move_found(
    uow: UnitOfWork,
    rows: Iterable[FoundInvitation],
    target: InvitationState,
    reason: str,
    forget_address: bool = True,
    extra: dict[str, Any] | None = None,
) -> list[str]:
    """`move_invitations` for invitations the caller has already read, up to (not
    including) cancelling their messages and the webhook events: the caller, which read
    them with a statement of its own, does those, in that order. Returns the moved ids."""
    values: dict[str, Any] = {"state": target.value, "updated_at": uow.now, **(extra or {})}
    if forget_address and INVITATION_MACHINE.is_final(target):
        values["address"] = None
    moved = []
    keys: list[tuple[str, str]] = []
    # Every invitation moved from one state gets the same values: one UPDATE per state and
    # chunk, not one per invitation (a worker's batch moves hundreds at once).
    by_state: dict[InvitationState, list[str]] = {}
    for row in rows:
        id_, state, member_id = row[0], row[1], row[2]
        current = InvitationState(state)
        if not INVITATION_MACHINE.can(current, target):
            continue
        by_state.setdefault(current, []).append(id_)
        uow.record(
            EventType.INVITATION_STATE,
            {"invitation": id_, "from": current.value, "to": target.value, "reason": reason},
        )
        moved.append(id_)
        keys.append((member_id, id_))
    for current, ids in by_state.items():
        _run_moves(uow, invitations, ids, current.value, values)
    sent_at = values.get("sent_at")
    if sent_at is not None and not isinstance(sent_at, datetime):
        raise TypeError("sent_at must be an instant: sender_activity keeps a copy of it")
    activity.record_moves(uow.conn, keys, target, sent_at)
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
    changes = {"state": target.value, "updated_at": uow.now, "last_reason": reason[:200]}
    _run_moves(uow, messages, id_list, current.value, {**changes, **values})
    if target is MessageState.CANCELLED:
        activity.record_cancelled(uow.conn, id_list)
    for message_id in id_list:
        uow.record(
            EventType.MESSAGE_STATE,
            {"message": message_id, "from": current.value, "to": target.value, "reason": reason},
        )


def record_digests(uow: UnitOfWork, carrier_ids: Iterable[str]) -> None:
    """These carriers took others along, so they left (or may have) as digests, and are
    recorded as such: whoever settles an email (its worker's outcome, an expired lease, the
    recipient's click) records its kind, so none is left an `invitation` carrying others."""
    ids = sorted(set(carrier_ids))
    for start in range(0, len(ids), _CHUNK):
        uow.conn.execute(
            update(messages)
            .where(messages.c.id.in_(ids[start : start + _CHUNK]))
            .values(kind=MessageKind.DIGEST.value)
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
