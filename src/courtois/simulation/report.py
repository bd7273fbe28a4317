"""What a comparison says, as rows for a table and one JSON-ready object."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import Any

from courtois.policy.config import PolicyConfig, settable_fields
from courtois.simulation.compare import Comparison
from courtois.simulation.tally import OUTCOMES, TOTALS


def policy_changes(current: PolicyConfig, new: PolicyConfig) -> dict[str, dict[str, Any]]:
    """Each setting the new policy changes: {key: {"current", "new"}}."""
    keys = settable_fields()
    return {
        f.name: {"current": getattr(current, f.name), "new": getattr(new, f.name)}
        for f in fields(PolicyConfig)
        if f.name in keys and getattr(current, f.name) != getattr(new, f.name)
    }


def rule_rows(comparison: Comparison) -> list[dict[str, Any]]:
    """Per rule and outcome: history, current replay, new policy, and new minus current.
    An outcome no side ever gave is left out, except `allow`."""
    rows = []
    sides = (comparison.history, comparison.current, comparison.new)
    codes = list(comparison.current.rules)
    codes += [code for code in comparison.history.rules if code not in codes]
    for code in codes:
        for index, outcome in enumerate(OUTCOMES):
            history, now, then = (side.rules.get(code, [0, 0, 0])[index] for side in sides)
            if outcome != "allow" and not (history or now or then):
                continue
            rows.append(
                {
                    "rule": code,
                    "outcome": outcome,
                    "history": history,
                    "current": now,
                    "new": then,
                    "delta": then - now,
                }
            )
    return rows


def total_rows(comparison: Comparison) -> list[dict[str, Any]]:
    """Decisions per outcome and what left, on the three sides."""
    sides = (comparison.history, comparison.current, comparison.new)
    measures: dict[str, list[int]] = {}
    for index, outcome in enumerate(OUTCOMES):
        measures[f"decisions_{outcome}"] = [side.decisions[index] for side in sides]
    totals = [side.totals() for side in sides]
    for name in TOTALS:
        measures[name] = [each[name] for each in totals]
    return [
        {"measure": name, "history": h, "current": c, "new": n, "delta": n - c}
        for name, (h, c, n) in measures.items()
    ]


def replay_gap(comparison: Comparison) -> float | None:
    """How far the current-policy replay is from history: the verdicts that differ, rule by
    rule and outcome by outcome, as a share of history's verdicts (0 is a perfect replay)."""
    recorded = sum(sum(row) for row in comparison.history.rules.values())
    if not recorded:
        return None
    differing = 0
    codes = set(comparison.history.rules) | set(comparison.current.rules)
    for code in codes:
        history = comparison.history.rules.get(code, [0, 0, 0])
        now = comparison.current.rules.get(code, [0, 0, 0])
        differing += sum(abs(a - b) for a, b in zip(history, now, strict=True))
    return differing / recorded


def _instant(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def summary(
    comparison: Comparison,
    current: PolicyConfig,
    new: PolicyConfig,
    replayed_from: datetime | None,
) -> dict[str, Any]:
    """Everything the command reports, as one object (`--json` prints it as is)."""
    sides = {"current": comparison.current, "new": comparison.new}
    return {
        "since": _instant(comparison.since),
        "replayed_from": _instant(replayed_from),
        "first_event": _instant(comparison.first),
        "last_event": _instant(comparison.last),
        "events": comparison.events,
        "policy_changes": policy_changes(current, new),
        "rules": rule_rows(comparison),
        "totals": total_rows(comparison),
        "replay_gap": replay_gap(comparison),
        "not_replayed": {
            "reminder_requests": comparison.history.reminder_requests,
            "dropped_answers": {side: tally.dropped_answers for side, tally in sides.items()},
            "dropped_complaints": {side: tally.dropped_complaints for side, tally in sides.items()},
        },
        "waiting_at_end": {side: tally.waiting for side, tally in sides.items()},
    }
