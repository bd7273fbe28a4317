"""`/member/contacts`: search the address book, page by page, and choose whom to invite.

Nothing is chosen for the member: check boxes show only what they chose themselves, and
"select all on this page" is a button that chooses the contacts listed on this page, never
the ones on other pages or outside the search (invariant 1).
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from courtois.services.member_contacts import MAX_QUERY, choose_contacts, search_contacts
from courtois.web.deps import Ctx, Now
from courtois.web.pages.member_forms import posted
from courtois.web.pages.member_render import go, member_page, not_signed_in, signed_in
from courtois.web.pages.notices import opened, sealed

router = APIRouter(include_in_schema=False)

PER_PAGE = 50
PAGE = "/member/contacts"
NOTICES = frozenset({"saved"})


def page_url(query: str, page: int) -> str:
    """The contact list at this search and page."""
    params = {k: v for k, v in (("q", query), ("page", str(page) if page > 1 else "")) if v}
    return PAGE + ("?" + urlencode(params) if params else "")


def _page_number(value: str | None) -> int:
    return int(value) if value and value.isascii() and value.isdigit() and len(value) < 7 else 1


@router.get(PAGE)
def contact_list(request: Request, ctx: Ctx) -> Response:
    """One page of the contacts matching the search, with their check boxes."""
    signed = signed_in(request, ctx)
    if signed is None:
        return not_signed_in(request)
    query = request.query_params.get("q", "")[:MAX_QUERY]
    found = search_contacts(
        ctx, signed.member.id, query, _page_number(request.query_params.get("page")), PER_PAGE
    )
    # "Your choice is saved" only after this session's own save (see notices.py).
    notice = opened(signed.session.csrf, PAGE, request.query_params, "done")["done"]
    return member_page(
        request,
        signed,
        "member_contacts.html",
        found=found,
        query=query,
        previous=page_url(query, found.page - 1) if found.page > 1 else "",
        following=page_url(query, found.page + 1) if found.page < found.pages else "",
        notice=notice if notice in NOTICES else "",
    )


@router.post(PAGE)
async def choose(request: Request, ctx: Ctx, now: Now) -> Response:
    """Save the page's check boxes, or choose (or unchoose) every contact of the page."""
    checked = await posted(request, ctx)
    if isinstance(checked, Response):
        return checked
    signed, form = checked
    shown = form.ints("shown")
    action = form.one("action")
    if action == "select-page":
        chosen = shown
    elif action == "unselect-page":
        chosen = []
    else:
        chosen = form.ints("chosen")
    await run_in_threadpool(choose_contacts, ctx, signed.member.id, shown, chosen, now)
    back = page_url(form.one("q")[:MAX_QUERY], _page_number(form.one("page")))
    notice = sealed(signed.session.csrf, PAGE, done="saved")
    return go(back + ("&" if "?" in back else "?") + notice)
