"""The member pages' session: a signed cookie, a CSRF token bound to it, and the origin check.

The cookie holds only the member's id and a random nonce, signed with the secret key (no
server-side store): HttpOnly so no script reads it, SameSite=Lax so other sites' forms do
not carry it, Secure when the service is public over https, Path=/member so no other page
sees it, and valid 12 hours. Every POST carries a token derived from the nonce, which
another site cannot read, and a POST whose Origin (or Sec-Fetch-Site) names another site
is refused before its body is read.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from courtois.config import Settings

COOKIE = "courtois_member"
PATH = "/member"
MAX_AGE_SECONDS = 12 * 3600
CSRF_FIELD = "csrf"
SALT = "courtois.member-session"


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in member, the token their forms must carry, and when it was opened (the
    member's signing out ends every session opened up to then)."""

    member_id: str
    csrf: str
    opened_at: datetime


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret, salt=SALT)


def _csrf_for(settings: Settings, nonce: str) -> str:
    mac = hmac.new(settings.secret, f"courtois.member-csrf:{nonce}".encode(), hashlib.sha256)
    return mac.hexdigest()[:40]


def open_session(settings: Settings, member_id: str) -> str:
    """A new cookie value for this member (a fresh nonce, hence a fresh CSRF token)."""
    # The opening instant to the microsecond ("t"): the signer's own stamp is in whole
    # seconds, too coarse to tell a session opened just after a sign-out from one before.
    opened = datetime.now(UTC).isoformat()
    return _serializer(settings).dumps(
        {"m": member_id, "n": secrets.token_urlsafe(18), "t": opened}
    )


def read_session(request: Request) -> Session | None:
    """The request's session, if its cookie is present, intact and younger than 12 hours."""
    settings: Settings = request.app.state.ctx.settings
    value = request.cookies.get(COOKIE)
    if not value or len(value) > 1024:
        return None
    try:
        data, opened_at = _serializer(settings).loads(
            value, max_age=MAX_AGE_SECONDS, return_timestamp=True
        )
    except BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    member_id, nonce = data.get("m"), data.get("n")
    if not isinstance(member_id, str) or not isinstance(nonce, str):
        return None
    return Session(member_id, _csrf_for(settings, nonce), _opened(data.get("t"), opened_at))


def _opened(precise: object, stamped: datetime) -> datetime:
    """When the session was opened: to the microsecond when the cookie says (signed, like
    the rest), else the signer's stamp (cookies made before it said)."""
    if isinstance(precise, str):
        try:
            at = datetime.fromisoformat(precise)
        except ValueError:
            return stamped
        if at.tzinfo is not None:
            return at
    return stamped


def is_secure(settings: Settings) -> bool:
    """Whether the public URL is https, so the cookie must never travel in clear."""
    return urlsplit(settings.base_url).scheme == "https"


def set_session_cookie(response: Response, settings: Settings, value: str) -> None:
    """Attach the session cookie with every protective flag."""
    response.set_cookie(
        COOKIE,
        value,
        max_age=MAX_AGE_SECONDS,
        path=PATH,
        secure=is_secure(settings),
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    """Tell the browser to drop the session cookie."""
    response.delete_cookie(
        COOKIE, path=PATH, secure=is_secure(settings), httponly=True, samesite="lax"
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def from_this_site(request: Request) -> bool:
    """False when the browser says the request comes from elsewhere: an Origin that is
    neither this host nor the public base URL, `Origin: null`, or a cross-site
    Sec-Fetch-Site. Requests without these headers (old browsers, scripts) are judged by the
    CSRF token alone."""
    settings: Settings = request.app.state.ctx.settings
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    origin = origin.strip().lower()
    host = request.headers.get("host", "").lower()
    allowed = {_origin(settings.base_url)}
    if host:
        allowed.update({f"http://{host}", f"https://{host}"})
    return origin in allowed


def from_this_origin(request: Request) -> bool:
    """Stricter than `from_this_site`, for the one POST with no session behind it (signing
    in): the browser must say the request comes from a page of this origin. Any
    Sec-Fetch-Site but `same-origin` (even `none`, a request the user typed, which no page
    of ours makes) and any Origin but ours (`null` included) are refused; a request with
    neither header (a script, not a browser someone else steers) passes."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site != "same-origin":
        return False
    return from_this_site(request)


def valid_csrf(session: Session, given: str | None) -> bool:
    """The form's token is this session's, compared in constant time."""
    return given is not None and hmac.compare_digest(given.encode(), session.csrf.encode())
