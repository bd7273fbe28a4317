"""Who may see and change what on the admin pages: nothing without an API key configured,
nothing but the sign-in form without a signed-in session, and no change without the
session's CSRF token."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from courtois.config import Settings
from courtois.domain.errors import InvalidInput
from courtois.services.admin_sessions import admin_session_ended
from courtois.web.pages.admin_render import (
    ADMIN_HEADERS,
    BadAdminForm,
    admin_page,
    first,
    read_admin_form,
)
from courtois.web.pages.admin_session import Session, csrf_matches, enabled, read_session

SIGN_IN = "/admin/sign-in"


def settings_of(request: Request) -> Settings:
    """The app's settings."""
    settings: Settings = request.app.state.ctx.settings
    return settings


def see_other(url: str) -> RedirectResponse:
    """A 303 after a form or to the sign-in page, with the pages' headers."""
    return RedirectResponse(url, status_code=303, headers=ADMIN_HEADERS)


def disabled(request: Request) -> Response:
    """The plain answer of every admin URL when no API key is configured."""
    return admin_page(request, "admin_disabled.html", 403)


def refused(request: Request, session: Session | None) -> Response:
    """A form that did not come from this session's pages: refused, nothing changed."""
    return admin_page(request, "admin_refused.html", 403, session=session)


def bad_request(
    request: Request, session: Session | None, problem: str, here: str = ""
) -> Response:
    """Input that cannot be used: said plainly, nothing changed."""
    return admin_page(request, "admin_bad_request.html", 400, session, here=here, problem=problem)


def current_session(request: Request) -> Session | None:
    """The request's session: its cookie valid, and not one the admin signed out of (a
    copy of a signed-out cookie is refused like a forged one)."""
    session = read_session(request, settings_of(request))
    if session is None or admin_session_ended(request.app.state.ctx, session.id):
        return None
    return session


def signed_in(request: Request) -> Session | Response:
    """The signed-in session of a reading request, or where to go instead."""
    settings = settings_of(request)
    if not enabled(settings):
        return disabled(request)
    session = current_session(request)
    if session is None or not session.signed_in:
        return see_other(SIGN_IN)
    return session


async def posted(
    request: Request, signed_in_only: bool = True
) -> tuple[Session, dict[str, list[str]]] | Response:
    """A POST's session and fields once its CSRF token matches the session, or the
    refusal to send instead; nothing is read from the form before that."""
    settings = settings_of(request)
    if not enabled(settings):
        return disabled(request)
    session = await run_in_threadpool(current_session, request)
    try:
        fields = await read_admin_form(request)
    except BadAdminForm:
        return refused(request, session)
    if session is None or not csrf_matches(settings, session, first(fields, "csrf")):
        return refused(request, session)
    if signed_in_only and not session.signed_in:
        return refused(request, session)
    return session, fields


# What each refusal of the services is called on the pages (their detail's key and value).
PROBLEMS: Mapping[tuple[str, str], str] = {
    ("from", "not a date"): "not-a-date",
    ("to", "not a date"): "not-a-date",
    ("from", "out of range"): "year-range",
    ("to", "out of range"): "year-range",
    ("from", "after to"): "range-order",
    ("to", "range too long"): "range-length",
    ("message", "none chosen"): "none-chosen",
    ("message", "too many"): "too-many",
    ("message", "carried"): "carried",
    ("outcome", "unknown"): "outcome",
}


def problem_of(error: InvalidInput) -> str:
    """The page's name for a refusal: a known pair, else the field it is about."""
    for key, value in error.details.items():
        known = PROBLEMS.get((key, value))
        if known:
            return known
        return key
    return "form"
