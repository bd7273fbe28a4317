"""undo-window-elapsed: the member can take anything back for a while (invariant 5)."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from courtois.domain.messages import MessageKind
from courtois.policy.facts import Candidate, Facts
from courtois.policy.rule import Rule, allow, defer
from courtois.policy.verdict import Verdict

CODE = "undo-window-elapsed"

_NO_WINDOW = allow(CODE, "no undo window applies")
_PASSED = allow(CODE, "the undo window has passed")


@lru_cache(maxsize=256)
def _wait_until(ends: datetime) -> Verdict:
    """One shared verdict per window end: every recipient of a consent shares it."""
    reason = f"the undo window runs until {ends.isoformat()}"
    return defer(CODE, reason, "can still be undone", ends)


def check(candidate: Candidate, facts: Facts, now: datetime) -> Verdict:
    """Defer the first message of a consent until the undo window after it has passed."""
    consent = facts.invitation.consent
    if candidate.kind is MessageKind.REMINDER or consent is None:
        return _NO_WINDOW
    ends = consent.given_at + facts.policy.undo_window
    if now < ends:
        return _wait_until(ends)
    return _PASSED


RULE = Rule(CODE, "The member's undo window after consenting has passed.", check)
