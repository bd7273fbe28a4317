"""Verdicts are stored as compact arrays and read back with every field they had."""

from __future__ import annotations

from datetime import UTC, datetime

from courtois.policy.verdict import Decision, Outcome, Verdict
from courtois.services.decisions import expand_verdicts, stored_verdicts

LATER = datetime(2026, 3, 16, 9, 10, tzinfo=UTC)


def test_round_trip_keeps_every_field_that_was_given() -> None:
    decision = Decision(
        (
            Verdict("consent-covers", Outcome.ALLOW, "covered"),
            Verdict("not-unsubscribed", Outcome.DENY, "opted out", "unavailable"),
            Verdict("recipient-quota", Outcome.DEFER, "quota", "grouped", LATER),
        )
    )
    stored = stored_verdicts(decision)
    assert [len(item) for item in stored] == [3, 4, 5]
    assert expand_verdicts(stored) == [
        {"rule": "consent-covers", "outcome": "allow", "reason": "covered"},
        {
            "rule": "not-unsubscribed",
            "outcome": "deny",
            "reason": "opted out",
            "public_reason": "unavailable",
        },
        {
            "rule": "recipient-quota",
            "outcome": "defer",
            "reason": "quota",
            "public_reason": "grouped",
            "retry_at": LATER.isoformat(),
        },
    ]
