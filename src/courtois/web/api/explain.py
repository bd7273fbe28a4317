"""`POST /v1/members/{id}/explain`: every verdict for a would-be invitation, nothing written.

This is the operator's view (`courtois policy explain`): it gives each rule's full reason,
including why a recipient is unavailable, which a member must never be shown.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from courtois.services.explain import explain, explained
from courtois.web.api.common import (
    EmailText,
    IdempotencyKey,
    MemberId,
    Strict,
    check_email,
    not_found_as,
    v1_router,
)
from courtois.web.deps import Ctx, Now
from courtois.web.idempotency import Answer, once
from courtois.web.problems import responses

router = v1_router("policy")


class ExplainIn(Strict):
    """The would-be invitation."""

    email: EmailText
    reminders: int = Field(0, ge=0, le=1, strict=True)


class FullVerdict(BaseModel):
    """One rule's verdict with the reason an operator sees."""

    rule: str
    outcome: Literal["allow", "deny", "defer"]
    reason: str
    public_reason: str
    retry_at: datetime | None


class Explanation(BaseModel):
    """What `invite` would decide now."""

    allowed: bool
    outcome: Literal["allow", "deny", "defer"]
    verdicts: list[FullVerdict]


@router.post(
    "/members/{member_id}/explain",
    response_model=Explanation,
    responses=responses(404, 409, 422),
    summary="Explain the policy for one would-be invitation (operator view)",
)
def explain_policy(
    member_id: MemberId,
    body: ExplainIn,
    request: Request,
    ctx: Ctx,
    now: Now,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Decide as `invite` would at this instant, as if the member consented just now. A
    reminder that preview and invite refuse (under strict-eu, or above the policy's
    `reminder_cap`) is refused here with the same 422 problem."""
    address = check_email(body.email)

    def action() -> Answer:
        with not_found_as("member"):
            decision = explain(ctx, member_id, address.normalized, now, body.reminders)
        return Answer(200, Explanation.model_validate(explained(decision)).model_dump(mode="json"))

    payload = {"recipient": ctx.digest(address), "reminders": body.reminders}
    return once(request, ctx, now, key, payload, action)
