"""not-already-invited: one member invites one person once, ever."""

from __future__ import annotations

from datetime import datetime

from courtois.domain.messages import MessageKind
from courtois.policy.facts import Candidate, Facts
from courtois.policy.rule import Rule, allow, deny
from courtois.policy.verdict import Verdict

CODE = "not-already-invited"

_REMINDER = allow(CODE, "a reminder belongs to its invitation")
_FIRST = allow(CODE, "this member has not invited this recipient before")


def check(candidate: Candidate, facts: Facts, now: datetime) -> Verdict:
    """Deny a second invitation from the same member: re-inviting someone who did not answer
    is exactly the unasked-for reminder invariant 3 forbids."""
    if candidate.kind is MessageKind.REMINDER:
        return _REMINDER
    if facts.invitation.other_invitations_by_sender:
        return deny(CODE, "this member already invited this recipient", "already invited")
    return _FIRST


RULE = Rule(CODE, "This member has not invited this recipient before.", check)
