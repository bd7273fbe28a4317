"""`/admin/lookup` (everything about one recipient) and `/admin/ledger` (the chain checked).

The lookup is a POST: the address travels in the body, never in a URL (which proxies,
browsers' histories and access logs keep), is digested at once and never stored or logged.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from courtois.domain.errors import InvalidAddress, InvalidInput
from courtois.services.admin_ledger import check_ledger
from courtois.services.admin_lookup import look_up_recipient
from courtois.web.deps import Ctx
from courtois.web.pages.admin_access import bad_request, posted, signed_in
from courtois.web.pages.admin_render import admin_page, first

router = APIRouter(include_in_schema=False)


@router.get("/admin/lookup")
def lookup_form(request: Request) -> Response:
    """The form asking for an address."""
    session = signed_in(request)
    if isinstance(session, Response):
        return session
    return admin_page(request, "admin_lookup.html", session=session, here="lookup", found=None)


@router.post("/admin/lookup")
async def lookup(request: Request, ctx: Ctx) -> Response:
    """Everything held about the address posted, found by its digest."""
    checked = await posted(request)
    if isinstance(checked, Response):
        return checked
    session, fields = checked
    try:
        found = await run_in_threadpool(look_up_recipient, ctx, first(fields, "address"))
    except (InvalidAddress, InvalidInput):
        return bad_request(request, session, "address", here="lookup")
    return admin_page(request, "admin_lookup.html", session=session, here="lookup", found=found)


@router.get("/admin/ledger")
def ledger_status(request: Request, ctx: Ctx) -> Response:
    """The whole chain verified now, with the first broken entry if any."""
    session = signed_in(request)
    if isinstance(session, Response):
        return session
    status = check_ledger(ctx)
    return admin_page(request, "admin_ledger.html", session=session, here="ledger", checked=status)
