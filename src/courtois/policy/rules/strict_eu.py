"""strict-eu-no-email: under `strict-eu`, the platform emails no non-member at all."""

from __future__ import annotations

from datetime import datetime

from courtois.policy.config import PolicyConfig
from courtois.policy.facts import Candidate, Facts
from courtois.policy.rule import Rule, allow, deny
from courtois.policy.verdict import Verdict

CODE = "strict-eu-no-email"

_BALANCED = allow(CODE, "the balanced profile lets the platform send invitations")


def members_send_themselves(policy: PolicyConfig) -> bool:
    """Whether each member sends their invitation from their own mailbox: then what they
    preview and consent to is that text, and nothing follows it (no reminder exists)."""
    return policy.profile == "strict-eu"


def check(candidate: Candidate, facts: Facts, now: datetime) -> Verdict:
    """German courts held platform-sent invitations to be advertising (BGH, 2016): under
    this profile the member shares a personal link from their own mailbox instead."""
    if not members_send_themselves(facts.policy):
        return _BALANCED
    return deny(
        CODE,
        "the strict-eu profile sends no email to non-members",
        "send it yourself with your personal invitation link",
    )


RULE = Rule(CODE, "Under the strict-eu profile, no platform email goes to non-members.", check)
