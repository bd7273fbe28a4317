"""unsubscribe_by_token: the links in every email (the one-click URL and the mailto of
List-Unsubscribe) name an invitation by a signed token; this turns one into an opt-out."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, select

from courtois.domain.errors import NotFound
from courtois.services.context import Context
from courtois.services.locks import lock_recipients
from courtois.services.recipients import checkpoint, stop_mail
from courtois.store.tables import invitations
from courtois.tokens import Scope, read_token

_RECIPIENT_OF = select(invitations.c.recipient_digest).where(
    invitations.c.id == bindparam("b_id", type_=invitations.c.id.type)
)


def unsubscribe_by_token(ctx: Context, token: str, now: datetime) -> dict[str, int]:
    """Stop all mail from the platform to the recipient the token was sent to (RFC 8058's
    one click means "no more of this"); idempotent. A bad token is NotFound, whatever is
    wrong with it. The invitation is read in the transaction that makes the change: one
    connection and one commit, and a bad token rolls back having written nothing."""
    invitation_id = read_token(ctx.settings.token_secrets, Scope.UNSUBSCRIBE, token)
    with ctx.unit_of_work(now) as uow:
        digest = uow.conn.execute(_RECIPIENT_OF, {"b_id": invitation_id}).scalar_one_or_none()
        if digest is None:
            raise NotFound("This link is not valid.")
        lock_recipients(uow.conn, [digest])
        counts = stop_mail(uow, digest)
        uow.commit()
    checkpoint(ctx)
    return counts
