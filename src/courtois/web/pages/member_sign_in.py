"""`/member/sign-in/{token}` and `/member/sign-out`: opening and closing the session.

The platform hands its signed-in member a link from `POST /v1/members/{id}/login-link`
(scoped to the member pages, valid 15 minutes, good for one use); the link opens a 12-hour
session. Opening the link (a GET) changes nothing: it shows which account the link signs
in to, with a "Continue as ..." button; only that button's POST, from a page of this
origin, uses the link up and opens the session. Otherwise another site could send a
victim's browser to the attacker's own link and have it signed in as the attacker, so
that what the victim then imports lands in the attacker's address book (login CSRF).

A bad, tampered, expired, used or other-scope link gets one plain page that tells none of
these apart, and leaves whatever session the browser holds as it was: a link is no
statement about the session, so another site cannot sign the member out with one.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from courtois.domain.errors import NotFound
from courtois.domain.members import Member
from courtois.services.context import Context
from courtois.services.members import end_sessions, get_member
from courtois.services.sign_in_links import sign_in_link_used, use_sign_in_link
from courtois.tokens import read_sign_in_token
from courtois.web.deps import Ctx, Now
from courtois.web.pages.i18n import choose_locale
from courtois.web.pages.member_forms import posted
from courtois.web.pages.member_render import (
    HOME,
    go,
    member_page,
    not_signed_in,
    refused,
    signed_in,
)
from courtois.web.pages.member_session import (
    clear_session_cookie,
    from_this_origin,
    open_session,
    set_session_cookie,
)
from courtois.web.pages.render import HEADERS

router = APIRouter(include_in_schema=False)


def _link_member(ctx: Context, token: str) -> tuple[Member, str] | None:
    """The member a valid, unused sign-in link names and the link's id; None for any
    other link (the causes are not told apart)."""
    try:
        member_id, link_id = read_sign_in_token(ctx.settings.token_secrets, token)
        member = get_member(ctx, member_id)
    except NotFound:
        return None
    if sign_in_link_used(ctx, link_id):
        return None
    return member, link_id


@router.get("/member/sign-in/{token}")
def confirm_sign_in(request: Request, token: str, ctx: Ctx) -> Response:
    """Show which account the link signs in to and ask to continue; nothing is used up,
    opened or closed here. The page's own Referrer-Policy (`same-origin`) lets its button
    send this origin, which the POST requires; the token goes nowhere else."""
    found = _link_member(ctx, token)
    if found is None:
        return not_signed_in(request, session_checked=False)
    member, _link_id = found
    current = signed_in(request, ctx)
    return member_page(
        request,
        None,
        "member_sign_in.html",
        # The account's language, as every page after it will be.
        locale=choose_locale(member.locale, request.headers.get("accept-language")),
        link_member=member,
        token=token,
        current=current.member if current else None,
    )


@router.post("/member/sign-in/{token}")
def sign_in(request: Request, token: str, ctx: Ctx, now: Now) -> Response:
    """The confirmed sign-in: refused (403, nothing changed) unless it comes from a page
    of this origin; then the link is checked again, used up, and a session opened for its
    member, replacing the browser's. A link used before gets the same page as any bad
    link, and the browser's session is left as it was."""
    if not from_this_origin(request):
        return refused(request, signed_in(request, ctx))
    found = _link_member(ctx, token)
    if found is None or not use_sign_in_link(ctx, found[1], now):
        return not_signed_in(request, session_checked=False)
    # No referrer: the token in the page's URL must not travel on, even to the next page.
    response = go(HOME, HEADERS)
    set_session_cookie(response, ctx.settings, open_session(ctx.settings, found[0].id))
    return response


@router.get("/member")
def without_slash() -> Response:
    """The dashboard's address is `/member/`."""
    return go(HOME)


@router.post("/member/sign-out")
async def sign_out(request: Request, ctx: Ctx) -> Response:
    """End the member's sessions (this cookie and any copy of it elsewhere) and drop the
    cookie; the next page needs a new link from the platform."""
    checked = await posted(request, ctx)
    if isinstance(checked, Response):
        return checked
    signed, _form = checked
    # The cookie's clock is the wall clock: so is the instant its sessions end.
    await run_in_threadpool(end_sessions, ctx, signed.member.id, datetime.now(UTC))
    response = await run_in_threadpool(
        member_page, request, signed, "member_signed_out.html", why="signed-out"
    )
    clear_session_cookie(response, ctx.settings)
    return response
