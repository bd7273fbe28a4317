"""`simulate` on a history the real use cases wrote, on SQLite and PostgreSQL: the replay
under the current policy gives back what happened, another policy shows its effect rule by
rule, and `since` counts from a date while the opt-outs and invitations of before it hold.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from simulate_story import BO, CY, DAY, GUS, MINUTE, SENT, write_story
from support import T0, add_members, send_invites

from courtois.delivery.transport import MemoryTransport
from courtois.domain.errors import InvalidInput
from courtois.policy.config import PolicyConfig
from courtois.services.context import Context
from courtois.services.members import register_member
from courtois.services.recipients import unsubscribe
from courtois.services.simulate import policy_from_file, simulate
from courtois.services.worker import run_pass

ZED = "zed@example.org"


def rows_of(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, int]]:
    return {(r["rule"], r["outcome"]): r for r in report["rules"]}


def totals_of(report: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {r["measure"]: r for r in report["totals"]}


def test_the_current_policy_replay_gives_back_what_happened(ctx: Context) -> None:
    write_story(ctx)
    report = simulate(ctx, ctx.settings.policy).report
    totals = totals_of(report)
    for measure, count in SENT.items():
        assert totals[measure]["history"] == count, measure
    for row in report["rules"] + report["totals"]:
        assert row["history"] == row["current"] == row["new"], row
        assert row["delta"] == 0
    assert report["replay_gap"] == 0.0
    assert report["policy_changes"] == {}
    rows = rows_of(report)
    # Each refusal of the story, by the rule that made it.
    assert rows[("not-already-invited", "deny")]["history"] == 1
    assert rows[("not-a-member", "deny")]["history"] == 1
    # Hal's invitation was stopped when the bounce was reported: nothing left to refuse.
    assert ("not-suppressed", "deny") not in rows
    assert report["not_replayed"]["dropped_complaints"] == {"current": 0, "new": 0}


def test_a_tighter_sender_cap_shows_its_effect_rule_by_rule(ctx: Context) -> None:
    write_story(ctx)
    report = simulate(ctx, PolicyConfig(sender_daily_cap=2)).report
    assert report["policy_changes"] == {"sender_daily_cap": {"current": 100, "new": 2}}
    rows = rows_of(report)
    # Ana's four-recipient consent: Dee and Eve are refused at once.
    refused = rows[("sender-quota", "deny")]
    assert (refused["history"], refused["current"], refused["new"]) == (0, 0, 2)
    assert refused["delta"] == 2
    totals = totals_of(report)
    # Dee's and Eve's emails (their reminders never left: an opt-out and a decline).
    assert totals["emails"]["new"] == SENT["emails"] - 2
    assert totals["emails"]["delta"] == -2
    assert totals["requested"]["new"] == SENT["requested"]
    # Eve declined an invitation the new policy never sent.
    assert report["not_replayed"]["dropped_answers"] == {"current": 0, "new": 1}
    assert report["replay_gap"] == 0.0


def test_since_counts_from_a_date_and_what_lasts_from_before_holds(ctx: Context) -> None:
    add_members(ctx)
    transport = MemoryTransport()
    unsubscribe(ctx, ctx.digest_email(ZED), T0)
    register_member(ctx, "gus", GUS, "Gus", "en", T0)
    send_invites(ctx, "ana", [BO], T0)
    run_pass(ctx, T0 + 10 * MINUTE, transport)
    later = T0 + 200 * DAY
    send_invites(ctx, "ana", [BO, ZED, GUS, CY], later)
    run_pass(ctx, later + 10 * MINUTE, transport)
    assert len(transport.sent) == 2

    since = later - DAY
    report = simulate(ctx, ctx.settings.policy, since).report
    # Replayed from 120 days before `since` (90-day window plus 30-day expiry): everything
    # of T0 comes from before it, and only what lasts is read from there.
    assert report["replayed_from"] == (since - timedelta(days=120)).isoformat()
    totals = totals_of(report)
    assert (totals["requested"]["history"], totals["requested"]["current"]) == (4, 4)
    assert (totals["emails"]["history"], totals["emails"]["current"]) == (1, 1)
    rows = rows_of(report)
    for rule in ("not-already-invited", "not-unsubscribed", "not-a-member"):
        assert rows[(rule, "deny")]["history"] == rows[(rule, "deny")]["current"] == 1, rule
    assert report["replay_gap"] == 0.0

    after_everything = simulate(ctx, ctx.settings.policy, later + DAY).report
    assert totals_of(after_everything)["decisions"]["current"] == 0


def test_the_other_policy_comes_through_the_services_loader(tmp_path: Any) -> None:
    tighter = tmp_path / "tighter.toml"
    tighter.write_text("[policy]\nrecipient_long_window_days = 120\n", encoding="utf-8")
    assert policy_from_file(tighter) == PolicyConfig(recipient_long_window_days=120)
    looser = tmp_path / "looser.toml"
    looser.write_text("[policy]\nsender_daily_cap = 500\nreminder_cap = 2\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as refused:
        policy_from_file(looser)
    assert "loosens the hard cap" in refused.value.message
    assert set(refused.value.details) == {"sender_daily_cap", "reminder_cap"}
