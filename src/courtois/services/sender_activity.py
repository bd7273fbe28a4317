"""The member-side record of a member's invitations, from which sender facts are read.

Invitations and their emails live with their recipients (docs/scaling.md), but the
sender-quota rules ask about one member: emails created this week, outcomes over 90 days.
Reading those from `invitations` and `messages` would visit every shard on every invitation
and every send. So each invitation that may count (it has an email, or was sent) also has a
row here, keyed by member, kept in step in the transaction that changes it: created with
the invitation, its state and `sent_at` following every move
(`transitions.move_invitations`), its email dropped from the count when that email is
cancelled (`transitions.set_messages`). Nothing else writes it; `facts.sender_facts` reads
it, with the member's complaints, in one statement.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, update

from courtois.domain.invitations import InvitationState
from courtois.store.bulk import insert_rows
from courtois.store.tables import sender_activity

# Ids per statement: well under every engine's limit on bound parameters.
_CHUNK = 500


def record_invitations(connection: Connection, rows: Iterable[Mapping[str, Any]]) -> None:
    """One row per new invitation that may count (one with a scheduled email, or shared by
    the member and so sent), from its invitations-table row and the id of that email."""
    insert_rows(
        connection,
        sender_activity,
        [
            {
                "member_id": row["member_id"],
                "invitation_id": row["id"],
                "message_id": row["message_id"],
                "created_at": row["created_at"],
                "sent_at": row["sent_at"],
                "state": row["state"],
            }
            for row in rows
        ],
    )


# Built once: the worker moves invitations on every batch, opt-outs cancel on every click.
_KEY = (sender_activity.c.member_id == bindparam("key_member")) & (
    sender_activity.c.invitation_id == bindparam("key_invitation")
)
_STATE = bindparam("v_state", type_=sender_activity.c.state.type)
_MOVE = update(sender_activity).where(_KEY).values(state=_STATE)
_MOVE_SENT = (
    update(sender_activity)
    .where(_KEY)
    .values(state=_STATE, sent_at=bindparam("v_sent_at", type_=sender_activity.c.sent_at.type))
)
_CANCEL = (
    update(sender_activity)
    .where(sender_activity.c.message_id.in_(bindparam("b_ids", expanding=True)))
    .values(message_id=None)
)


def record_moves(
    connection: Connection,
    moved: Collection[tuple[str, str]],
    target: InvitationState,
    sent_at: datetime | None,
) -> None:
    """Invitations, as (member id, invitation id), moved to `target`; `sent_at` when the
    move set it. One statement executed for many keys, each row found by its whole primary
    key: a worker's batch names hundreds of members, and an IN list of key pairs is a full
    scan on SQLite (on PostgreSQL too the keyed executemany was faster: 14 ms for 500 keys,
    against 17-25 ms)."""
    if not moved:
        return
    values = {"v_state": target.value, "v_sent_at": sent_at}
    connection.execute(
        _MOVE if sent_at is None else _MOVE_SENT,
        [{"key_member": m, "key_invitation": i, **values} for m, i in moved],
    )


def record_cancelled(connection: Connection, message_ids: Collection[str]) -> None:
    """Cancelled emails no longer count against their sender's caps. Rare (withdrawals,
    revocations, opt-outs, refusals at send time), so found by message id alone."""
    ordered = sorted(message_ids)
    for start in range(0, len(ordered), _CHUNK):
        connection.execute(_CANCEL, {"b_ids": ordered[start : start + _CHUNK]})
