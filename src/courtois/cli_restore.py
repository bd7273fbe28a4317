"""`courtois audit reapply-stops --file ledger.jsonl`: after restoring a backup, make every
stop recorded since the backup hold again.

The file is an `audit export` taken before the restore. Its chain is checked first (a file
changed, cut inside or empty is refused, and nothing is applied), then matched against this
database's ledger (the file must be its history). The consents, invitations and emails
made past their common part that the database lacks are written again, without an address
(`rebuild_rows`), then every stop past it is applied by digest or id through the services
that made it: opt-outs from everyone or from one member, "forget me", suppressions after a
hard bounce or a complaint, joins, answers, withdrawals, revocations, deleted address
books, erased members; and each email the file shows handed to the mail server, still
waiting here, is marked `unknown`, never resent.
What the database already reflects is skipped, so a second run changes nothing. Prints how
many rows were rebuilt and, per kind, how many stops were applied and skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from courtois import cli
from courtois.services.context import Context


def reapply_stops_command(
    export_file: Annotated[
        Path,
        typer.Option("--file", help="An `audit export` taken before the restore."),
    ],
    now: cli.NowOpt = None,
    as_json: cli.JsonOpt = False,
) -> None:
    """Re-apply, by digest and id, every stop an export holds that this database lacks."""
    from courtois.services.ledger_stops import read_stops
    from courtois.services.reapply_stops import reapply_stops
    from courtois.services.rebuild_rows import rebuild_rows

    moment = cli.parse_now(now)

    def action(ctx: Context) -> dict[str, Any]:
        try:
            with export_file.open(encoding="utf-8") as handle:
                found = read_stops(ctx.engine, handle)
        except (OSError, UnicodeDecodeError) as error:
            cli.fail(f"cannot read {export_file}: {type(error).__name__}")
        # The rows first, so the stops (an acceptance, a withdrawal) land on them.
        rebuilt = rebuild_rows(ctx, found.rows, moment)
        counts = reapply_stops(ctx, found.stops, moment)
        return {
            "entries": found.entries,
            "shared": found.shared,
            "rebuilt": rebuilt,
            "stops": counts,
        }

    report = cli.run(action)
    cli.emit(as_json, report, lambda: _show(report))


def _show(report: dict[str, Any]) -> None:
    """One line per kind that the file holds, for people."""
    facts: dict[str, Any] = {
        "entries in the file": report["entries"],
        "of which already in this database": report["shared"],
    }
    rebuilt = report["rebuilt"]
    facts["rebuilt"] = (
        f"invitations {rebuilt['invitations']}, messages {rebuilt['messages']}, "
        f"consents {rebuilt['consents']}"
    )
    if rebuilt["member_unknown"]:
        facts["not rebuilt, member unknown"] = rebuilt["member_unknown"]
    for kind, counts in report["stops"].items():
        if counts["applied"] or counts["skipped"]:
            facts[kind] = f"{counts['applied']} applied, {counts['skipped']} already held"
    cli.show_facts("stops re-applied", facts)
