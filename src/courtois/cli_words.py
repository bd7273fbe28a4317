"""`courtois check-words [--json]`: which emails waiting to leave this release and this
configuration would hold, because their words would differ from what their member
consented to.

Run it from the new release's installation (or with the new configuration file in
COURTOIS_CONFIG) against the live database before switching: it renders and compares,
and changes nothing. Counts by kind and language; with `--json`, also the ids of the
members concerned, whom the platform may tell. No address is read or printed.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table

from courtois import cli
from courtois.services.context import Context


def check_words_command(as_json: cli.JsonOpt = False) -> None:
    """Say which waiting emails these words would hold (read-only)."""
    from courtois.services.words_check import check_words

    def action(ctx: Context) -> dict[str, Any]:
        found = check_words(ctx)
        return {
            "waiting": found.waiting,
            "held": found.held,
            "groups": [
                {"kind": g.kind, "locale": g.locale, "waiting": g.waiting, "held": g.held}
                for g in found.groups
            ],
            "members": list(found.members),
        }

    report = cli.run(action)
    cli.emit(as_json, report, lambda: show(report))


def show(report: dict[str, Any]) -> None:
    """The verdict in a sentence, then a table by kind and language."""
    held, waiting = report["held"], report["waiting"]
    if not held:
        cli.out.print(
            f"None of the {waiting} emails waiting to leave would be held: "
            "their words are what their members consented to.",
            soft_wrap=True,
        )
    else:
        cli.out.print(
            f"{held} of the {waiting} emails waiting to leave would be held, their words "
            f"differing from what their members consented to ({len(report['members'])} "
            "members; --json lists them).",
            soft_wrap=True,
        )
    if not report["groups"]:
        return
    table = Table()
    for column in ("kind", "language", "waiting", "would be held"):
        table.add_column(column)
    for group in report["groups"]:
        table.add_row(group["kind"], group["locale"], str(group["waiting"]), str(group["held"]))
    cli.out.print(table)
