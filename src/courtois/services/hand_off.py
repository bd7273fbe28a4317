"""The worker's last look at a slice of claimed emails right before it hands them to SMTP.

`decide_and_claim` decided the whole batch at once; the transport then hands it over
message after message, minutes long behind a slow relay. So the worker gives the transport
`SLICE_SECONDS` at a time (it begins no message after that), and looks again at what is
left (`policy.hand_off`): an email whose recipient opted out, joined or asked to be
forgotten, whose invitation was declined, or whose consent was revoked since the claim is
stopped (cancelled, its ledger entry says why) instead of sent. Only a word given after the
last look before its email was begun comes too late: that email is on its way. The window
is a slice and the one transaction begun in it, whatever the relay's pace.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, bindparam, select

from courtois.domain.invitations import InvitationState
from courtois.domain.messages import MessageKind, MessageState
from courtois.policy.facts import Candidate, Stage
from courtois.policy.hand_off import CONSENT_REVOKED, stopped_since_claim
from courtois.services import facts as gather
from courtois.services.context import Context
from courtois.services.transitions import move_invitations, set_messages
from courtois.services.unsent_claims import unclaim
from courtois.services.worker_due import Claim, Due, PassReport
from courtois.store.tables import consents, invitations, messages

# How long the transport may go on beginning emails before the worker looks again: about
# the longest a claimed email may be begun after its recipient said stop. A fast relay
# takes a whole batch within it, with no look beyond the claim.
SLICE_SECONDS = 1.0

_LOOK = (
    select(
        messages.c.id,
        messages.c.state,
        invitations.c.state.label("invitation_state"),
        consents.c.revoked_at,
    )
    .select_from(
        messages.join(
            invitations,
            and_(
                invitations.c.recipient_digest == messages.c.recipient_digest,
                invitations.c.id == messages.c.invitation_id,
            ),
        ).join(
            consents,
            and_(
                consents.c.member_id == invitations.c.member_id,
                consents.c.id == invitations.c.consent_id,
            ),
        )
    )
    .where(messages.c.id.in_(bindparam("b_ids", expanding=True)))
)


_PART_STOPPED = "put back: another part of its digest was stopped before it left"
# What a claimed message may have become while this worker held it, and still be its to send.
_STILL_OURS = frozenset({MessageState.SENDING.value, MessageState.UNKNOWN.value})


def last_look(
    ctx: Context, claims: Sequence[Claim], now: datetime, report: PassReport
) -> list[bool]:
    """For each claim, whether its email may still be handed over. A claim any of whose
    messages was stopped is not: the email names every invitation it carries. The stopped
    messages are cancelled (a first invitation stopped by the recipient's word is blocked,
    as at the claim); the others of such a digest go back to the queue, to be decided again
    and leave in an email of their own.

    A message another pass made `unknown` meanwhile (this worker stalled past its lease) is
    still this worker's to hand over: it knows nothing of it left, and the outcome settles
    it, as it always did. Stopped, it is left to an admin (no edge leads from `unknown` to
    cancelled). A message settled otherwise is neither sent nor touched."""
    ids = [m.id for claim in claims for m in claim.messages]
    with ctx.engine.connect() as connection:
        rows = {row.id: row for row in connection.execute(_LOOK, {"b_ids": ids})}
        recipients = gather.recipient_facts(
            connection,
            {claim.carrier.digest for claim in claims},
            now,
            ctx.settings.policy,
            exclude_messages=ids,
            stage=Stage.SEND,
        )
    going: list[bool] = []
    stopped: list[tuple[Claim, dict[str, str]]] = []
    for claim in claims:
        why: dict[str, str] = {}
        live = held = True
        for message in claim.messages:
            row = rows.get(message.id)
            if row is None or row.state not in _STILL_OURS:
                live = False
                continue
            held = held and row.state == MessageState.SENDING.value
            reason = stopped_since_claim(
                _candidate(message),
                recipients[message.digest],
                row.invitation_state,
                row.revoked_at is not None,
                now,
            )
            if reason is not None:
                why[message.id] = reason
        going.append(live and not why)
        if live and held and why:
            stopped.append((claim, why))
    if stopped:
        _stop(ctx, stopped, now, report)
    return going


def _candidate(message: Due) -> Candidate:
    return Candidate(
        message.member_id, message.digest, message.kind, Stage.SEND, message.invitation_id
    )


def _stop(
    ctx: Context, stopped: list[tuple[Claim, dict[str, str]]], now: datetime, report: PassReport
) -> None:
    with ctx.unit_of_work(now) as uow:
        for claim, why in stopped:
            for message in claim.messages:
                reason = why.get(message.id)
                if reason is None:
                    unclaim(uow, message, _PART_STOPPED)
                    continue
                text = f"stopped before it left: {reason}"
                # No longer part of the email that may leave without it: a complaint about
                # that email charges only the members it named.
                set_messages(
                    uow,
                    [message.id],
                    MessageState.SENDING,
                    MessageState.CANCELLED,
                    text,
                    carried_by=None,
                )
                report.cancelled += 1
                if message.kind is not MessageKind.REMINDER:
                    # As a revocation before the claim would have (withdrawn), or the
                    # claim's own refusal (blocked); an invitation no longer scheduled (a
                    # declined or joined one) keeps its state.
                    target = (
                        InvitationState.WITHDRAWN
                        if reason == CONSENT_REVOKED
                        else InvitationState.BLOCKED
                    )
                    move_invitations(
                        uow,
                        (invitations.c.recipient_digest == message.digest)
                        & (invitations.c.id == message.invitation_id)
                        & (invitations.c.state == InvitationState.SCHEDULED.value),
                        target,
                        text,
                    )
        uow.commit()
