"""`/v1/recipients`: an opt-out or an erasure the platform received on a recipient's behalf
(a support request, its own unsubscribe page), with the CLI's answers."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from courtois.services.members import check_known_member
from courtois.services.recipients import forget_recipient, unsubscribe
from courtois.web.api.common import (
    MEMBER_ID_PATTERN,
    EmailText,
    IdempotencyKey,
    Strict,
    check_email,
    not_found_as,
    v1_router,
)
from courtois.web.deps import Ctx, Now
from courtois.web.idempotency import Answer, once
from courtois.web.problems import responses

router = v1_router("recipients")


class UnsubscribeIn(Strict):
    """Stop all mail to an address, or only what comes from one member."""

    email: EmailText
    from_member: str | None = Field(None, max_length=128, pattern=MEMBER_ID_PATTERN)


class UnsubscribeOut(BaseModel):
    """What stopped."""

    blocked: int = Field(description="Scheduled invitations stopped.")
    cancelled: int = Field(description="Emails cancelled before they left.")
    already_leaving: int = Field(
        description="Invitations whose email was being handed to the mail server: not said "
        "stopped, since it may arrive (it is then recorded as sent); the worker still stops "
        "one it had not begun."
    )


class ForgetIn(Strict):
    """Forget an address: only its digest stays, opted out for good."""

    email: EmailText


class ForgetOut(BaseModel):
    """What was erased or closed."""

    blocked: int
    declined: int
    contacts: int = Field(description="Contacts holding the address, deleted.")


@router.post(
    "/recipients/unsubscribe",
    response_model=UnsubscribeOut,
    responses=responses(404, 409, 422),
    summary="Unsubscribe an address",
)
def unsubscribe_recipient(
    body: UnsubscribeIn, request: Request, ctx: Ctx, now: Now, key: IdempotencyKey = None
) -> JSONResponse:
    """Takes effect before the next send decision; no later import or invitation lifts it."""
    digest = ctx.digest(check_email(body.email, any_local_length=True))
    if body.from_member is not None:
        with not_found_as("member"):
            check_known_member(ctx, body.from_member)

    def action() -> Answer:
        counts = unsubscribe(ctx, digest, now, body.from_member)
        return Answer(200, UnsubscribeOut(**counts).model_dump(mode="json"))

    payload = {"recipient": digest, "from_member": body.from_member}
    return once(request, ctx, now, key, payload, action)


@router.post(
    "/recipients/forget",
    response_model=ForgetOut,
    responses=responses(409, 422),
    summary="Forget an address",
)
def forget(
    body: ForgetIn, request: Request, ctx: Ctx, now: Now, key: IdempotencyKey = None
) -> JSONResponse:
    """The address is erased from contacts, invitations and stored answers."""
    digest = ctx.digest(check_email(body.email, any_local_length=True))

    def action() -> Answer:
        counts = forget_recipient(ctx, digest, now)
        return Answer(200, ForgetOut(**counts).model_dump(mode="json"))

    return once(request, ctx, now, key, {"recipient": digest}, action)
