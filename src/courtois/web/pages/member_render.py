"""Member pages as responses: who is signed in, the page in their language, the refusals.

Member pages carry the recipient pages' strict headers (no script, nothing from elsewhere,
never framed, never cached), but tell their own origin where requests come from. Answers
that are not a page of the member's (not signed in, a refused form) say as little as the
recipient pages' bad links do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from courtois.config import Settings
from courtois.domain.errors import NotFound
from courtois.domain.members import Member
from courtois.services.context import Context
from courtois.services.members import get_member, sessions_ended_at
from courtois.web.pages.i18n import choose_locale
from courtois.web.pages.member_session import (
    COOKIE,
    CSRF_FIELD,
    Session,
    clear_session_cookie,
    read_session,
)
from courtois.web.pages.render import HEADERS, render_page

HOME = "/member/"
# Member pages hold no secret in their URLs, so they may tell their own origin where a
# request comes from; with `no-referrer`, browsers send `Origin: null` on every POST, which
# the origin check must refuse. Nothing is ever sent to another site.
MEMBER_HEADERS = {**HEADERS, "Referrer-Policy": "same-origin"}


@dataclass(frozen=True, slots=True)
class Signed:
    """The signed-in member and their session."""

    session: Session
    member: Member


def signed_in(request: Request, ctx: Context) -> Signed | None:
    """The member whose valid session cookie came with the request, if any."""
    session = read_session(request)
    if session is None:
        return None
    try:
        member = get_member(ctx, session.member_id)
    except NotFound:
        return None
    ended = sessions_ended_at(ctx, member.id)
    if ended is not None and session.opened_at <= ended:
        return None
    return Signed(session, member)


def locale_of(request: Request, signed: Signed | None) -> str:
    """The member's language, else the browser's, else English."""
    member_locale = signed.member.locale if signed else None
    return choose_locale(member_locale, request.headers.get("accept-language"))


def member_page(
    request: Request,
    signed: Signed | None,
    template: str,
    status: int = 200,
    *,
    headers: dict[str, str] | None = None,
    locale: str | None = None,
    **values: Any,
) -> HTMLResponse:
    """A member page in the member's language (or `locale`), with the page headers (and
    `headers` on top); forms get the session's CSRF token as `csrf`."""
    settings: Settings = request.app.state.ctx.settings
    html = render_page(
        settings,
        locale or locale_of(request, signed),
        template,
        member=signed.member if signed else None,
        csrf=signed.session.csrf if signed else "",
        csrf_field=CSRF_FIELD,
        **values,
    )
    return HTMLResponse(html, status_code=status, headers={**MEMBER_HEADERS, **(headers or {})})


def not_signed_in(request: Request, *, session_checked: bool = True) -> HTMLResponse:
    """The one answer to a missing, forged or expired session or sign-in link (401): how to
    sign in, nothing about why.

    A cookie the request carried and that was found stale is dropped. Nothing else touches
    the cookie: a bad sign-in link (`session_checked=False`) says nothing about the
    session, and a request that came without the cookie (another site's POST, which a
    `SameSite=Lax` cookie does not ride) must not be able to sign the member out."""
    response = member_page(
        request,
        None,
        "member_signed_out.html",
        401,
        headers={"Referrer-Policy": "no-referrer"},  # a bad sign-in link is still a secret
        why="sign-in",
    )
    if session_checked and COOKIE in request.cookies:
        clear_session_cookie(response, request.app.state.ctx.settings)
    return response


def refused(request: Request, signed: Signed | None, *, too_big: bool = False) -> HTMLResponse:
    """A POST without this session's token, or from another site (403), or bigger than a
    form may be (413): nothing changed."""
    status = 413 if too_big else 403
    return member_page(request, signed, "member_refused.html", status, too_big=too_big)


def go(url: str, headers: dict[str, str] = MEMBER_HEADERS) -> RedirectResponse:
    """A 303 to one of the member pages, with the page headers."""
    return RedirectResponse(url, status_code=303, headers=headers)
