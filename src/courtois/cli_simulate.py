"""`courtois simulate [--config other.toml] [--since DATE]`: what another policy would have done.

Replays the recorded invitations and recipient events under the current policy and under
the `[policy]` of `other.toml`, and prints rule by rule how many verdicts allowed, denied
and deferred: in history, in the current-policy replay, under the new policy, and the new
policy's difference from the current replay. How far the current replay is from history
says how much to trust that difference. Without `--config` the policy tried is the current
one: the run then says only how faithfully the replay reproduces history. `--json` prints
one object.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from courtois import cli
from courtois.domain.errors import DomainError
from courtois.services.context import Context

SIDES = (("history", "history"), ("current", "current"), ("new", "new"))
LEGEND = (
    "history: what was recorded; current: replayed under the current policy; "
    "new: replayed under the new policy; Δ: new − current"
)


def parse_since(value: str | None) -> datetime | None:
    """A date (midnight UTC) or an ISO-8601 date-time (UTC when it names no zone)."""
    if value is None:
        return None
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        cli.fail(f"--since {value!r} is not an ISO-8601 date or date-time", 2)
    # The replay starts a warm-up before it: far from the calendar's ends, as --now is.
    low, high = cli.NOW_RANGE
    if not low <= instant.year <= high:
        cli.fail(f"--since {value!r} is outside the years {low} to {high}", 2)
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)


def simulate_command(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="A courtois.toml whose \\[policy] is the policy to try (keys it leaves out "
            "take their defaults; COURTOIS_POLICY_* variables are not applied to it). "
            "Without it, the current policy is replayed against history.",
            show_default=False,
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Count from this date or ISO-8601 instant (UTC)."),
    ] = None,
    as_json: cli.JsonOpt = False,
) -> None:
    """Replay the recorded history under another policy and compare, rule by rule."""
    from courtois.services.simulate import policy_from_file, simulate

    start = parse_since(since)
    try:
        new = None if config is None else policy_from_file(config)
    except DomainError as error:
        cli.fail(error.message)

    def action(ctx: Context) -> dict[str, Any]:
        done = simulate(ctx, ctx.settings.policy if new is None else new, start)
        return {**done.report, "seconds": round(done.seconds, 3)}

    report = cli.run(action)
    cli.emit(as_json, report, lambda: show(report))


def _signed(value: int) -> str:
    return f"{value:+,}" if value else "0"


def _table(title: str, *names: str) -> Table:
    """Names first (never wrapped), then a number column per side and the difference."""
    table = Table(title=title, title_justify="left")
    for name in names:
        table.add_column(name, no_wrap=True)
    for _, heading in SIDES:
        table.add_column(heading, justify="right")
    table.add_column("Δ", justify="right")
    return table


def show(report: dict[str, Any]) -> None:
    """The rule-by-rule table, the totals, and what to keep in mind reading them."""
    out = cli.out
    changes = report["policy_changes"]
    if changes:
        listed = ", ".join(f"{k} {v['current']} → {v['new']}" for k, v in changes.items())
        out.print(f"policy changes: {escape(listed)}")
    else:
        out.print("policy changes: none (the new policy is the current one)")
    rules = _table("Verdicts, rule by rule", "rule", "outcome")
    previous = None
    for row in report["rules"]:
        name = row["rule"] if row["rule"] != previous else ""
        previous = row["rule"]
        counts = [f"{row[key]:,}" for key, _ in SIDES]
        rules.add_row(name, row["outcome"], *counts, _signed(row["delta"]))
    out.print(rules)
    totals = _table("Totals", "measure")
    for row in report["totals"]:
        counts = [f"{row[key]:,}" for key, _ in SIDES]
        totals.add_row(row["measure"].replace("_", " "), *counts, _signed(row["delta"]))
    out.print(totals)
    out.print(LEGEND)
    for line in notes(report):
        out.print(line)


def notes(report: dict[str, Any]) -> list[str]:
    """The lines under the tables: what was read, and how far to trust the replay."""
    lines = [
        f"{report['events']:,} events from {report['first_event'] or '-'} "
        f"to {report['last_event'] or '-'}, read and replayed in {report['seconds']} s"
    ]
    if report["since"]:
        lines.append(
            f"counted from {report['since']}; replayed from {report['replayed_from']} "
            "to rebuild the quotas in force then"
        )
    gap = report["replay_gap"]
    if gap is None:
        lines.append("no recorded decision to compare with")
    elif gap == 0:
        lines.append("the current-policy replay matches history verdict for verdict")
    else:
        lines.append(
            f"the current-policy replay differs from history on {gap:.1%} of the verdicts: "
            "read the new policy's effect as its difference from the current replay"
        )
    skipped = report["not_replayed"]
    dropped = skipped["dropped_answers"]["new"] + skipped["dropped_complaints"]["new"]
    if dropped:
        lines.append(
            f"{dropped:,} answers or complaints concern mail the new policy never sent: "
            "not applied to its senders"
        )
    if skipped["reminder_requests"]:
        lines.append(
            f"{skipped['reminder_requests']:,} 'remind me later' requests are not replayed"
        )
    return lines
