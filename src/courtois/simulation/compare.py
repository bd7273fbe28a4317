"""Replay one history under the current policy and under another, beside what happened.

The replay under the current policy is the yardstick for the other: both carry the same
approximations (see `courtois.simulation.replay`), so their difference is the new policy's
effect, while the current replay's difference from history says how far to trust it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from courtois.policy.config import PolicyConfig
from courtois.simulation import events as ev
from courtois.simulation.replay import IDLE_AFTER, Replay
from courtois.simulation.tally import HistoryTally, Tally

_BASELINE = (ev.Recorded, ev.RecordedFirstSend, ev.RecordedDelivery)
# Sender rates look 90 days back; invitations wait at most the long window plus expiry.
SENDER_WINDOW = timedelta(days=90)


def warmup(*policies: PolicyConfig) -> timedelta:
    """How much history before `since` a replay needs to rebuild the facts in force at
    `since`: the sender's 90-day rates, and the life of an invitation scheduled then."""
    spans = [p.long_window + timedelta(days=p.invitation_expiry_days) for p in policies]
    return max([SENDER_WINDOW, *spans])


@dataclass(frozen=True, slots=True)
class Comparison:
    """The three tallies, over the same events."""

    history: Tally
    current: Tally
    new: Tally
    events: int
    first: datetime | None
    last: datetime | None
    since: datetime | None


def compare(
    events: Iterable[ev.Event],
    current: PolicyConfig,
    new: PolicyConfig,
    since: datetime | None = None,
    idle_after: timedelta | None = IDLE_AFTER,
) -> Comparison:
    """Feed every event to the baseline and to both replays, in one pass over the stream."""
    history = HistoryTally(since)
    replays = (Replay(current, since, idle_after), Replay(new, since, idle_after))
    first_feed, second_feed = (r.feed for r in replays)
    baseline = history.feed
    count = 0
    first: datetime | None = None
    last: datetime | None = None
    for event in events:
        if first is None:
            first = event[0]
        if isinstance(event, _BASELINE):
            baseline(event)
        else:
            first_feed(event)
            second_feed(event)
        count += 1
        last = event[0]
    now, then = (r.finish(last) for r in replays)
    return Comparison(history.tally, now, then, count, first, last, since)
