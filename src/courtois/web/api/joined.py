"""`POST /v1/joined`: the platform says an address is now a member's."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from courtois.services.recipients import mark_joined
from courtois.web.api.common import EmailText, IdempotencyKey, Strict, check_email, v1_router
from courtois.web.deps import Ctx, Now
from courtois.web.idempotency import Answer, once
from courtois.web.problems import responses

router = v1_router("recipients")


class JoinedIn(Strict):
    """The address of someone who just became a member."""

    email: EmailText


class JoinedOut(BaseModel):
    """What the join changed."""

    accepted: int = Field(description="Sent invitations to them, now accepted.")
    blocked: int = Field(description="Invitations still scheduled, now stopped.")


@router.post(
    "/joined",
    response_model=JoinedOut,
    responses=responses(409, 422),
    summary="An address is now a member",
)
def joined(
    body: JoinedIn, request: Request, ctx: Ctx, now: Now, key: IdempotencyKey = None
) -> JSONResponse:
    """Invitations already sent to it are accepted; pending mail to it is cancelled."""
    digest = ctx.digest(check_email(body.email, any_local_length=True))

    def action() -> Answer:
        counts = mark_joined(ctx, digest, now)
        return Answer(200, JoinedOut(**counts).model_dump(mode="json"))

    return once(request, ctx, now, key, {"recipient": digest}, action)
