"""recipient-quota: the inbox is protected across senders (invariant 6).

Every message to a recipient, from any member, occupies a slot at its send time (scheduled
messages reserve theirs). A message whose slot would crowd the window is deferred; the
invitations that meet at that later time leave together as one digest.

A reminder the recipient asked for ("remind me later") is counted on its own day: only the
emails that hold theirs (sent, and other reminders asked for) can move it, since the held
ones (`pending`) see it reserved when their time comes and wait past it. Once scheduled it
keeps that day at every stage: it counts, but nothing joins it, as a reminder never leaves
in a digest and the recipient was told the day.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from courtois.domain.messages import MessageKind
from courtois.policy.config import PolicyConfig
from courtois.policy.facts import Candidate, Facts, RecipientFacts, Stage
from courtois.policy.rule import Rule, allow, defer, deny
from courtois.policy.verdict import Verdict

CODE = "recipient-quota"
# What the member reads of a deferral: nothing of other senders, whose emails to this
# person are none of theirs (invariant 11), nor of the day (`services.decisions`).
HELD = "leaves when the limits on emails to this person allow"

# How late a worker pass may send a reminder asked for without moving the next one's day.
LATENESS = timedelta(hours=1)

_FIRST_EMAIL = allow(CODE, "no other email to this recipient in the quota windows")


def _crowded(
    emails: list[datetime],
    at: datetime,
    limit: int,
    window: timedelta,
    reserved: frozenset[datetime] = frozenset(),
    slack: timedelta = timedelta(0),
) -> bool:
    """Whether one more email at `at` would put `limit` + 1 emails inside some stretch of
    time shorter than `window`: the quota is "at most `limit` in any `window`", which
    only the runs of consecutive emails through `at` can break. (Counting every email
    within `window` on either side would be stricter than the quota, and not consistent:
    with emails on days 0 and 90, day 14 would be refused two in 90 days, though the email
    of day 90, seeing days 0 and 14, was allowed.) A run holding one of the `reserved`
    emails, which are still to leave, needs `slack` more, for their lateness."""
    before = sorted(e for e in emails if e <= at)
    after = sorted(e for e in emails if e > at)
    for taken_before in range(limit + 1):
        taken_after = limit - taken_before
        if taken_before > len(before) or taken_after > len(after):
            continue
        run = before[len(before) - taken_before :] + after[:taken_after]
        first = run[0] if taken_before else at
        last = run[-1] if taken_after else at
        wanted = window + slack if reserved.intersection(run) else window
        if last - first < wanted:
            return True
    return False


def check(candidate: Candidate, facts: Facts, now: datetime) -> Verdict:
    """Allow when no other email to this recipient is within the short window of now and
    the long window is not full; otherwise join the next email already scheduled (one
    digest, no extra email), or wait until the windows free up."""
    policy = facts.policy
    if policy.recipient_short_max < 1 or policy.recipient_long_max < 1:
        return deny(CODE, "the policy allows no email to any recipient", "not sent")
    recipient = facts.recipient
    asked = recipient.reminder_requested_for
    if candidate.kind is MessageKind.REMINDER and asked is not None:
        return _asked_for(recipient, max(now, asked), now, policy, candidate.stage)
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
    retry = first_free(emails, now, policy)
    return defer(
        CODE,
        f"the recipient's quota is used until {retry.isoformat()}; grouped into a digest",
        HELD,
        retry,
    )


def first_free(
    emails: list[datetime],
    at: datetime,
    policy: PolicyConfig,
    reserved: frozenset[datetime] = frozenset(),
    slack: timedelta = timedelta(0),
) -> datetime:
    """The first instant from `at` at which one more email fits both windows (`_crowded`).
    A window frees only when an email leaves it, so that instant is `at` or one at which
    an email leaves a window (with or without the slack); after the last email's long
    window none is left, so one is found (the policy allows at least one email per
    window: `check` refuses otherwise)."""
    windows = (
        (policy.recipient_short_max, policy.short_window),
        (policy.recipient_long_max, policy.long_window),
    )
    moments = sorted(
        {at}
        | {
            e + window + extra
            for e in emails
            for _, window in windows
            for extra in {timedelta(0), slack}
            if e + window + extra > at
        }
    )
    return next(
        t
        for t in moments
        if not any(_crowded(emails, t, n, window, reserved, slack) for n, window in windows)
    )


def _asked_for(
    recipient: RecipientFacts, day: datetime, now: datetime, policy: PolicyConfig, stage: Stage
) -> Verdict:
    """The reminder the recipient asked for, on `day` or the first day after it that the
    emails holding their day leave free. When its day is chosen (queued), the other
    reminders asked for are kept `LATENESS` further off than the windows say: each leaves
    at a worker pass, a little after its instant, and must not then crowd this one out of
    the day the recipient was told. Right before sending, the windows alone count."""
    holding = sorted(set(recipient.slots) | set(recipient.reserved))
    slack = LATENESS if stage is Stage.QUEUE else timedelta(0)
    free = first_free(holding, day, policy, frozenset(recipient.reserved), slack)
    if free <= now:
        return allow(CODE, f"{len(holding)} other email(s) hold their day; the asked day is free")
    if free == day:
        return defer(
            CODE, f"the day the recipient asked for, {day.isoformat()}, is free", HELD, day
        )
    return defer(
        CODE,
        f"the recipient's quota is used until {free.isoformat()}, after the day asked for",
        HELD,
        free,
    )


RULE = Rule(CODE, "At most the per-recipient quota across all senders; the rest waits.", check)
