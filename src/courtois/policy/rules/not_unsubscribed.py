"""not-unsubscribed: an opt-out, from everyone or from this member, is final (invariant 4)."""

from __future__ import annotations

from datetime import datetime

from courtois.policy.facts import Candidate, Facts
from courtois.policy.rule import Rule, allow, deny
from courtois.policy.verdict import Verdict

CODE = "not-unsubscribed"
UNAVAILABLE = "unavailable"

_SUBSCRIBED = allow(CODE, "the recipient has not unsubscribed")


def check(candidate: Candidate, facts: Facts, now: datetime) -> Verdict:
    """Deny if the recipient stopped all mail, or mail from this member. The member is only
    told "unavailable": an opt-out is the recipient's business (invariant 11)."""
    if facts.recipient.unsubscribed_all:
        return deny(CODE, "the recipient unsubscribed from everyone", UNAVAILABLE)
    if candidate.member_id in facts.recipient.blocked_members:
        return deny(CODE, "the recipient unsubscribed from this member", UNAVAILABLE)
    return _SUBSCRIBED


RULE = Rule(
    CODE,
    "The recipient has not opted out, from everyone or from this member.",
    check,
    private=True,
)
