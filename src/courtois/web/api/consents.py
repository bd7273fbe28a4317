"""`/v1/consents`: what a member agreed to, and taking it back."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from courtois.domain.errors import Conflict
from courtois.services.lifecycle import revoke_consent, stop_everything
from courtois.services.listings import consent_detail
from courtois.web.api.common import (
    IdempotencyKey,
    MemberId,
    made_id,
    not_found_as,
    require_made_id,
    v1_router,
)
from courtois.web.deps import Ctx, Now
from courtois.web.idempotency import Answer, once
from courtois.web.problems import Problem, responses

router = v1_router("consents")

ConsentId = Annotated[str, made_id("Consent id")]


class ConsentOut(BaseModel):
    """A consent as recorded: the text shown, the preview pinned, when and from where."""

    id: str
    member_id: str
    kind: str
    preview_hash: str
    reminders: int
    locale: str
    note: str
    text_shown: str
    ip: str
    user_agent: str
    given_at: datetime
    revoked_at: datetime | None
    recipients: int = Field(description="How many recipients it names.")
    invitation_ids: list[str]


class Revoked(BaseModel):
    """What revoking stopped."""

    id: str
    withdrawn: int = Field(description="Invitations not yet sent, now withdrawn.")
    reminders_cancelled: int = Field(description="Reminders of sent invitations cancelled.")
    already_leaving: int = Field(
        description="Invitations whose email was being handed to SMTP at that moment, or "
        "may have left already (its `message_status` `unknown`): they could not be stopped "
        "and become sent (with no reminder), or not delivered when an admin finds so."
    )


class Stopped(BaseModel):
    """What the member's one click stopped: every consent still active, revoked."""

    member_id: str
    consents_revoked: int = Field(description="Consents that were active, now revoked.")
    withdrawn: int = Field(description="Invitations not yet sent, now withdrawn.")
    reminders_cancelled: int = Field(description="Reminders of sent invitations cancelled.")
    already_leaving: int = Field(
        description="Invitations whose email was being handed to SMTP at that moment, or "
        "may have left already: as for one consent's revocation, they become sent (with no "
        "reminder), or not delivered when an admin finds so."
    )


@router.get(
    "/consents/{consent_id}",
    response_model=ConsentOut,
    responses=responses(404, 422),
    summary="A consent",
)
def read_consent(consent_id: ConsentId, ctx: Ctx) -> ConsentOut:
    """The consent record, as evidence of what the member agreed to."""
    with not_found_as("consent"):
        require_made_id(consent_id)
        return ConsentOut.model_validate(consent_detail(ctx, consent_id))


@router.post(
    "/consents/{consent_id}/revoke",
    response_model=Revoked,
    responses=responses(404, 409, 422),
    summary="Revoke a consent",
)
def revoke(
    consent_id: ConsentId, request: Request, ctx: Ctx, now: Now, key: IdempotencyKey = None
) -> JSONResponse:
    """Every unsent message under it is cancelled; a consent already revoked is 409."""

    def action() -> Answer:
        with not_found_as("consent"):
            require_made_id(consent_id)
            try:
                counts = revoke_consent(ctx, consent_id, now)
            except Conflict as error:
                raise Problem(409, "consent-revoked", error.message) from None
        return Answer(200, Revoked(id=consent_id, **counts).model_dump(mode="json"))

    return once(request, ctx, now, key, {"consent": consent_id}, action)


@router.post(
    "/members/{member_id}/stop",
    response_model=Stopped,
    responses=responses(404, 409, 422),
    summary="Stop everything the member asked for",
)
def stop(
    member_id: MemberId, request: Request, ctx: Ctx, now: Now, key: IdempotencyKey = None
) -> JSONResponse:
    """The member's one click (invariant 5): every consent still active is revoked in one
    transaction, as `POST /v1/consents/{id}/revoke` revokes one: invitations not yet sent
    are withdrawn, reminders cancelled, and nothing they asked for leaves but an email
    being handed to SMTP at that moment (`already_leaving`). Invitations already sent
    stay open, with no reminder. A repeat succeeds with zeros."""

    def action() -> Answer:
        with not_found_as("member"):
            counts = stop_everything(ctx, member_id, now)
        return Answer(200, Stopped(member_id=member_id, **counts).model_dump(mode="json"))

    return once(request, ctx, now, key, {"member": member_id}, action)
