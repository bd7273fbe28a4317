"""`/v1/members`: the platform registers its members, signs them in to the member pages, and
erases them."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from courtois.domain.errors import Conflict
from courtois.domain.members import (
    MAX_NAME_LENGTH,
    MAX_RAW_NAME_LENGTH,
    SUPPORTED_LOCALES,
    Member,
)
from courtois.services.member_erasure import erase_member
from courtois.services.members import get_member, register_member
from courtois.tokens import MEMBER_LINK_MAX_AGE_SECONDS, make_sign_in_token
from courtois.web.api.common import (
    MEMBER_ID_PATTERN,
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
from courtois.web.problems import Problem, responses

router = v1_router("members")

# Where the member pages take a sign-in link; they check the token's scope and age.
SIGN_IN_PATH = "/member/sign-in/"


class MemberIn(Strict):
    """A member as the platform knows them. An email, name or locale that is not valid is
    refused with one problem type naming the field, whatever its length."""

    # No bound of the schema's on the email, name or locale: one would answer
    # `invalid-request` past it where the domain's check answers its own type below it.
    # The body limit bounds their size, and `check_display_name` refuses a long name first.
    id: str = Field(min_length=1, max_length=128, pattern=MEMBER_ID_PATTERN)
    email: EmailText
    name: str = Field(
        description=f"At most {MAX_NAME_LENGTH} characters once those that show nothing are "
        f"dropped, and {MAX_RAW_NAME_LENGTH} as sent (longer: 422 `invalid-input`)."
    )
    locale: str = Field(
        "en",
        description="A language tag whose language courtois writes in (another: 422 "
        "`invalid-input`).",
        examples=list(SUPPORTED_LOCALES),
    )
    # Strict, as the reminders: an opt-in is `true`, not "yes", "on" or 1.
    reply_to: bool = Field(
        False, strict=True, description="Replies to their invitations reach the member."
    )


class MemberOut(BaseModel):
    """A member as stored."""

    id: str
    email: str
    name: str
    locale: str
    reply_to: bool

    @classmethod
    def of(cls, member: Member) -> MemberOut:
        """From the domain's member."""
        return cls(
            id=member.id,
            email=member.email,
            name=member.name,
            locale=member.locale,
            reply_to=member.reply_to,
        )


class MemberErased(BaseModel):
    """What erasing the member stopped and removed. A repeat answers the same id and first
    instant, with zeros: nothing was left."""

    id: str
    erased_at: datetime = Field(description="When the member was first erased.")
    invitations_withdrawn: int = Field(description="Open invitations, now withdrawn.")
    emails_cancelled: int = Field(description="Emails waiting to be sent, now cancelled.")
    consents_revoked: int = Field(description="Consents still active, now revoked.")
    contacts_deleted: int = Field(description="Imported contacts, deleted.")
    already_leaving: int = Field(
        description="Invitations whose email was being handed to SMTP at that moment: they "
        "could not be stopped and become sent (with no reminder)."
    )


class SignInLink(BaseModel):
    """A signed link that signs the member in to the member pages, valid briefly."""

    url: str
    expires_at: datetime = Field(description="Wall-clock time after which the link fails.")


@router.post(
    "/members",
    response_model=MemberOut,
    responses=responses(409, 422),
    summary="Create or update a member",
)
def save_member(
    body: MemberIn, request: Request, ctx: Ctx, now: Now, key: IdempotencyKey = None
) -> JSONResponse:
    """Create the member, or update the one with this id; names with control characters
    (header injection), names that open like a reply, a forward or a reminder (the name
    opens every invitation's subject) and names showing an email address are refused, not
    cleaned; characters that show nothing (zero-width spaces, direction marks) are
    dropped, and the answer gives the name as kept. The id of an erased member is refused
    (409 `member-erased`): its history is the erased person's, so a new person needs a
    new id."""
    check_email(body.email)

    def action() -> Answer:
        try:
            member = register_member(
                ctx, body.id, body.email, body.name, body.locale, now, reply_to=body.reply_to
            )
        except Conflict as error:
            raise Problem(409, "member-erased", error.message, error.details) from None
        return Answer(200, MemberOut.of(member).model_dump(mode="json"))

    return once(request, ctx, now, key, body.model_dump(mode="json"), action)


@router.get(
    "/members/{member_id}",
    response_model=MemberOut,
    responses=responses(404, 422),
    summary="A member",
)
def read_member(member_id: MemberId, ctx: Ctx) -> MemberOut:
    """The member with this id."""
    with not_found_as("member"):
        return MemberOut.of(get_member(ctx, member_id))


@router.delete(
    "/members/{member_id}",
    response_model=MemberErased,
    responses=responses(404, 409, 422),
    summary="Erase a member",
)
def delete_member(
    member_id: MemberId, request: Request, ctx: Ctx, now: Now, key: IdempotencyKey = None
) -> JSONResponse:
    """Erase the member (GDPR Art. 17), in one transaction, before answering: every waiting
    email is cancelled, every open invitation withdrawn and every consent revoked (an email
    being handed to SMTP at that moment is counted in `already_leaving`); their imported
    contacts, stored API answers and sessions go; their address and name, and each
    consent's note, IP and user agent, are cleared. The id stays, naming no one, so the
    audit ledger's history stays whole; the member is then not found anywhere, their
    export included, and the id cannot be registered again. Recipients' opt-outs stay.
    A repeat succeeds with zeros; with an `Idempotency-Key` it replays the first answer."""

    def action() -> Answer:
        with not_found_as("member"):
            erased = erase_member(ctx, member_id, now)
        return Answer(200, MemberErased.model_validate(erased.as_dict()).model_dump(mode="json"))

    return once(request, ctx, now, key, {"member": member_id}, action)


@router.post(
    "/members/{member_id}/login-link",
    response_model=SignInLink,
    responses=responses(404, 409, 422),
    summary="A short-lived sign-in link to the member pages",
)
def sign_in_link(
    member_id: MemberId, request: Request, ctx: Ctx, now: Now, key: IdempotencyKey = None
) -> JSONResponse:
    """A signed URL for this member, valid for 15 minutes and for one use, for the platform
    to hand to its signed-in member (never to send by email). Opening it changes nothing:
    the page names the account, and its "Continue as ..." button, posted from that page,
    uses the link up and opens the session, so another site cannot sign a browser in to
    an account of its choosing."""

    def action() -> Answer:
        with not_found_as("member"):
            member = get_member(ctx, member_id)
        token = make_sign_in_token(ctx.settings.token_secrets, member.id)
        # The token's age is checked against the wall clock, so the expiry is told in it.
        expires = datetime.fromtimestamp(int(time.time()) + MEMBER_LINK_MAX_AGE_SECONDS, UTC)
        url = f"{ctx.settings.base_url.rstrip('/')}{SIGN_IN_PATH}{token}"
        return Answer(200, SignInLink(url=url, expires_at=expires).model_dump(mode="json"))

    return once(request, ctx, now, key, {"member": member_id}, action)
