"""not-a-member: nobody is invited to a platform they already joined."""

from __future__ import annotations

from datetime import datetime

from courtois.policy.facts import Candidate, Facts
from courtois.policy.rule import Rule, allow, deny
from courtois.policy.verdict import Verdict

CODE = "not-a-member"

_NOT_A_MEMBER = allow(CODE, "the recipient is not a member")


def check(candidate: Candidate, facts: Facts, now: datetime) -> Verdict:
    """Deny when the recipient is already a member."""
    if facts.recipient.is_member:
        return deny(CODE, "the recipient is already a member", "already a member")
    return _NOT_A_MEMBER


RULE = Rule(CODE, "The recipient is not already a member of the platform.", check)
