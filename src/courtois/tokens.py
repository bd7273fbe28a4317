"""Signed, scoped tokens for the links in every email (no login on recipient pages).

A token names one invitation and one scope; an unsubscribe token cannot accept an
invitation, and a forged, tampered or expired token is simply invalid, whatever the cause,
so a page learns nothing from a bad token.
"""

from __future__ import annotations

from enum import StrEnum

from itsdangerous import BadSignature, URLSafeTimedSerializer

from courtois.domain.errors import NotFound

# CASL asks that an unsubscribe link work for at least 60 days after the message; the
# tokens live well past that, and a reminder carries fresh ones.
MAX_AGE_SECONDS = 400 * 24 * 3600


class Scope(StrEnum):
    """What a token lets its holder do."""

    UNSUBSCRIBE = "u"
    WHY = "why"
    JOIN = "join"


def _serializer(secret: bytes, scope: Scope) -> URLSafeTimedSerializer:
    # The scope is the salt: a token signed for one scope never verifies for another.
    return URLSafeTimedSerializer(secret, salt=f"courtois.{scope.value}")


def make_token(secret: bytes, scope: Scope, invitation_id: str) -> str:
    """A URL-safe token for one invitation and one scope."""
    return _serializer(secret, scope).dumps(invitation_id)


def read_token(secret: bytes, scope: Scope, token: str, max_age: int = MAX_AGE_SECONDS) -> str:
    """The invitation id a valid token names; NotFound for any invalid token."""
    try:
        value = _serializer(secret, scope).loads(token, max_age=max_age)
    except BadSignature:
        raise NotFound("This link is not valid.") from None
    if not isinstance(value, str):
        raise NotFound("This link is not valid.")
    return value
