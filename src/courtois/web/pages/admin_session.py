"""The admin's session: a signed cookie, and a CSRF token bound to it.

Admins sign in with the platform's API key. The cookie holds no secret: a random session
id, whether it is signed in, and a mark of the API key it was opened with (so changing the
key ends every session), signed with the server's secret and valid for a working day. It
is HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it) and
scoped to `/admin`; Secure whenever the service's public URL is HTTPS or the request came
over HTTPS (behind a proxy that terminates TLS, the public URL says so).

Signing out records the session's id on the server (`services/admin_sessions.py`), and a
cookie naming an ended session is refused, so a copy of it opens nothing more.

Every form carries a token derived from the session id: a POST whose token does not match
the cookie's session is refused before anything is read or changed. The sign-in form has
its token too, from a session opened when the form was shown, and signing in starts a new
session, so nobody can plant a session id before an admin signs in.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from courtois.config import Settings
from courtois.services.admin_sessions import SESSION_MAX_AGE

COOKIE = "courtois_admin"
PATH = "/admin"
MAX_AGE_SECONDS = int(SESSION_MAX_AGE.total_seconds())  # 8 hours


@dataclass(frozen=True)
class Session:
    """One browser's session with the admin pages."""

    id: str
    signed_in: bool


def enabled(settings: Settings) -> bool:
    """Admin pages exist only where an API key is configured."""
    return bool(settings.api_key)


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret, salt="courtois.admin-session")


def _key_mark(settings: Settings) -> str:
    """Which API key a session was opened under, without the key itself."""
    return hmac.new(
        settings.secret, b"courtois.admin-key:" + settings.api_key.encode(), hashlib.sha256
    ).hexdigest()[:32]


def key_matches(settings: Settings, given: str) -> bool:
    """Whether `given` is the API key, in constant time (the lengths are hashed away)."""
    expected = hashlib.sha256(settings.api_key.encode()).digest()
    return enabled(settings) and hmac.compare_digest(
        hashlib.sha256(given.encode()).digest(), expected
    )


def new_session(signed_in: bool) -> Session:
    """A fresh session with an unguessable id."""
    return Session(secrets.token_urlsafe(24), signed_in)


def read_session(request: Request, settings: Settings) -> Session | None:
    """The request's valid session, if it has one."""
    raw = request.cookies.get(COOKIE)
    if not raw or not enabled(settings):
        return None
    try:
        value = _serializer(settings).loads(raw, max_age=MAX_AGE_SECONDS)
    except BadSignature:
        return None
    if not isinstance(value, dict):
        return None
    session_id, signed_in, mark = value.get("id"), value.get("in"), value.get("key")
    if not isinstance(session_id, str) or not isinstance(signed_in, bool):
        return None
    if not isinstance(mark, str) or not hmac.compare_digest(mark, _key_mark(settings)):
        return None
    return Session(session_id, signed_in)


def set_session(response: Response, request: Request, settings: Settings, session: Session) -> None:
    """Send the session's cookie."""
    value = _serializer(settings).dumps(
        {"id": session.id, "in": session.signed_in, "key": _key_mark(settings)}
    )
    response.set_cookie(
        COOKIE,
        value,
        max_age=MAX_AGE_SECONDS,
        path=PATH,
        secure=_secure(request, settings),
        httponly=True,
        samesite="strict",
    )


def _secure(request: Request, settings: Settings) -> bool:
    return request.url.scheme == "https" or settings.base_url.startswith("https://")


def end_session(response: Response, request: Request, settings: Settings) -> None:
    """Tell the browser to drop the cookie."""
    response.delete_cookie(
        COOKIE, path=PATH, secure=_secure(request, settings), httponly=True, samesite="strict"
    )


def csrf_token(settings: Settings, session: Session) -> str:
    """The token every form of this session carries."""
    return hmac.new(
        settings.secret, b"courtois.admin-csrf:" + session.id.encode(), hashlib.sha256
    ).hexdigest()


def csrf_matches(settings: Settings, session: Session | None, given: str) -> bool:
    """Whether a posted token belongs to this session (constant time)."""
    if session is None:
        return False
    return hmac.compare_digest(csrf_token(settings, session).encode(), given.encode("utf-8"))
