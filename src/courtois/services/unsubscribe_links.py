"""unsubscribe_by_token: the links in every email (the one-click URL and the mailto of
List-Unsubscribe) name an invitation by a signed token; this turns one into an opt-out."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from courtois.domain.errors import NotFound
from courtois.services.context import Context
from courtois.services.recipients import unsubscribe
from courtois.store.tables import invitations
from courtois.tokens import Scope, read_token


def unsubscribe_by_token(ctx: Context, token: str, now: datetime) -> dict[str, int]:
    """Stop all mail from the platform to the recipient the token was sent to (RFC 8058's
    one click means "no more of this"); idempotent. A bad token is NotFound, whatever is
    wrong with it."""
    invitation_id = read_token(ctx.settings.token_secrets, Scope.UNSUBSCRIBE, token)
    with ctx.engine.connect() as connection:
        digest = connection.execute(
            select(invitations.c.recipient_digest).where(invitations.c.id == invitation_id)
        ).scalar_one_or_none()
    if digest is None:
        raise NotFound("This link is not valid.")
    return unsubscribe(ctx, digest, now)
