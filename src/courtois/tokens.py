"""Signed, scoped tokens for the links in every email (no login on recipient pages).

A token names one invitation and one scope; an unsubscribe token cannot accept an
invitation, and a forged, tampered or expired token is simply invalid, whatever the cause,
so a page learns nothing from a bad token.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from functools import lru_cache

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
    # A member's sign-in link to the member pages, handed out by the host API.
    MEMBER = "member"


# A sign-in link is a password for its lifetime: keep it short.
MEMBER_LINK_MAX_AGE_SECONDS = 15 * 60


Keys = bytes | Sequence[bytes]


def _serializer(secret: Keys, scope: Scope) -> URLSafeTimedSerializer:
    # Several keys, oldest first: the newest signs, every one of them verifies, so a key can
    # be replaced without breaking the links already in people's inboxes.
    return _signer((secret,) if isinstance(secret, bytes) else tuple(secret), scope)


@lru_cache(maxsize=64)
def _signer(keys: tuple[bytes, ...], scope: Scope) -> URLSafeTimedSerializer:
    # The scope is the salt: a token signed for one scope never verifies for another. Built
    # once per key set and scope: every email carries three tokens or more.
    return URLSafeTimedSerializer(list(keys), salt=f"courtois.{scope.value}")


def make_token(secret: Keys, scope: Scope, invitation_id: str) -> str:
    """A URL-safe token for one invitation and one scope."""
    return _serializer(secret, scope).dumps(invitation_id)


def read_token(secret: Keys, scope: Scope, token: str, max_age: int = MAX_AGE_SECONDS) -> str:
    """The invitation id a valid token names; NotFound for any invalid token."""
    try:
        value = _serializer(secret, scope).loads(token, max_age=max_age)
    except BadSignature:
        raise NotFound("This link is not valid.") from None
    if not isinstance(value, str):
        raise NotFound("This link is not valid.")
    return value
