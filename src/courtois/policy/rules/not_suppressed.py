"""not-suppressed: a hard bounce or a spam complaint stops all mail to that address."""

from __future__ import annotations

from datetime import datetime

from courtois.policy.facts import Candidate, Facts
from courtois.policy.rule import Rule, allow, deny
from courtois.policy.verdict import Verdict

CODE = "not-suppressed"

_CLEAN = allow(CODE, "no hard bounce or complaint for this recipient")


def check(candidate: Candidate, facts: Facts, now: datetime) -> Verdict:
    """Deny if the address bounced hard or its owner reported spam."""
    if facts.recipient.suppressed:
        return deny(
            CODE, f"the recipient is suppressed ({facts.recipient.suppressed})", "unavailable"
        )
    return _CLEAN


RULE = Rule(
    CODE, "The address never bounced hard and its owner never reported spam.", check, private=True
)
