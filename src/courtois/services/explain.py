"""policy explain: every verdict for a would-be invitation, written nowhere."""

from __future__ import annotations

from datetime import datetime

from courtois.domain.consent import Consent
from courtois.domain.messages import MessageKind
from courtois.policy.chain import evaluate
from courtois.policy.facts import Candidate, Facts, InvitationFacts, Stage
from courtois.policy.verdict import Decision, Outcome
from courtois.services import facts as gather
from courtois.services.context import Context
from courtois.services.decisions import verdict_of
from courtois.services.members import get_member
from courtois.services.previews import check_reminders


def explain(
    ctx: Context, member_id: str, email: str, now: datetime, reminders: int = 0
) -> Decision:
    """Decide as `invite` would at this instant, as if the member consented just now. A
    reminder `invite` would refuse (strict-eu, or above the policy's cap) is refused here
    too: explaining one would describe an email that can never exist."""
    member = get_member(ctx, member_id)
    check_reminders(ctx, reminders)
    digest = ctx.digest_email(email)
    consent = Consent(
        id="(would-be consent)",
        member_id=member.id,
        recipients=frozenset({digest}),
        kind=MessageKind.INVITATION,
        preview_hash="",
        reminders=reminders,
        text_shown="",
        ip="",
        user_agent="",
        given_at=now,
    )
    policy = ctx.settings.policy
    with ctx.engine.connect() as connection:
        facts = Facts(
            policy=policy,
            recipient=gather.recipient_facts(connection, [digest], now, policy)[digest],
            sender=gather.sender_facts(connection, member.id, now),
            invitation=InvitationFacts(
                consent=consent,
                other_invitations_by_sender=gather.previous_invitations(
                    connection, member.id, [digest]
                ).get(digest, 0),
            ),
        )
    candidate = Candidate(member.id, digest, MessageKind.INVITATION, Stage.QUEUE)
    return evaluate(candidate, facts, now)


def explained(decision: Decision) -> dict[str, object]:
    """The decision as `invite` answers it (`verdict_of`): under strict-eu an invitation
    the member would send themselves reads allowed, its `strict-eu-no-email` verdict still
    `deny`, every verdict with the full reason an operator sees."""
    refusing = [v.rule for v in decision.verdicts if v.outcome is Outcome.DENY]
    return {**decision.as_dict(), **verdict_of(decision.outcome.value, refusing)}
