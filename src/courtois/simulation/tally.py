"""What a replay counts, and the same counts taken from what was recorded.

Both sides count the same things the same way, so a difference is the policy's doing (or
the replay's approximation, which the current-policy replay measures).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from courtois.policy.chain import CHAIN
from courtois.policy.verdict import Decision, Outcome
from courtois.simulation.events import Recorded, RecordedDelivery, RecordedFirstSend

CODES = tuple(rule.code for rule in CHAIN)
OUTCOMES = (Outcome.ALLOW.value, Outcome.DENY.value, Outcome.DEFER.value)
_INDEX = {name: i for i, name in enumerate(OUTCOMES)}
# Totals every tally reports, in the order they are shown.
TOTALS = (
    "decisions",
    "requested",
    "invitations_sent",
    "shared",
    "reminders_sent",
    "emails",
    "digests",
)


class Tally:
    """Verdicts per rule and outcome, decisions per outcome, and what left."""

    __slots__ = (
        "decisions",
        "digests",
        "dropped_answers",
        "dropped_complaints",
        "emails",
        "invitations_sent",
        "reminder_requests",
        "reminders_sent",
        "requested",
        "rules",
        "shared",
        "waiting",
    )

    def __init__(self, codes: Iterable[str] = CODES) -> None:
        self.rules: dict[str, list[int]] = {code: [0, 0, 0] for code in codes}
        self.decisions = [0, 0, 0]
        self.requested = 0
        self.invitations_sent = 0
        self.shared = 0
        self.reminders_sent = 0
        self.emails = 0
        self.digests = 0
        # What a replay could not carry over: answers and complaints about mail the
        # simulated world never sent, messages still waiting when the history ends, and
        # "remind me later" requests, which the ledger does not date.
        self.dropped_answers = 0
        self.dropped_complaints = 0
        self.waiting = 0
        self.reminder_requests = 0

    def count(self, decision: Decision) -> None:
        """One decision: each rule's verdict and the combined outcome."""
        rules = self.rules
        for verdict in decision.verdicts:
            rules[verdict[0]][_INDEX[verdict[1]]] += 1
        self.decisions[_INDEX[decision.outcome]] += 1

    def count_recorded(self, rules: Mapping[str, str], outcome: str) -> None:
        """One stored decision, from its rule -> outcome map (rules that no longer exist
        get rows of their own)."""
        for code, said in rules.items():
            row = self.rules.get(code)
            if row is None:
                row = self.rules[code] = [0, 0, 0]
            row[_INDEX[said]] += 1
        self.decisions[_INDEX[outcome]] += 1

    def totals(self) -> dict[str, int]:
        """The totals of TOTALS, by name."""
        return {
            "decisions": sum(self.decisions),
            "requested": self.requested,
            "invitations_sent": self.invitations_sent,
            "shared": self.shared,
            "reminders_sent": self.reminders_sent,
            "emails": self.emails,
            "digests": self.digests,
        }

    def as_dict(self) -> dict[str, Any]:
        """Plain form for JSON and tests."""
        return {
            "rules": {
                code: dict(zip(OUTCOMES, row, strict=True)) for code, row in self.rules.items()
            },
            "outcomes": dict(zip(OUTCOMES, self.decisions, strict=True)),
            **self.totals(),
            "dropped_answers": self.dropped_answers,
            "dropped_complaints": self.dropped_complaints,
            "waiting": self.waiting,
            "reminder_requests": self.reminder_requests,
        }


class HistoryTally:
    """The baseline: what was recorded, counted from `since` on."""

    def __init__(self, since: datetime | None) -> None:
        self.since = since
        self.tally = Tally()

    def feed(self, event: Recorded | RecordedFirstSend | RecordedDelivery) -> None:
        """Count one recorded fact."""
        if self.since is not None and event.at < self.since:
            return
        tally = self.tally
        if isinstance(event, Recorded):
            tally.count_recorded(event.rules, event.outcome)
            if event.stage == "queue":
                if event.kind == "invitation":
                    tally.requested += 1
                    tally.shared += event.shared
                else:
                    tally.reminder_requests += 1
        elif isinstance(event, RecordedFirstSend):
            tally.invitations_sent += 1
        else:
            tally.reminders_sent += event.reminder
            if not event.carried:
                tally.emails += 1
                tally.digests += event.digest
