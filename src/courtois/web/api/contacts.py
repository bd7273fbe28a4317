"""`/v1/members/{id}/contacts`: what a member imported, page by page; choosing; deleting."""

from __future__ import annotations

from datetime import datetime

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from courtois.services.contacts import delete_contacts, select_contacts
from courtois.services.listings import contacts_page
from courtois.web.api.common import (
    DEFAULT_LIMIT,
    Cursor,
    IdempotencyKey,
    Limit,
    MemberId,
    Page,
    Strict,
    check_emails,
    decode_cursor,
    encode_cursor,
    not_found_as,
    v1_router,
)
from courtois.web.deps import Ctx, Now
from courtois.web.idempotency import Answer, once
from courtois.web.problems import responses

router = v1_router("contacts")


class ContactOut(BaseModel):
    """One imported contact (purged a day after its import, selected or not)."""

    id: int
    email: str
    name: str
    source: str
    selected: bool
    imported_at: datetime


class ContactPage(Page):
    """A page of contacts, in import order."""

    items: list[ContactOut]


class Deleted(BaseModel):
    """How many contacts were deleted."""

    deleted: int


class SelectionIn(Strict):
    """Contacts the member picked (or unpicked) to invite. Picking keeps no contact past the
    purge, a day after its import: the invitation keeps the address it needs."""

    emails: list[str] = Field(min_length=1, max_length=10_000)
    selected: bool = Field(True, strict=True)


class SelectionOut(BaseModel):
    """How many contacts changed."""

    changed: int


@router.get(
    "/members/{member_id}/contacts",
    response_model=ContactPage,
    responses=responses(404, 422),
    summary="The member's imported contacts",
)
def list_member_contacts(
    member_id: MemberId, ctx: Ctx, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> ContactPage:
    """One page of the member's contacts; follow `next_cursor` for the rest."""
    position = decode_cursor(cursor, int)
    after = position[0] if position else None
    with not_found_as("member"):
        page = contacts_page(ctx, member_id, after, limit)
    items = [ContactOut.model_validate(item) for item in page.items]
    following = encode_cursor([items[-1].id]) if page.more and items else None
    return ContactPage(items=items, next_cursor=following)


@router.delete(
    "/members/{member_id}/contacts",
    response_model=Deleted,
    responses=responses(404, 422),
    summary="Delete everything the member imported",
)
def delete_member_contacts(member_id: MemberId, ctx: Ctx, now: Now) -> Deleted:
    """Every imported contact of the member goes, at once, and is gone from the database
    files when this answers (invitations already made are not touched: withdraw or revoke
    those)."""
    with not_found_as("member"):
        return Deleted(deleted=delete_contacts(ctx, member_id, now))


@router.post(
    "/members/{member_id}/contacts/selection",
    response_model=SelectionOut,
    responses=responses(404, 409, 422),
    summary="Pick or unpick contacts",
)
def choose_contacts(
    member_id: MemberId,
    body: SelectionIn,
    request: Request,
    ctx: Ctx,
    now: Now,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Mark the named contacts as chosen (`selected: true`) or not; nothing is ever
    pre-selected."""
    check_emails(body.emails)

    def action() -> Answer:
        with not_found_as("member"):
            changed = select_contacts(ctx, member_id, body.emails, now, body.selected)
        return Answer(200, SelectionOut(changed=changed).model_dump(mode="json"))

    return once(request, ctx, now, key, body.model_dump(mode="json"), action)
