"""The admin pages: signing in with the API key, and the router of every admin page.

No API key configured means no admin pages: every admin URL says so and nothing more.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from courtois.services.admin_sessions import end_admin_session
from courtois.web.pages import admin_activity, admin_in_doubt, admin_records, admin_webhooks
from courtois.web.pages.admin_access import (
    SIGN_IN,
    current_session,
    disabled,
    posted,
    see_other,
    settings_of,
)
from courtois.web.pages.admin_render import admin_page, first
from courtois.web.pages.admin_session import (
    enabled,
    end_session,
    key_matches,
    new_session,
    set_session,
)

router = APIRouter(include_in_schema=False)


@router.get(SIGN_IN)
def sign_in_form(request: Request) -> Response:
    """The form asking for the API key, under a session of its own so that it can carry
    a CSRF token like every other form."""
    settings = settings_of(request)
    if not enabled(settings):
        return disabled(request)
    session = current_session(request)
    if session is not None and session.signed_in:
        return see_other("/admin")
    session = session or new_session(signed_in=False)
    response = admin_page(request, "admin_sign_in.html", session=session, wrong=False)
    set_session(response, request, settings, session)
    return response


@router.post(SIGN_IN)
async def sign_in(request: Request) -> Response:
    """The right key opens a new signed-in session (never the one the form was shown
    under); a wrong one changes nothing."""
    checked = await posted(request, signed_in_only=False)
    if isinstance(checked, Response):
        return checked
    session, fields = checked
    settings = settings_of(request)
    if not key_matches(settings, first(fields, "key")):
        return admin_page(request, "admin_sign_in.html", 403, session=session, wrong=True)
    response = see_other("/admin")
    set_session(response, request, settings, new_session(signed_in=True))
    return response


@router.post("/admin/sign-out")
async def sign_out(request: Request) -> Response:
    """End the session on the server, so that a copy of its cookie opens nothing more,
    and drop the cookie."""
    checked = await posted(request, signed_in_only=False)
    if isinstance(checked, Response):
        return checked
    session, _fields = checked
    # The cookie's age is checked against the wall clock: so is the purge of ended ids.
    await run_in_threadpool(end_admin_session, request.app.state.ctx, session.id, datetime.now(UTC))
    response = see_other(SIGN_IN)
    end_session(response, request, settings_of(request))
    return response


router.include_router(admin_activity.router)
router.include_router(admin_records.router)
router.include_router(admin_in_doubt.router)
router.include_router(admin_webhooks.router)
