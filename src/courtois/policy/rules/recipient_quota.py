"""recipient-quota: the inbox is protected across senders (invariant 6).

Every message to a recipient, from any member, occupies a slot at its send time (scheduled
messages reserve theirs). A message whose slot would crowd the window is deferred; the
invitations that meet at that later time leave together as one digest. A reminder the
recipient asked for keeps its day at every stage: it counts, but nothing joins it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from courtois.policy.facts import Candidate, Facts
from courtois.policy.rule import Rule, allow, defer, deny
from courtois.policy.verdict import Verdict

CODE = "recipient-quota"
# What the member reads of a deferral: nothing of other senders, whose emails to this
# person are none of theirs (invariant 11), nor of the day (`services.decisions`).
HELD = "leaves when the limits on emails to this person allow"

_FIRST_EMAIL = allow(CODE, "no other email to this recipient in the quota windows")


def _free_after(emails: list[datetime], limit: int, window: timedelta) -> datetime:
    """The first time at which fewer than `limit` emails fall within `window` of it."""
    return sorted(emails)[-limit] + window


def _crowded(emails: list[datetime], at: datetime, limit: int, window: timedelta) -> bool:
    return sum(1 for e in emails if abs(e - at) < window) >= limit


def check(candidate: Candidate, facts: Facts, now: datetime) -> Verdict:
    """Allow when no other email to this recipient is within the short window of now and
    the long window is not full; otherwise join the next email already scheduled (one
    digest, no extra email), or wait until the windows free up."""
    policy = facts.policy
    if policy.recipient_short_max < 1 or policy.recipient_long_max < 1:
        return deny(CODE, "the policy allows no email to any recipient", "not sent")
    recipient = facts.recipient
    if not recipient.slots and not recipient.pending and not recipient.reserved:
        return _FIRST_EMAIL
    emails = sorted(set(recipient.slots) | set(recipient.pending) | set(recipient.reserved))
    short_full = _crowded(emails, now, policy.recipient_short_max, policy.short_window)
    long_full = _crowded(emails, now, policy.recipient_long_max, policy.long_window)
    if not short_full and not long_full:
        nearby = sum(1 for e in emails if abs(e - now) < policy.long_window)
        return allow(CODE, f"{nearby} other email(s) in the recipient's long window")
    upcoming = sorted(p for p in set(recipient.pending) - set(recipient.reserved) if p > now)
    if upcoming:
        joined = upcoming[0]
        return defer(
            CODE,
            f"joins the digest already due at {joined.isoformat()}",
            HELD,
            joined,
        )
    retry = now
    if short_full:
        retry = max(retry, _free_after(emails, policy.recipient_short_max, policy.short_window))
    if long_full:
        retry = max(retry, _free_after(emails, policy.recipient_long_max, policy.long_window))
    return defer(
        CODE,
        f"the recipient's quota is used until {retry.isoformat()}; grouped into a digest",
        HELD,
        retry,
    )


RULE = Rule(CODE, "At most the per-recipient quota across all senders; the rest waits.", check)
