"""`/member/sign-in/{token}` and `/member/sign-out`: opening and closing the session.

The platform hands its signed-in member a link from `POST /v1/members/{id}/login-link`
(scoped to the member pages, valid 15 minutes, good for one use); the link opens a 12-hour
session. A bad,
tampered, expired or other-scope link gets one plain page that tells none of these apart.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from courtois.domain.errors import NotFound
from courtois.services.members import end_sessions, get_member
from courtois.services.sign_in_links import use_sign_in_link
from courtois.tokens import read_sign_in_token
from courtois.web.deps import Ctx, Now
from courtois.web.pages.member_forms import posted
from courtois.web.pages.member_render import HOME, go, member_page, not_signed_in
from courtois.web.pages.member_session import (
    clear_session_cookie,
    open_session,
    set_session_cookie,
)
from courtois.web.pages.render import HEADERS

router = APIRouter(include_in_schema=False)


@router.get("/member/sign-in/{token}")
def sign_in(request: Request, token: str, ctx: Ctx, now: Now) -> Response:
    """Check the link, use it up, and open a session for its member, then go to their
    dashboard. A link used before gets the same page as any bad link."""
    settings = ctx.settings
    try:
        member_id, link_id = read_sign_in_token(settings.token_secrets, token)
        get_member(ctx, member_id)
    except NotFound:
        return not_signed_in(request)
    if not use_sign_in_link(ctx, link_id, now):
        return not_signed_in(request)
    # No referrer: the token in this URL must not travel on, even to the next page.
    response = go(HOME, HEADERS)
    set_session_cookie(response, settings, open_session(settings, member_id))
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
