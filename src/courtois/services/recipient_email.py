"""The email a recipient's link came in, and the members it carried: a digest's footer offers
to stop "these members", so its pages must know who they were.

Which invitations an email carried is `recipient_link.email_invitations`: no token changes,
so the links already in inboxes show every member of their digest too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from courtois.services.context import Context
from courtois.services.recipient_actions import member_names, stop_member
from courtois.services.recipient_link import Link, email_invitations


@dataclass(frozen=True, slots=True)
class Inviting:
    """One member whose invitation the email carried."""

    invitation_id: str
    member_id: str
    # None once the member was erased (the pages say "a former member").
    member_name: str | None


def email_inviters(ctx: Context, link: Link) -> tuple[Inviting, ...]:
    """The members whose invitations the linked email carried, with their names."""
    with ctx.engine.connect() as connection:
        carried = email_invitations(connection, link)
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
