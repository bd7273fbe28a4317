"""`/admin/webhooks`: the delivery log of the signed webhooks, event by event."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from courtois.services.admin_webhooks import LISTED, webhook_log
from courtois.web.deps import Ctx
from courtois.web.pages.admin_access import signed_in
from courtois.web.pages.admin_render import admin_page

router = APIRouter(include_in_schema=False)


@router.get("/admin/webhooks")
def webhooks(request: Request, ctx: Ctx) -> Response:
    """Whether webhooks are on, the events by state, and the newest with every attempt."""
    session = signed_in(request)
    if isinstance(session, Response):
        return session
    log = webhook_log(ctx)
    return admin_page(
        request, "admin_webhooks.html", session=session, here="webhooks", log=log, listed=LISTED
    )
