"""consent-covers: every message is covered by the member's active consent (invariant 1)."""

from __future__ import annotations

from datetime import datetime

from courtois.domain.messages import MessageKind
from courtois.policy.facts import Candidate, Facts
from courtois.policy.rule import Rule, allow, deny
from courtois.policy.verdict import Verdict

CODE = "consent-covers"

_COVERED = allow(CODE, "an active consent of this member names this recipient")


def check(candidate: Candidate, facts: Facts, now: datetime) -> Verdict:
    """Deny unless an active consent of this member names this recipient and message kind.

    A reminder needs the consent to cover the invitation it reminds of; whether the reminder
    itself was asked for is the reminder-allowed rule's question.
    """
    consent = facts.invitation.consent
    if consent is None or consent.member_id != candidate.member_id:
        return deny(CODE, "no consent of this member covers this message", "no consent")
    if not consent.is_active:
        return deny(CODE, "the member revoked this consent", "consent revoked")
    kind = MessageKind.INVITATION if candidate.kind is MessageKind.REMINDER else candidate.kind
    if not consent.covers(candidate.recipient_digest, kind):
        return deny(CODE, "the consent does not name this recipient", "no consent")
    return _COVERED


RULE = Rule(CODE, "The member consented to exactly this message to this recipient.", check)
