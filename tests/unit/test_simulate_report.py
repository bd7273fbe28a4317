"""The comparison's rows, totals, replay gap and JSON object, on a history whose recorded
outcome the current-policy replay does not reproduce (so every column differs)."""

from __future__ import annotations

import json
from datetime import timedelta

from simulate_support import DAY, MINUTE, T0

from courtois.policy.chain import CHAIN
from courtois.policy.config import PolicyConfig
from courtois.simulation import events as ev
from courtois.simulation.compare import compare, warmup
from courtois.simulation.report import replay_gap, rule_rows, summary, total_rows

ALLOW = {rule.code: "allow" for rule in CHAIN}


def history() -> list[ev.Event]:
    """Ana asked to invite Cy; the record says the sender quota refused it (say the member
    had invited a hundred people that day through a path the ledger does not show), and a
    recipient asked to be reminded later (counted, not replayed)."""
    refused = {**ALLOW, "sender-quota": "deny"}
    later = {**ALLOW, "reminder-allowed": "defer"}
    return [
        ev.Recorded(T0, "queue", "invitation", "deny", refused, False),
        ev.Requested(T0, "i1", "c1", "ana", "cy", 0),
        ev.Recorded(T0, "queue", "reminder", "defer", later, False),
        ev.Unsubscribed(T0 + DAY, "nobody", None),
    ]


def test_rows_put_history_both_replays_and_the_difference_side_by_side() -> None:
    comparison = compare(history(), PolicyConfig(), PolicyConfig(undo_window_minutes=20))
    rows = {(r["rule"], r["outcome"]): r for r in rule_rows(comparison)}
    quota = rows[("sender-quota", "deny")]
    assert (quota["history"], quota["current"], quota["new"], quota["delta"]) == (1, 0, 0, 0)
    # The replay queued the invitation (undo window), then sent it after ten minutes.
    undo = rows[("undo-window-elapsed", "defer")]
    assert (undo["history"], undo["current"], undo["new"]) == (0, 1, 1)
    allowed = rows[("undo-window-elapsed", "allow")]
    assert (allowed["history"], allowed["current"], allowed["new"]) == (2, 1, 1)
    # No side ever denied for consent: that row is left out, its allow row is not.
    assert ("consent-covers", "deny") not in rows
    assert ("consent-covers", "allow") in rows
    assert [r["rule"] for r in rule_rows(comparison) if r["outcome"] == "allow"] == [
        rule.code for rule in CHAIN
    ]
    totals = {r["measure"]: r for r in total_rows(comparison)}
    assert (totals["requested"]["history"], totals["requested"]["current"]) == (1, 1)
    assert (totals["emails"]["history"], totals["emails"]["current"]) == (0, 1)
    assert totals["decisions_deny"]["history"] == 1


def test_the_replay_gap_is_the_share_of_verdicts_that_differ() -> None:
    comparison = compare(history(), PolicyConfig(), PolicyConfig())
    # History: 20 verdicts (two decisions). The replay: 20 too (queue and send), differing
    # in sender-quota (allow 1 vs 2, deny 1 vs 0: 2), the undo window (allow 2 vs 1, defer
    # 0 vs 1: 2) and reminder-allowed (allow 1 vs 2, defer 1 vs 0: 2).
    assert replay_gap(comparison) == 6 / 20
    assert replay_gap(compare([], PolicyConfig(), PolicyConfig())) is None


def test_the_summary_is_one_json_object_with_the_span_replayed() -> None:
    since = T0 - MINUTE
    new = PolicyConfig(recipient_long_max=1)
    start = since - warmup(PolicyConfig(), new)
    assert warmup(PolicyConfig(), new) == timedelta(days=120)
    comparison = compare(history(), PolicyConfig(), new, since)
    report = summary(comparison, PolicyConfig(), new, start)
    assert json.loads(json.dumps(report)) == report
    assert report["policy_changes"] == {"recipient_long_max": {"current": 2, "new": 1}}
    assert (report["since"], report["replayed_from"]) == (since.isoformat(), start.isoformat())
    assert report["events"] == 4
    assert report["not_replayed"]["reminder_requests"] == 1
    assert warmup(PolicyConfig(invitation_expiry_days=90)) == timedelta(days=180)
