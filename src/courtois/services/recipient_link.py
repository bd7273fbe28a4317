"""The link a recipient followed: the invitation its signed token names, and the email it
came in.

A link names one invitation, the one whose message carried the email (a digest's first);
the invitations the email carried are the messages `carried_by` that one. No token
changes, so the links already in inboxes reach every invitation of their digest too. What
a recipient chooses from a link ("not interested", "remind me later") is about that email:
the invitations it brought them, whichever of them the token happens to name.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, select

from courtois.domain.errors import NotFound
from courtois.domain.invitations import InvitationState
from courtois.domain.messages import DELIVERED_OR_MAYBE, MessageKind
from courtois.services.context import Context
from courtois.store.tables import invitations, messages
from courtois.tokens import Scope, read_token

# Said for every bad link, whatever is wrong with it, so no answer tells them apart.
INVALID_LINK = "This link is not valid."

_LEFT = frozenset(state.value for state in DELIVERED_OR_MAYBE)


@dataclass(frozen=True, slots=True)
class Link:
    """The invitation a recipient's link names, with what every page needs to know of it."""

    invitation_id: str
    member_id: str
    digest: str
    state: InvitationState
    locale: str
    # Opened from a text the member sent from their own mailbox (strict-eu): the member holds
    # the link too, so it shows and acts on this one invitation only, never on the
    # recipient's other invitations nor on what they chose before (invariant 11).
    shared: bool = False


# Every recipient link reads its invitation: the statement is built once, its id bound.
_LINKED = select(
    invitations.c.member_id,
    invitations.c.recipient_digest,
    invitations.c.state,
    invitations.c.locale,
).where(invitations.c.id == bindparam("b_id", type_=invitations.c.id.type))
# And the choices from a link read the recipient's emails: built once too.
_RECIPIENT_EMAILS = select(
    messages.c.id,
    messages.c.invitation_id,
    messages.c.member_id,
    messages.c.kind,
    messages.c.state,
    messages.c.carried_by,
    messages.c.scheduled_at,
).where(messages.c.recipient_digest == bindparam("b_digest"))


def resolve_link(ctx: Context, scope: Scope, token: str, *, shared_too: bool = False) -> Link:
    """The invitation a valid token of this scope names (or, with `shared_too`, a token of a
    text the member sent by hand). Forged, tampered, expired, wrong-scope tokens and tokens
    naming no stored invitation are all the same NotFound."""
    invitation_id, shared = read_link(ctx, scope, token, shared_too)
    with ctx.engine.connect() as connection:
        return linked_invitation(connection, invitation_id, shared)


def read_link(ctx: Context, scope: Scope, token: str, shared_too: bool) -> tuple[str, bool]:
    """The invitation id a token names, and whether it came from a hand-sent text."""
    try:
        return read_token(ctx.settings.token_secrets, scope, token), False
    except NotFound:
        if not shared_too:
            raise
    return read_token(ctx.settings.token_secrets, Scope.SHARED, token), True


def linked_invitation(connection: Connection, invitation_id: str, shared: bool = False) -> Link:
    """The link to this stored invitation; NotFound (the one answer to every bad link)
    when there is none."""
    row = connection.execute(_LINKED, {"b_id": invitation_id}).first()
    if row is None:
        raise NotFound(INVALID_LINK)
    return Link(
        invitation_id,
        row.member_id,
        row.recipient_digest,
        InvitationState(row.state),
        row.locale,
        shared,
    )


def carried_invitations(connection: Connection, link: Link) -> tuple[str, ...]:
    """The invitations of the email the link came in, in the digest's order (the linked one
    alone when it went alone)."""
    return tuple(invitation for invitation, _member in email_invitations(connection, link))


def email_invitations(connection: Connection, link: Link) -> list[tuple[str, str]]:
    """(invitation, member) of each invitation the linked email carried. A reminder never
    joins a digest, but its links name the same invitation as the first email's: from a
    reminder, this is the email it follows. A link of a hand-sent text (strict-eu) names
    its own invitation only. Only emails that left (or may have) count: an invitation
    still waiting in its member's undo window reached nobody, and is no part of it."""
    alone = [(link.invitation_id, link.member_id)]
    if link.shared:
        return alone
    # All of one recipient's emails, by the key's digest: a handful (docs/scaling.md).
    sent = [
        row
        for row in connection.execute(_RECIPIENT_EMAILS, {"b_digest": link.digest})
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
