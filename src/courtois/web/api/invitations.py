"""Invitations: preview, consent and invite, list, read with every decision, withdraw."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import Connection, select

from courtois.domain.errors import Conflict
from courtois.domain.preview import MAX_NOTE_LENGTH
from courtois.domain.text_controls import DIRECTION_CONTROLS, DIRECTION_MARKS
from courtois.services.context import Context
from courtois.services.idempotency import invite_scope
from courtois.services.invitations import MAX_RECIPIENTS, ConsentInput, InviteRequest, invite_once
from courtois.services.lifecycle import withdraw
from courtois.services.listings import invitation_detail, invitations_page
from courtois.services.previews import preview_invitations
from courtois.store.tables import idempotency_keys
from courtois.web.api.common import (
    DEFAULT_LIMIT,
    Cursor,
    IdempotencyKey,
    Limit,
    MemberId,
    Page,
    Strict,
    bad_cursor,
    check_invitees,
    decode_cursor,
    encode_cursor,
    made_id,
    not_found_as,
    require_made_id,
    v1_router,
)
from courtois.web.deps import Ctx, Now
from courtois.web.idempotency import Answer, Kept, once
from courtois.web.problems import Problem, responses

router = v1_router("invitations")

Status = Literal[
    "drafted",
    "scheduled",
    "sent",
    "accepted",
    "declined",
    "expired",
    "withdrawn",
    "blocked",
    "bounced",
]
MessageStatus = Literal["scheduled", "sending", "sent", "unknown", "cancelled", "failed"]
# Kept as evidence, shown to admins: no NUL (PostgreSQL refuses one), line break or other
# control character, and nothing that reorders the text around it (an override, an
# isolate, a direction mark), which would make an address or a browser read as another.
NO_CONTROLS = rf"^[^\x00-\x1f\x7f-\x9f\u2028\u2029{DIRECTION_CONTROLS}{DIRECTION_MARKS}]*$"
InvitationId = Annotated[str, made_id("Invitation id")]
Emails = Annotated[list[str], Field(min_length=1, max_length=MAX_RECIPIENTS)]


class PreviewIn(Strict):
    """What the member is about to send, and to how many."""

    emails: Emails
    # No bound of the schema's on these: `check_note` and `check_locale` judge them, with
    # one problem type whatever the length (the body limit bounds their size).
    note: str = Field("", description=f"At most {MAX_NOTE_LENGTH} characters.")
    locale: str | None = Field(
        None,
        description="The email's language: the recipients', where the platform knows it "
        "(courtois keeps none of its own); the member's when absent.",
    )
    # Strict: a reminder is asked for explicitly (invariant 3), never read into `true`,
    # `"1"` or `1.0`.
    reminders: int = Field(0, ge=0, le=1, strict=True)


class Rendered(BaseModel):
    """One email as it will be sent (links as placeholders)."""

    subject: str
    text: str
    html: str


class PreviewOut(BaseModel):
    """The exact email, every follow-up, and the sentence the member consents to."""

    subject: str
    text: str
    html: str
    preview_hash: str = Field(description="Pin this in the invitation request's consent.")
    consent_text: str = Field(
        description="In the member's language, whatever the email's: show it to the member; "
        "send it back as consent.text_shown."
    )
    reminders: int
    locale: str = Field(description="The email's language (the recipients').")
    follow_ups: list[Rendered]


class ConsentIn(Strict):
    """Where and how the member consented."""

    text_shown: str = Field(min_length=1, max_length=2000)
    ip: str = Field("", max_length=64, pattern=NO_CONTROLS)
    user_agent: str = Field("", max_length=512, pattern=NO_CONTROLS)


class InviteIn(PreviewIn):
    """The previewed message, consented to."""

    preview_hash: str = Field(min_length=1, max_length=128)
    consent: ConsentIn


class VerdictOut(BaseModel):
    """One rule's verdict, as the member may see it."""

    rule: str
    outcome: Literal["allow", "deny", "defer"]
    reason: str


class DecisionOut(BaseModel):
    """What the policy decided, with every rule's verdict."""

    allowed: bool = Field(
        description="Whether the invitation goes out. Under strict-eu, true for one its "
        "member sends themselves (status `sent`, with `share_link`): it is allowed, to be "
        "shared by the member, though the platform sends it no email, as its "
        "`strict-eu-no-email` verdict says (`deny`)."
    )
    outcome: Literal["allow", "deny", "defer"] = Field(
        description="The decision's outcome, as `allowed` reads it: `allow` for an "
        "invitation its member sends themselves (strict-eu), `deny` for one refused."
    )
    verdicts: list[VerdictOut]


SHARE_SUBJECT = (
    "strict-eu: the subject of the email the member sends from their own mailbox, in the "
    "recipient's language; the preview's `subject`, which its hash covers."
)
# What `GET /v1/invitations/{invitation_id}` gives again, while the member may still send
# the invitation themselves (`open_shares`).
AGAIN = (
    " Given while the invitation is open (sent, not expired), under a consent not revoked, "
    "as long as its text still renders to the consent's `preview_hash` (not once the "
    "member's name or note changed); null otherwise, and for an invitation not shared by "
    "its member. Its links are signed anew at each read: they differ from the POST's, and "
    "both open the same invitation."
)


class InvitationOut(BaseModel):
    """One invitation of a consent, as decided when it was queued."""

    id: str
    email: str | None = Field(
        description="null in a replay once the recipient stopped everything or asked to be "
        "forgotten: a stored answer no longer quotes their address."
    )
    status: Status
    scheduled_at: datetime | None = Field(
        None,
        description="When its email leaves. null when refused, and when the recipient's "
        "quota holds it back (the recipient-quota rule defers it): it then leaves when the "
        "limits on emails to that person allow, on a day that would tell the member about "
        "someone else's emails.",
    )
    decision: DecisionOut
    share_link: str | None = Field(
        None, description="strict-eu: the personal link of the invitation the member sends."
    )
    share_subject: str | None = Field(None, description=SHARE_SUBJECT)
    share_text: str | None = Field(
        None,
        description="strict-eu: the text the member sends from their own mailbox, in the "
        "recipient's language; the preview's `text` with this invitation's links.",
    )


class InviteOut(BaseModel):
    """The consent recorded and each invitation it made."""

    consent_id: str
    invitations: list[InvitationOut]


class InvitationSummary(BaseModel):
    """An invitation in a list. `email` is null once it closed (only a digest is kept)."""

    id: str
    consent_id: str
    email: str | None
    recipient_digest: str
    status: Status
    message_status: MessageStatus | None = Field(
        description="Where its emails stand, as `messages[].status` says: `unknown` while "
        "one of them may have left without the platform knowing (a worker stopped while "
        "handing it to the mail server). The invitation then still reads `scheduled` (or "
        "`sent`, for a reminder), cannot be withdrawn (409 `invitation-in-doubt`) and is "
        "never sent again by itself; an admin settles it as sent or not delivered, and the "
        "usual states follow. Otherwise the status of its latest email; null when it has none."
    )
    locale: str
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    answered_at: datetime | None
    expires_at: datetime


class InvitationPage(Page):
    """A page of invitations, newest first."""

    items: list[InvitationSummary]


class MessageOut(BaseModel):
    """One email of an invitation."""

    id: str
    kind: Literal["invitation", "reminder", "digest"]
    status: MessageStatus
    scheduled_at: datetime | None = Field(
        description="When it leaves or left. null for an email held back past its own time "
        "(by the limits on emails, or for the day the recipient picked), whether it still "
        "waits, left later (`sent_at`) or was cancelled: that day would tell the member "
        "about someone else."
    )
    sent_at: datetime | None
    attempts: int


class StoredDecision(DecisionOut):
    """A decision as kept: when, at which stage, about which email."""

    stage: str
    kind: str
    message_id: str | None
    decided_at: datetime


class InvitationDetail(InvitationSummary):
    """An invitation, its emails, and every decision taken about it."""

    member_id: str
    messages: list[MessageOut]
    decisions: list[StoredDecision]
    share_link: str | None = Field(
        None,
        description="strict-eu: the personal link of the invitation the member sends, as "
        "the POST that made it gave it." + AGAIN,
    )
    share_subject: str | None = Field(None, description=SHARE_SUBJECT + AGAIN)
    share_text: str | None = Field(
        None,
        description="strict-eu: the text the member sends from their own mailbox, in the "
        "recipient's language, as the POST that made it gave it: the preview's `text` with "
        "this invitation's links." + AGAIN,
    )


class Withdrawn(BaseModel):
    """The invitation's state afterwards."""

    id: str
    status: Status


@router.post(
    "/members/{member_id}/invitations/preview",
    response_model=PreviewOut,
    responses=responses(404, 409, 422),
    summary="Preview the exact email and the consent sentence",
)
def preview(
    member_id: MemberId,
    body: PreviewIn,
    request: Request,
    ctx: Ctx,
    now: Now,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Nothing is written: show the member this, then send `preview_hash` and
    `consent_text` back with the invitation."""
    count = len({address.key for address in check_invitees(body.emails)})

    def action() -> Answer:
        with not_found_as("member"):
            shown = preview_invitations(
                ctx, member_id, count, body.note, body.locale, body.reminders
            )
        return Answer(200, PreviewOut.model_validate(shown.as_dict()).model_dump(mode="json"))

    return once(request, ctx, now, key, body.model_dump(mode="json"), action)


@router.post(
    "/members/{member_id}/invitations",
    response_model=InviteOut,
    status_code=201,
    responses=responses(404, 409, 422),
    summary="Consent and invite",
)
def create_invitations(
    member_id: MemberId,
    body: InviteIn,
    request: Request,
    ctx: Ctx,
    now: Now,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Record the consent to the previewed message and decide for each recipient. A
    `preview_hash` or `consent.text_shown` that does not match what this request would
    send is refused (409): preview again. A repeat of a recorded request with its
    `Idempotency-Key` gets the first answer, even where the check would now refuse it."""
    check_invitees(body.emails)
    invite_request = InviteRequest(
        member_id=member_id,
        emails=tuple(body.emails),
        note=body.note,
        locale=body.locale,
        reminders=body.reminders,
        preview_hash=body.preview_hash,
        consent=ConsentInput(body.consent.text_shown, body.consent.ip, body.consent.user_agent),
    )

    def action() -> Answer:
        return _invite(ctx, invite_request, now, key)

    kept = _kept_by_invite(member_id, key)
    return once(request, ctx, now, key, body.model_dump(mode="json"), action, kept=kept)


def _kept_by_invite(member_id: str, key: str | None) -> Kept:
    """Where `invite` keeps its answer to a key, beside the consent it recorded (the
    scope is the use case's own, `invite:<member>`)."""

    def find(connection: Connection) -> Answer | None:
        row = connection.execute(
            select(idempotency_keys.c.response).where(
                idempotency_keys.c.scope == invite_scope(member_id), idempotency_keys.c.key == key
            )
        ).first()
        if row is None:
            return None
        return Answer(201, InviteOut.model_validate(row.response).model_dump(mode="json"))

    return find


def _invite(ctx: Context, request: InviteRequest, now: datetime, key: str | None) -> Answer:
    with not_found_as("member"):
        try:
            invited = invite_once(ctx, request, now, idempotency_key=key)
        except Conflict as error:
            if "preview_hash" in error.details:
                raise Problem(409, "stale-preview", error.message, error.details) from None
            if "consent.text_shown" in error.details:
                raise Problem(409, "consent-mismatch", error.message, error.details) from None
            if "key" in error.details:
                # As the web layer says it when its own copy of the key tells the same.
                raise Problem(
                    409,
                    "idempotency-key-reused",
                    error.message,
                    {"Idempotency-Key": "used for a different request"},
                ) from None
            raise
    body = InviteOut.model_validate(invited.answer).model_dump(mode="json")
    return Answer(201, body, replayed=invited.replayed)


@router.get(
    "/members/{member_id}/invitations",
    response_model=InvitationPage,
    responses=responses(404, 422),
    summary="The member's invitations, newest first",
)
def list_invitations(
    member_id: MemberId,
    ctx: Ctx,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    status: Annotated[list[Status] | None, Query(description="Only these states.")] = None,
) -> InvitationPage:
    """One page of the member's invitations; follow `next_cursor` for older ones."""
    position = decode_cursor(cursor, str, str)
    before = None
    if position is not None:
        try:
            # In UTC, as stored: a time that is no instant (naive) or none in UTC (the year
            # 9999 west of Greenwich) was never given out.
            at = datetime.fromisoformat(position[0])
            if at.tzinfo is None:
                raise ValueError(position[0])
            before = (at.astimezone(UTC), str(position[1]))
        except (ValueError, OverflowError):
            raise bad_cursor() from None
    with not_found_as("member"):
        page = invitations_page(ctx, member_id, before, limit, status or ())
    items = [InvitationSummary.model_validate(item) for item in page.items]
    following = None
    if page.more and items:
        following = encode_cursor([items[-1].created_at.isoformat(), items[-1].id])
    return InvitationPage(items=items, next_cursor=following)


@router.get(
    "/invitations/{invitation_id}",
    response_model=InvitationDetail,
    responses=responses(404, 422),
    summary="An invitation, its emails and every decision",
)
def read_invitation(invitation_id: InvitationId, ctx: Ctx, now: Now) -> InvitationDetail:
    """Its state, each email it caused, and each decision with every rule's verdict; under
    strict-eu, while the member may still send it, its personal link, subject and text
    again."""
    with not_found_as("invitation"):
        require_made_id(invitation_id)
        return InvitationDetail.model_validate(invitation_detail(ctx, invitation_id, now))


@router.post(
    "/invitations/{invitation_id}/withdraw",
    response_model=Withdrawn,
    responses=responses(404, 409, 422),
    summary="Withdraw an invitation",
)
def withdraw_invitation(
    invitation_id: InvitationId, request: Request, ctx: Ctx, now: Now, key: IdempotencyKey = None
) -> JSONResponse:
    """Nothing more of it leaves. An invitation already answered, expired or closed cannot
    be withdrawn (409), nor one whose email is being sent or may have left already
    (`message_status` `unknown`) until that is settled."""

    def action() -> Answer:
        with not_found_as("invitation"):
            require_made_id(invitation_id)
            try:
                state = withdraw(ctx, invitation_id, now)
            except Conflict as error:
                if error.details.get("state") == "sending":
                    raise Problem(409, "invitation-sending", error.message) from None
                if error.details.get("state") == "unknown":
                    raise Problem(409, "invitation-in-doubt", error.message) from None
                raise Problem(409, "invitation-closed", error.message, error.details) from None
        shown = Withdrawn.model_validate({"id": invitation_id, "status": state})
        return Answer(200, shown.model_dump(mode="json"))

    return once(request, ctx, now, key, {"invitation": invitation_id}, action)
