"""`GET /v1/members/{id}/export`: everything held about and for a member."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from courtois.services.member_export import export_member
from courtois.web.api.common import MemberId, not_found_as, v1_router
from courtois.web.api.consents import ConsentOut
from courtois.web.api.contacts import ContactOut
from courtois.web.api.invitations import InvitationSummary, MessageOut, StoredDecision
from courtois.web.deps import Ctx, Now
from courtois.web.problems import responses

router = v1_router("members")


class ExportedMember(BaseModel):
    """The member's record."""

    id: str
    email: str
    name: str
    locale: str
    reply_to: bool
    created_at: datetime
    updated_at: datetime


class ExportedInvitation(InvitationSummary):
    """An invitation with its emails and decisions."""

    messages: list[MessageOut]
    decisions: list[StoredDecision]


class LedgerEntry(BaseModel):
    """An audit ledger entry that names the member, as the member may read it. It carries
    no hash: every hash of the chain is derived from the entries before it, some of which
    hold what only admins may read; the platform's audit (`courtois audit export`) has the
    hashes, and `seq` names the entry there."""

    seq: int
    at: datetime
    event: str
    payload: dict[str, Any]
    redacted: bool = Field(
        False,
        description="True when the payload leaves out what only admins may read (why a "
        "recipient was refused).",
    )


class PreviewedEmail(BaseModel):
    """One email as the member previewed it."""

    subject: str
    text: str
    html: str


class PreviewedWords(BaseModel):
    """The words the member previewed and consented to, kept with the consent so that its
    emails are sent as shown. Each recipient's own links (unsubscribe, why, join) appear
    as placeholders such as `{token:u}`: every recipient's email carries its own."""

    name: str = Field(description="The member's name as the emails gave it.")
    invitation: PreviewedEmail
    reminder: PreviewedEmail | None = Field(description="The reminder, when one was ticked.")


class ExportedConsent(ConsentOut):
    """A consent with the words it was given to."""

    previewed: PreviewedWords | None = Field(
        description="Null when no words were kept with the consent (given before they "
        "were, while the platform gave no postal address, or with a `{` in a text the "
        "email prints), or when they were emptied with its note (a recipient's \"forget "
        'me"). Its emails are then written again, and held if they would differ from '
        "the preview."
    )


class MemberExport(BaseModel):
    """Everything held about and for one member."""

    exported_at: datetime
    member: ExportedMember
    contacts: list[ContactOut]
    consents: list[ExportedConsent]
    invitations: list[ExportedInvitation]
    complaints: int
    ledger: list[LedgerEntry]


@router.get(
    "/members/{member_id}/export",
    response_model=MemberExport,
    responses=responses(404, 422),
    summary="Everything held about and for a member",
)
def export(member_id: MemberId, ctx: Ctx, now: Now) -> MemberExport:
    """The member's record, contacts, consents, invitations with every email and decision,
    complaints against them and the ledger entries naming them."""
    with not_found_as("member"):
        return MemberExport.model_validate(export_member(ctx, member_id, now))
