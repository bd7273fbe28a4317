"""sender-quota: senders earn their quota (invariant 12).

Caps shrink with a low acceptance rate and many declines; complaints pause, then stop, a
sender. Complaint rates are taken over at least `complaint_min_denominator` messages so
that one complaint from a new member's first few invitations does not end their account,
while a spammer's repeated complaints still do.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from datetime import datetime, timedelta
from functools import lru_cache

from courtois.domain.messages import MessageKind
from courtois.policy.config import PolicyConfig
from courtois.policy.facts import Candidate, Facts, SenderFacts, Stage
from courtois.policy.rule import Rule, allow, defer, deny
from courtois.policy.verdict import Verdict

CODE = "sender-quota"
DAY = timedelta(days=1)
WEEK = timedelta(days=7)


def scale(sender: SenderFacts, policy: PolicyConfig) -> float:
    """The share of the caps a sender has earned, between 0.1 and 1."""
    if sender.sent_90d < policy.sender_min_sample:
        return 1.0
    acceptance = sender.accepted_90d / sender.sent_90d
    factor = min(1.0, max(0.1, acceptance / policy.sender_target_acceptance))
    if sender.declined_90d / sender.sent_90d > policy.sender_decline_limit:
        factor *= 0.5
    return max(0.1, factor)


def caps(sender: SenderFacts, policy: PolicyConfig) -> tuple[int, int]:
    """The daily and weekly caps in force for this sender (never below one a day)."""
    factor = scale(sender, policy)
    daily = max(1, math.floor(policy.sender_daily_cap * factor))
    weekly = max(daily, math.floor(policy.sender_weekly_cap * factor))
    return min(daily, policy.sender_daily_cap), min(weekly, policy.sender_weekly_cap)


@lru_cache(maxsize=64)
def _cap_reached(limit: str, daily: int, weekly: int) -> Verdict:
    """One shared verdict per cap: past the cap, every further recipient of a batch gets it."""
    return deny(
        CODE,
        f"the {limit} invitation cap ({daily}/day, {weekly}/week) is reached",
        f"{limit} invitation limit reached; try again later",
    )


def check(candidate: Candidate, facts: Facts, now: datetime) -> Verdict:
    """Stop or pause on complaints; refuse new invitations past the earned caps."""
    policy, sender = facts.policy, facts.sender
    rate = sender.complaints_90d / max(sender.sent_90d, policy.complaint_min_denominator)
    if rate > policy.complaint_stop_rate:
        return deny(CODE, f"sending stopped: complaint rate {rate:.2%}", "sending stopped")
    if rate > policy.complaint_pause_rate:
        if candidate.stage is Stage.QUEUE:
            return deny(CODE, f"sending paused: complaint rate {rate:.2%}", "sending paused")
        return defer(
            CODE, f"sending paused: complaint rate {rate:.2%}", "sending paused", now + DAY
        )
    if candidate.kind is MessageKind.REMINDER:
        return allow(CODE, "reminders count against their invitation, not the caps")
    daily, weekly = caps(sender, policy)
    if daily < 1 or weekly < 1:
        return deny(CODE, "the policy allows no invitations", "invitations are closed")
    # recent_messages is sorted (a SenderFacts contract): count each window by bisection.
    # Everything recorded since a window opened counts, even a message stamped after `now`:
    # two requests racing read the clock before taking the member's lock, and the one that
    # read it later may commit first; leaving its messages out would let both fill the cap.
    recent = sender.recent_messages
    end = len(recent)
    day_start = bisect_right(recent, now - DAY, 0, end)
    week_start = bisect_right(recent, now - WEEK, 0, end)
    in_day, in_week = end - day_start, end - week_start
    if in_day < daily and in_week < weekly:
        return allow(CODE, f"{in_day}/{daily} today, {in_week}/{weekly} this week")
    limit = "daily" if in_day >= daily else "weekly"
    if candidate.stage is Stage.QUEUE:
        return _cap_reached(limit, daily, weekly)
    frees = recent[end - daily] + DAY if limit == "daily" else recent[end - weekly] + WEEK
    return defer(CODE, f"the {limit} cap is reached", "sending later", frees)


RULE = Rule(CODE, "Within the sender's earned daily and weekly caps, no complaint surge.", check)
