"""recipient-quota: the inbox is protected across senders (invariant 6).

Every message to a recipient, from any member, occupies a slot at its send time (scheduled
messages reserve theirs). A message whose slot would crowd the window is deferred; the
invitations that meet at that later time leave together as one digest.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from courtois.policy.facts import Candidate, Facts
from courtois.policy.rule import Rule, allow, defer, deny
from courtois.policy.verdict import Verdict

CODE = "recipient-quota"


def _free_after(slots: list[datetime], limit: int, window: timedelta) -> datetime:
    """The first time at which fewer than `limit` slots fall within `window` of it."""
    return sorted(slots)[-limit] + window


def check(candidate: Candidate, facts: Facts, now: datetime) -> Verdict:
    """Defer when another message to this recipient is within the short window of now, or
    when the long window already holds its maximum."""
    policy = facts.policy
    if policy.recipient_short_max < 1 or policy.recipient_long_max < 1:
        return deny(CODE, "the policy allows no email to any recipient", "not sent")
    slots = list(facts.recipient.slots)
    short = [s for s in slots if abs(s - now) < policy.short_window]
    long = [s for s in slots if abs(s - now) < policy.long_window]
    retry: datetime | None = None
    if len(short) >= policy.recipient_short_max:
        retry = _free_after(slots, policy.recipient_short_max, policy.short_window)
    if len(long) >= policy.recipient_long_max:
        later = _free_after(slots, policy.recipient_long_max, policy.long_window)
        retry = later if retry is None else max(retry, later)
    if retry is not None:
        return defer(
            CODE,
            f"the recipient's quota is used until {retry.isoformat()}; grouped into a digest",
            "will be grouped with other invitations",
            retry,
        )
    return allow(CODE, f"{len(long)} other message(s) in the recipient's long window")


RULE = Rule(CODE, "At most the per-recipient quota across all senders; the rest waits.", check)
