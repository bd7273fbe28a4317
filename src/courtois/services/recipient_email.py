"""The email a recipient's link came in, and the members it carried: a digest's footer offers
to stop "these members", so its pages must know who they were.

A link names one invitation, the one whose message carried the email (a digest's first);
the invitations it carried are the messages `carried_by` that one. No token changes, so
the links already in inboxes show every member of their digest too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from courtois.domain.messages import DELIVERED_OR_MAYBE, MessageKind
from courtois.services.context import Context
from courtois.services.recipient_actions import Link, member_names, stop_member
from courtois.store.tables import messages

_LEFT = frozenset(state.value for state in DELIVERED_OR_MAYBE)


@dataclass(frozen=True, slots=True)
class Inviting:
    """One member whose invitation the email carried."""

    invitation_id: str
    member_id: str
    # None once the member was erased (the pages say "a former member").
    member_name: str | None


def carried_invitations(connection: Connection, link: Link) -> tuple[str, ...]:
    """The invitations of the email the link came in, in the digest's order (the linked one
    alone when it went alone)."""
    return tuple(invitation for invitation, _member in _carried(connection, link))


def _carried(connection: Connection, link: Link) -> list[tuple[str, str]]:
    """(invitation, member) of each invitation the linked email carried. A reminder never
    joins a digest, but its links name the same invitation as the first email's: from a
    reminder, this is the email it follows. A link of a hand-sent text (strict-eu) names
    its own invitation only."""
    alone = [(link.invitation_id, link.member_id)]
    if link.shared:
        return alone
    # All of one recipient's emails, by the key's digest: a handful (docs/scaling.md).
    sent = [
        row
        for row in connection.execute(
            select(
                messages.c.id,
                messages.c.invitation_id,
                messages.c.member_id,
                messages.c.kind,
                messages.c.state,
                messages.c.carried_by,
                messages.c.scheduled_at,
            ).where(messages.c.recipient_digest == link.digest)
        )
        if row.kind != MessageKind.REMINDER.value and row.state in _LEFT
    ]
    first = next((row for row in sent if row.invitation_id == link.invitation_id), None)
    if first is None:
        return alone
    carrier = first.carried_by or first.id
    together = sorted(
        (row for row in sent if carrier in (row.id, row.carried_by)),
        key=lambda row: (row.scheduled_at, row.member_id, row.id),
    )
    return [(row.invitation_id, row.member_id) for row in together]


def email_inviters(ctx: Context, link: Link) -> tuple[Inviting, ...]:
    """The members whose invitations the linked email carried, with their names."""
    with ctx.engine.connect() as connection:
        carried = _carried(connection, link)
        name_of = member_names(connection, [member for _invitation, member in carried])
    return tuple(
        Inviting(invitation, member, name_of[member])
        for invitation, member in carried
        if member in name_of
    )


def stop_email_members(ctx: Context, link: Link, now: datetime) -> tuple[Inviting, ...]:
    """No more mail from any member the email carried (invariant 4), each stopped as one
    "stop this member" would; returns them. Idempotent, as each stop is."""
    inviters = email_inviters(ctx, link)
    for inviting in inviters:
        stop_member(ctx, link, now, inviting.invitation_id)
    return inviters
