"""Building replay histories by hand, for the tests of `courtois.simulation`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from courtois.policy.config import PolicyConfig
from courtois.simulation import events as ev
from courtois.simulation.replay import Replay
from courtois.simulation.tally import Tally

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)
# A worker that runs all the time: every message goes at its due time.
CONTINUOUS = timedelta(0)


@dataclass
class History:
    """Events in the order they are added; ids are handed out in sequence."""

    events: list[ev.Event] = field(default_factory=list)
    consents: list[str] = field(default_factory=list)
    counter: int = 0

    def _id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def invite(self, at: datetime, member: str, *recipients: str, reminders: int = 0) -> list[str]:
        """One consent, one invitation per recipient; returns the invitation ids."""
        consent = self._id("c")
        self.consents.append(consent)
        ids = [self._id("i") for _ in recipients]
        self.events += [
            ev.Requested(at, invitation, consent, member, recipient, reminders)
            for invitation, recipient in zip(ids, recipients, strict=True)
        ]
        return ids

    def add(self, *events: ev.Event) -> None:
        self.events += events

    def passes(self, *instants: datetime) -> None:
        self.events += [ev.WorkerPass(at) for at in instants]


def replay(
    events: Iterable[ev.Event],
    policy: PolicyConfig | None = None,
    *,
    since: datetime | None = None,
    idle_after: timedelta | None = CONTINUOUS,
    until: datetime | None = None,
) -> Tally:
    """Feed the events (sorted by time, stable) and finish at `until` (or the last one)."""
    ordered = sorted(events, key=lambda e: e[0])
    world = Replay(policy or PolicyConfig(), since, idle_after)
    for event in ordered:
        world.feed(event)
    end = until or (ordered[-1][0] if ordered else None)
    return world.finish(end)


def verdicts(tally: Tally, rule: str) -> dict[str, int]:
    """One rule's verdict counts by outcome."""
    allow, deny, defer = tally.rules[rule]
    return {"allow": allow, "deny": deny, "defer": defer}
