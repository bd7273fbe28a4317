"""The shape of a policy rule: a stable code, one line of description, a pure check."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from courtois.policy.facts import Candidate, Facts
from courtois.policy.verdict import Outcome, Verdict

Check = Callable[[Candidate, Facts, datetime], Verdict]


@dataclass(frozen=True, slots=True)
class Rule:
    """A named rule; `check` must be pure: same inputs, same verdict."""

    code: str
    description: str
    check: Check
    # A verdict a member may not read as such (it would say why a recipient cannot be
    # reached): members see the private rules as one "unavailable" (invariant 11).
    private: bool = False


def allow(rule: str, reason: str) -> Verdict:
    """A pass, still recorded with its reason."""
    return Verdict(rule, Outcome.ALLOW, reason)


def deny(rule: str, reason: str, public_reason: str) -> Verdict:
    """A refusal for good."""
    return Verdict(rule, Outcome.DENY, reason, public_reason)


def defer(rule: str, reason: str, public_reason: str, retry_at: datetime) -> Verdict:
    """Not now; ask again at `retry_at`."""
    return Verdict(rule, Outcome.DEFER, reason, public_reason, retry_at)
