"""Claimed messages that do not leave as claimed: held (their words differ from what the
member consented to), put back (never handed to SMTP, for a reason that is not theirs), or
failed, with the invitations whose first email they were.

Every path that gives up a claim without an SMTP answer goes through here, so a claim is
never left `sending` by a worker that is still alive."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from courtois.domain.invitations import InvitationState
from courtois.domain.messages import MessageKind, MessageState
from courtois.services.context import Context
from courtois.services.transitions import move_invitations, set_messages
from courtois.services.unit_of_work import UnitOfWork
from courtois.services.worker_due import Claim, Due
from courtois.store.tables import invitations

__all__ = ["fail_claim", "hold_claims", "put_back", "unclaim"]


def hold_claims(ctx: Context, claims: Sequence[Claim], now: datetime, reason: str) -> None:
    """Claims that must not leave as composed: failed, and their invitations blocked."""
    if not claims:
        return
    with ctx.unit_of_work(now) as uow:
        for claim in claims:
            fail_claim(uow, claim, reason, InvitationState.BLOCKED, reason)
        uow.commit()


def put_back(ctx: Context, claims: Sequence[Claim], now: datetime, reason: str) -> None:
    """Claims whose emails were never handed to SMTP, because composing failed for a
    reason that is not theirs (a key that cannot sign, say): scheduled again as they were
    before the claim, attempts and first attempt included, so the next pass sends them
    once the cause is mended, and no retry deadline runs meanwhile."""
    with ctx.unit_of_work(now) as uow:
        for claim in claims:
            for message in claim.messages:
                unclaim(uow, message, reason)
        uow.commit()


def unclaim(uow: UnitOfWork, message: Due, reason: str) -> None:
    """One claimed message that never left, scheduled again as it was before its claim."""
    set_messages(
        uow,
        [message.id],
        MessageState.SENDING,
        MessageState.SCHEDULED,
        reason,
        lease_until=None,
        carried_by=None,
        attempts=message.attempts,
        first_attempt_at=message.first_attempt_at,
    )


def fail_claim(
    uow: UnitOfWork,
    claim: Claim,
    reason: str,
    closed: InvitationState,
    why: str,
    current: MessageState = MessageState.SENDING,
) -> None:
    """The claim's messages failed; the invitations whose first email they were are closed
    as `closed`. A failed reminder leaves its invitation as it was: the first email reached
    the recipient, and its join link still works."""
    set_messages(uow, claim.ids, current, MessageState.FAILED, reason, lease_until=None)
    first = [m.invitation_id for m in claim.messages if m.kind is not MessageKind.REMINDER]
    if first:
        move_invitations(uow, invitations.c.id.in_(first), closed, why)
