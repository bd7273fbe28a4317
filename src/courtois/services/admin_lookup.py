"""Everything stored about one recipient, for an admin who has their address: every
decision with every verdict, the opt-outs and suppression, the members they stopped, the
invitations and the emails (invariant 11: admins see all, including why).

The address is digested on the way in and dropped; every read is keyed by the digest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from courtois.domain.errors import InvalidInput
from courtois.services.context import Context
from courtois.services.decisions import expand_verdicts
from courtois.store.tables import (
    complaints,
    decisions,
    invitations,
    members,
    messages,
    recipient_blocks,
    recipients,
)

MAX_ADDRESS = 320


@dataclass(frozen=True)
class DecisionRecord:
    """One stored decision and every rule's verdict, in chain order."""

    id: int
    decided_at: datetime
    member_id: str
    kind: str
    stage: str
    outcome: str
    invitation_id: str | None
    message_id: str | None
    verdicts: tuple[dict[str, str], ...]


@dataclass(frozen=True)
class InvitationRecord:
    """One member's invitation to this recipient."""

    id: str
    member_id: str
    consent_id: str
    state: str
    created_at: datetime
    sent_at: datetime | None
    answered_at: datetime | None
    expires_at: datetime
    address_kept: bool


@dataclass(frozen=True)
class MessageRecord:
    """One email an invitation caused, in whatever state it is."""

    id: str
    invitation_id: str
    member_id: str
    kind: str
    state: str
    scheduled_at: datetime
    sent_at: datetime | None
    attempts: int
    carried_by: str | None
    last_reason: str | None


@dataclass(frozen=True)
class MemberMark:
    """A member this recipient stopped, or whose invitation they reported as spam."""

    member_id: str
    at: datetime


@dataclass(frozen=True)
class RecipientFile:
    """What the store holds under one digest."""

    digest: str
    known: bool
    unsubscribed_at: datetime | None
    suppressed_reason: str | None
    suppressed_at: datetime | None
    joined_at: datetime | None
    forgotten_at: datetime | None
    is_member: bool
    member_names: dict[str, str]
    # Members named here whose personal data was erased: their id stays, naming no one.
    erased_members: frozenset[str]
    blocks: tuple[MemberMark, ...]
    complaints: tuple[MemberMark, ...]
    decisions: tuple[DecisionRecord, ...]
    invitations: tuple[InvitationRecord, ...]
    messages: tuple[MessageRecord, ...]


def look_up_recipient(ctx: Context, address: str) -> RecipientFile:
    """Everything held under the digest of `address`; InvalidAddress if it is no address."""
    if len(address) > MAX_ADDRESS:
        raise InvalidInput("That is too long to be an email address.", {"address": "too long"})
    digest = ctx.digest_email(address, any_local_length=True)
    with ctx.engine.connect() as connection:
        return _file(connection, digest)


def _file(connection: Connection, digest: str) -> RecipientFile:
    state = connection.execute(select(recipients).where(recipients.c.digest == digest)).first()
    blocks = tuple(
        MemberMark(r.member_id, r.at)
        for r in connection.execute(
            select(recipient_blocks.c.member_id, recipient_blocks.c.at)
            .where(recipient_blocks.c.recipient_digest == digest)
            .order_by(recipient_blocks.c.at, recipient_blocks.c.member_id)
        )
    )
    found_decisions = tuple(
        DecisionRecord(
            r.id,
            r.decided_at,
            r.member_id,
            r.kind,
            r.stage,
            r.outcome,
            r.invitation_id,
            r.message_id,
            tuple(expand_verdicts(r.verdicts)),
        )
        for r in connection.execute(
            select(decisions)
            .where(decisions.c.recipient_digest == digest)
            .order_by(decisions.c.decided_at, decisions.c.id)
        )
    )
    found_invitations = tuple(
        InvitationRecord(
            r.id,
            r.member_id,
            r.consent_id,
            r.state,
            r.created_at,
            r.sent_at,
            r.answered_at,
            r.expires_at,
            r.address is not None,
        )
        for r in connection.execute(
            select(invitations)
            .where(invitations.c.recipient_digest == digest)
            .order_by(invitations.c.created_at, invitations.c.id)
        )
    )
    found_messages = tuple(
        MessageRecord(
            r.id,
            r.invitation_id,
            r.member_id,
            r.kind,
            r.state,
            r.scheduled_at,
            r.sent_at,
            r.attempts,
            r.carried_by,
            r.last_reason,
        )
        for r in connection.execute(
            select(messages)
            .where(messages.c.recipient_digest == digest)
            .order_by(messages.c.created_at, messages.c.id)
        )
    )
    inviters = sorted({i.member_id for i in found_invitations})
    named = {*inviters, *(b.member_id for b in blocks), *(d.member_id for d in found_decisions)}
    names, erased = _names(connection, sorted(named))
    is_member = (
        connection.execute(
            select(members.c.id).where(members.c.email_digest == digest).limit(1)
        ).first()
        is not None
    )
    return RecipientFile(
        digest=digest,
        known=state is not None,
        unsubscribed_at=state.unsubscribed_at if state else None,
        suppressed_reason=state.suppressed_reason if state else None,
        suppressed_at=state.suppressed_at if state else None,
        joined_at=state.joined_at if state else None,
        forgotten_at=state.forgotten_at if state else None,
        is_member=is_member,
        member_names=names,
        erased_members=erased,
        blocks=blocks,
        complaints=_complaints(connection, digest, inviters),
        decisions=found_decisions,
        invitations=found_invitations,
        messages=found_messages,
    )


def _complaints(connection: Connection, digest: str, inviters: list[str]) -> tuple[MemberMark, ...]:
    """The spam complaints this recipient made, found through the members who invited
    them (complaints are indexed by member)."""
    if not inviters:
        return ()
    return tuple(
        MemberMark(r.member_id, r.at)
        for r in connection.execute(
            select(complaints.c.member_id, complaints.c.at)
            .where(complaints.c.member_id.in_(inviters), complaints.c.recipient_digest == digest)
            .order_by(complaints.c.at, complaints.c.member_id)
        )
    )


def _names(connection: Connection, member_ids: list[str]) -> tuple[dict[str, str], frozenset[str]]:
    """Each member's display name, and which of them were erased."""
    if not member_ids:
        return {}, frozenset()
    rows = connection.execute(
        select(members.c.id, members.c.name, members.c.erased_at).where(
            members.c.id.in_(member_ids)
        )
    ).all()
    return {r.id: r.name for r in rows}, frozenset(r.id for r in rows if r.erased_at)
