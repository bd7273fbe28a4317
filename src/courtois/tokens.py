"""Signed, scoped tokens for the links in every email (no login on recipient pages).

A token names one invitation and one scope; an unsubscribe token cannot accept an
invitation, and a forged, tampered or expired token is simply invalid, whatever the cause,
so a page learns nothing from a bad token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Sequence
from enum import StrEnum
from functools import lru_cache

from itsdangerous import BadSignature, URLSafeTimedSerializer

from courtois.domain.errors import NotFound

# CASL asks that an unsubscribe link work for at least 60 days after the message; the
# tokens live well past that, and a reminder carries fresh ones.
MAX_AGE_SECONDS = 400 * 24 * 3600
# How far ahead of the reader's clock the signer's may run (hosts synchronised by NTP are
# within a second; this leaves room for one that drifted) before a token counts as forged.
CLOCK_SKEW_SECONDS = 5 * 60


class Scope(StrEnum):
    """What a token lets its holder do."""

    UNSUBSCRIBE = "u"
    WHY = "why"
    JOIN = "join"
    # The /why and /u links in a text a member sends from their own mailbox (strict-eu): the
    # member holds them too, so they open that one invitation only, never the recipient's
    # whole record (see `recipient_actions.Link.shared`).
    SHARED = "shared"
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


# A sign-in link's own id: 18 random bytes, base64url.
_LINK_ID = re.compile(r"[A-Za-z0-9_-]{24}")


def make_sign_in_token(secret: Keys, member_id: str) -> str:
    """A member's sign-in link token: the member and a random link id, so that each link is
    one of a kind and can be used once (two links made in the same second differ)."""
    return make_token(secret, Scope.MEMBER, f"{member_id} {secrets.token_urlsafe(18)}")


def read_sign_in_token(
    secret: Keys, token: str, max_age: int = MEMBER_LINK_MAX_AGE_SECONDS
) -> tuple[str, str]:
    """The member and the link id a valid sign-in token names; NotFound for any invalid one,
    a token without a link id included."""
    member_id, space, link_id = read_token(secret, Scope.MEMBER, token, max_age).partition(" ")
    if not space or not member_id or not _LINK_ID.fullmatch(link_id):
        raise NotFound("This link is not valid.")
    return member_id, link_id


def make_token(secret: Keys, scope: Scope, invitation_id: str) -> str:
    """A URL-safe token for one invitation and one scope.

    In itsdangerous's format, which `read_token` reads with itsdangerous: the payload, a
    timestamp, an HMAC-SHA1 under the key derived for the scope, each base64url without
    padding. Made here, and never compressed: itsdangerous tries zlib on every payload,
    whose set-up alone (about 80 microseconds) cost more than the rest of the token, to
    shorten by a few bytes only an id that repeats itself, which ids never do. Tokens it
    compressed (a leading ".") are read all the same."""
    keys = (secret,) if isinstance(secret, bytes) else tuple(secret)
    payload = json.dumps(invitation_id, ensure_ascii=False, separators=(",", ":")).encode()
    value = _b64(payload) + b"." + _b64(int(time.time()).to_bytes(8, "big").lstrip(b"\0"))
    signature = hmac.digest(_derived_key(keys[-1], scope), value, "sha1")
    return (value + b"." + _b64(signature)).decode("ascii")


@lru_cache(maxsize=64)
def _derived_key(key: bytes, scope: Scope) -> bytes:
    # itsdangerous's default derivation ("django-concat" with SHA-1) for the scope's salt.
    salt = f"courtois.{scope.value}".encode()
    return hashlib.sha1(salt + b"signer" + key).digest()  # noqa: S324 - its derivation


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def read_token(secret: Keys, scope: Scope, token: str, max_age: int = MAX_AGE_SECONDS) -> str:
    """The invitation id a valid token names; NotFound for any invalid token.

    The age is checked here rather than by itsdangerous, which refuses a token stamped even
    a second in its future: the worker that signs and the server that reads may run on two
    hosts, and a clock a little ahead on the first must not break the links it just sent."""
    try:
        value, signed_at = _serializer(secret, scope).loads(token, return_timestamp=True)
    except BadSignature:
        raise NotFound("This link is not valid.") from None
    # In whole seconds, as itsdangerous stamps and checks them.
    age = int(time.time()) - int(signed_at.timestamp())
    if not isinstance(value, str) or not -CLOCK_SKEW_SECONDS <= age <= max_age:
        raise NotFound("This link is not valid.")
    return value
