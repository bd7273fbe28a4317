"""`/admin/unknown`: the emails whose fate nobody knows, and the admin's word on each.

One form lists them with a checkbox each: a row's own buttons settle that one, the buttons
under the list settle every ticked one. Nothing is ever sent from here (invariant 8).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from courtois.domain.errors import InvalidInput
from courtois.services.admin_unknown import resolve_unknown, unknown_messages
from courtois.web.deps import Ctx, Now
from courtois.web.pages.admin_access import (
    bad_request,
    posted,
    problem_of,
    see_other,
    settings_of,
    signed_in,
)
from courtois.web.pages.admin_render import admin_page, first
from courtois.web.pages.admin_session import csrf_token
from courtois.web.pages.notices import opened, sealed

router = APIRouter(include_in_schema=False)

PAGE = "/admin/unknown"
OUTCOMES = ("sent", "failed")
NOTICE = ("done", "moved", "closed", "already")


@router.get(PAGE)
def in_doubt(request: Request, ctx: Ctx) -> Response:
    """The oldest unknown emails, and what the last resolution did (from its redirect,
    sealed to this session: a link made elsewhere cannot claim emails were settled)."""
    session = signed_in(request)
    if isinstance(session, Response):
        return session
    listed, total = unknown_messages(ctx)
    key = csrf_token(settings_of(request), session)
    notice = opened(key, PAGE, request.query_params, *NOTICE)
    done = notice["done"]
    return admin_page(
        request,
        "admin_unknown.html",
        session=session,
        here="unknown",
        listed=listed,
        total=total,
        done=done if done in OUTCOMES else "",
        moved=_count(notice["moved"]),
        closed=_count(notice["closed"]),
        already=_count(notice["already"]),
    )


def _count(text: str) -> int:
    """A count from the query; anything else is nothing (it only words a notice)."""
    return int(text) if text.isascii() and text.isdigit() and len(text) < 7 else 0


@router.post(PAGE)
async def resolve(request: Request, ctx: Ctx, now: Now) -> Response:
    """Settle one email (its row's button: `one=sent:ID`) or every ticked one (`outcome`
    with the `message` checkboxes), then show the list again."""
    checked = await posted(request)
    if isinstance(checked, Response):
        return checked
    session, fields = checked
    one = first(fields, "one")
    if one:
        outcome, _, message_id = one.partition(":")
        ids = [message_id]
    else:
        outcome, ids = first(fields, "outcome"), fields.get("message", [])
    try:
        result = await run_in_threadpool(resolve_unknown, ctx, ids, outcome, now)
    except InvalidInput as error:
        return bad_request(request, session, problem_of(error), here="unknown")
    notice = sealed(
        csrf_token(settings_of(request), session),
        PAGE,
        done=outcome,
        moved=result.messages,
        closed=result.invitations,
        already=len(result.already),
    )
    return see_other(f"{PAGE}?{notice}")
