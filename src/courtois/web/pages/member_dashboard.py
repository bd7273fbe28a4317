"""`/member/`: the member's invitations and consents, and every way to stop them.

Each invitation shows its state and, while its email waits, the time left in the undo
window; withdraw (one invitation), revoke (a consent and everything unsent under it), stop
everything (every consent at once), delete imported contacts and download my data are one
button or link each (invariant 5).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from courtois.domain.errors import Conflict, NotFound
from courtois.services.contacts import delete_contacts
from courtois.services.context import Context
from courtois.services.lifecycle import UNKNOWN, revoke_consent, stop_everything, withdraw
from courtois.services.member_contacts import search_contacts
from courtois.services.member_export import export_member
from courtois.services.member_overview import (
    InvitationLine,
    Position,
    consents_overview,
    invitations_overview,
)
from courtois.web.api.export import MemberExport
from courtois.web.deps import Ctx, Now
from courtois.web.pages.member_export_words import in_member_words
from courtois.web.pages.member_forms import posted
from courtois.web.pages.member_render import (
    HOME,
    MEMBER_HEADERS,
    go,
    locale_of,
    member_page,
    not_signed_in,
    signed_in,
)
from courtois.web.pages.member_session import Session
from courtois.web.pages.notices import opened, sealed

router = APIRouter(include_in_schema=False)

INVITATIONS_PER_PAGE = 25
CONSENTS_PER_PAGE = 10
NOTICES = frozenset(
    {
        "withdrawn",
        "closed",
        "revoked",
        "already-revoked",
        "stopped",
        "nothing-to-stop",
        "deleted",
        "not-deleted",
        "missing",
        "in-doubt",
        "invited",
    }
)
# The box that confirms deleting the whole address book: one click on a red button must
# not empty it (the box is `required` in the form; a request without it deletes nothing).
CONFIRM_FIELD = "confirm"


def cursor(position: Position | None) -> str:
    """A page position as it travels in a link."""
    return f"{position[0].isoformat()}~{position[1]}" if position else ""


def read_cursor(value: str | None) -> Position | None:
    """The position a link names; anything else means the first page."""
    if not value or len(value) > 120 or "~" not in value or not value.isprintable():
        return None
    at, _, last_id = value.partition("~")
    try:
        moment = datetime.fromisoformat(at)
        # In UTC, as stored: a time that is none there (the year 9999 west of Greenwich)
        # was never given out.
        moment = moment.astimezone(UTC) if moment.tzinfo else moment
    except (ValueError, OverflowError):
        return None
    return (moment, last_id) if moment.tzinfo and last_id else None


def minutes_left(line: InvitationLine, now: datetime) -> int | None:
    """Whole minutes (rounded up) left in the undo window of a waiting invitation; None
    once the window is past, or for anything not waiting."""
    waiting = line.state == "scheduled" and not line.in_doubt
    if not waiting or line.undo_ends is None or now >= line.undo_ends:
        return None
    return max(1, math.ceil((line.undo_ends - now).total_seconds() / 60))


@router.get("/member/")
def dashboard(request: Request, ctx: Ctx, now: Now) -> Response:
    """Invitations newest first (paged), consents (paged), the address book's size."""
    signed = signed_in(request, ctx)
    if signed is None:
        return not_signed_in(request)
    member_id = signed.member.id
    query = request.query_params
    lines = invitations_overview(
        ctx, member_id, read_cursor(query.get("before")), INVITATIONS_PER_PAGE, now
    )
    given = consents_overview(
        ctx, member_id, read_cursor(query.get("consents_before")), CONSENTS_PER_PAGE
    )
    book = search_contacts(ctx, member_id, "", 1, 1)
    # Only this session's own redirects confirm anything (see notices.py), and only in
    # the words the page knows.
    shown = opened(signed.session.csrf, HOME, query, "done", "count")
    notice, count = shown["done"], shown["count"]
    return member_page(
        request,
        signed,
        "member_dashboard.html",
        lines=lines.items,
        more=cursor(lines.after),
        left={line.id: minutes_left(line, now) for line in lines.items},
        consents=given.items,
        more_consents=cursor(given.after),
        paged=bool(query.get("before") or query.get("consents_before")),
        contacts=book.total,
        chosen=book.chosen,
        notice=notice if notice in NOTICES else "",
        count=int(count) if count.isascii() and count.isdigit() and len(count) < 9 else 0,
    )


@router.post("/member/invitations/{invitation_id}/withdraw")
async def withdraw_one(request: Request, invitation_id: str, ctx: Ctx, now: Now) -> Response:
    """Take one invitation back: nothing more of it leaves."""
    return await _take_back(request, ctx, now, withdraw, invitation_id, "closed", "withdrawn")


@router.post("/member/consents/{consent_id}/revoke")
async def revoke_one(request: Request, consent_id: str, ctx: Ctx, now: Now) -> Response:
    """Take a consent back: its unsent invitations are withdrawn, its reminders cancelled."""
    return await _take_back(
        request, ctx, now, revoke_consent, consent_id, "already-revoked", "revoked"
    )


@router.post("/member/stop")
async def stop_all(request: Request, ctx: Ctx, now: Now) -> Response:
    """The member's one click (invariant 5): every consent still active revoked at once."""
    checked = await posted(request, ctx)
    if isinstance(checked, Response):
        return checked
    signed, _form = checked
    stopped = await run_in_threadpool(stop_everything, ctx, signed.member.id, now)
    revoked = stopped["consents_revoked"]
    if not revoked:
        return _told(signed.session, done="nothing-to-stop")
    return _told(signed.session, done="stopped", count=revoked)


TakeBack = Callable[[Context, str, datetime, str], object]


async def _take_back(
    request: Request, ctx: Ctx, now: datetime, use_case: TakeBack, key: str, closed: str, done: str
) -> Response:
    """One of the member's own rows, by id, through `use_case`; the dashboard then says
    what happened (`missing` for an id that is not theirs, `closed` when it was too late,
    `in-doubt` while its email may have left unrecorded, from a page shown before)."""
    checked = await posted(request, ctx)
    if isinstance(checked, Response):
        return checked
    signed, _form = checked
    try:
        await run_in_threadpool(use_case, ctx, key[:64], now, signed.member.id)
    except NotFound:
        return _told(signed.session, done="missing")
    except Conflict as refused:
        if refused.details.get("state") == UNKNOWN:
            return _told(signed.session, done="in-doubt")
        return _told(signed.session, done=closed)
    return _told(signed.session, done=done)


def _told(session: Session, **notice: str | int) -> Response:
    """Back to the dashboard, saying what happened in a notice sealed to this session (a
    link made elsewhere cannot claim that something was stopped)."""
    return go(f"{HOME}?{sealed(session.csrf, HOME, **notice)}")


@router.post("/member/contacts/delete")
async def delete_all(request: Request, ctx: Ctx, now: Now) -> Response:
    """Delete every imported contact at once, once the member has ticked the box that says
    so (invitations already made stay: withdraw or revoke those)."""
    checked = await posted(request, ctx)
    if isinstance(checked, Response):
        return checked
    signed, form = checked
    if form.one(CONFIRM_FIELD) != "yes":
        return _told(signed.session, done="not-deleted")
    deleted = await run_in_threadpool(delete_contacts, ctx, signed.member.id, now)
    return _told(signed.session, done="deleted", count=deleted)


@router.get("/member/export.json")
def download(request: Request, ctx: Ctx, now: Now) -> Response:
    """Everything held about and for the member, as the host API's export gives it."""
    signed = signed_in(request, ctx)
    if signed is None:
        return not_signed_in(request)
    # In the member's language, as every member page (the API's export stays in English).
    everything = in_member_words(
        export_member(ctx, signed.member.id, now), locale_of(request, signed)
    )
    exported = MemberExport.model_validate(everything)
    return Response(
        exported.model_dump_json(indent=2),
        media_type="application/json",
        headers={
            **MEMBER_HEADERS,
            "Content-Disposition": 'attachment; filename="my-data.json"',
        },
    )
