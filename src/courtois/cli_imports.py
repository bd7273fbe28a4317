"""`courtois import FILE --member ID`: an address book into a member's contacts.

The format (vCard, CSV of the usual exports, LDIF) is detected from the first bytes unless
`--format` names it. Contacts arrive unselected and are purged a day after the import,
picked or not. Large files show a progress bar on a terminal; the end is a summary
(imported, duplicates, flagged, rejected), what the source held beyond what was read (a Sent
folder's older messages) and, for each record not imported, where it was in the file and
why. `--carddav URL` and `--imap HOST` read the member's accounts instead.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn
from rich.table import Table

from courtois import cli
from courtois.services.context import Context

PROGRESS_FROM_BYTES = 1 << 20
SHOWN_PER_KIND = 20

FormatOpt = Annotated[
    str | None,
    typer.Option("--format", help="vcard, csv or ldif (default: detected from the file)."),
]


def import_command(
    path: Annotated[
        Path | None,
        typer.Argument(metavar="[FILE]", help="The address-book export.", show_default=False),
    ] = None,
    member: Annotated[str, typer.Option("--member", help="The member importing it.")] = "",
    file_format: FormatOpt = None,
    carddav: Annotated[
        str | None, typer.Option("--carddav", metavar="URL", help="Read a CardDAV account.")
    ] = None,
    imap: Annotated[
        str | None,
        typer.Option("--imap", metavar="HOST[:PORT]", help="Read the Sent folder's To and Cc."),
    ] = None,
    user: Annotated[str, typer.Option("--user", help="Account name for --carddav/--imap.")] = "",
    security: Annotated[
        str, typer.Option("--security", help="IMAP: tls (default), starttls or none.")
    ] = "tls",
    folder: Annotated[
        str | None, typer.Option("--folder", help="IMAP: the Sent folder, if not found.")
    ] = None,
    consent_sent: Annotated[
        bool,
        typer.Option(
            "--consent-sent-headers",
            help="The member agrees that the To and Cc headers of their sent mail be read.",
        ),
    ] = False,
    now: cli.NowOpt = None,
    as_json: cli.JsonOpt = False,
) -> None:
    """Import an address book (vCard, CSV, LDIF file, CardDAV, IMAP Sent), unselected.

    Passwords for --carddav and --imap come from COURTOIS_IMPORT_PASSWORD, or are asked
    for on a terminal; never on the command line, where other users could read them.
    """
    instant = cli.parse_now(now)
    if not member:
        cli.fail("--member is required", 2)
    sources = [s for s in (path, carddav, imap) if s is not None]
    if len(sources) != 1:
        cli.fail("name exactly one source: FILE, --carddav URL or --imap HOST", 2)
    if path is not None:
        data = _from_file(path, member, file_format, instant, as_json)
    else:
        data = _from_account(member, carddav, imap, user, security, folder, consent_sent, instant)
    cli.emit(as_json, data, lambda: show(data))


def _from_file(
    path: Path, member: str, file_format: str | None, instant: datetime, as_json: bool
) -> dict[str, Any]:
    from courtois.importers import FORMATS
    from courtois.services.imports import import_file

    if file_format is not None and file_format not in FORMATS:
        cli.fail(f"--format must be one of {', '.join(FORMATS)}, not {file_format!r}", 2)
    if path.is_dir():
        cli.fail(f"{path} is a folder; name the address-book file", 2)
    if not path.is_file():
        cli.fail(f"{path}: no such file", 2)
    size = path.stat().st_size
    show_bar = not as_json and sys.stderr.isatty() and size >= PROGRESS_FROM_BYTES

    def action(ctx: Context) -> dict[str, Any]:
        with path.open("rb") as stream:
            if not show_bar:
                report = import_file(
                    ctx, member, stream, instant, size=size, file_format=file_format
                )
                return report.as_dict()
            columns = (*Progress.get_default_columns()[:1], BarColumn(), DownloadColumn())
            with Progress(*columns, TimeRemainingColumn(), console=Console(stderr=True)) as bar:
                task = bar.add_task("reading", total=size)
                report = import_file(
                    ctx,
                    member,
                    stream,
                    instant,
                    size=size,
                    file_format=file_format,
                    progress=lambda done: bar.update(task, completed=done),
                )
            return report.as_dict()

    try:
        return cli.run(action)
    except OSError as error:
        cli.fail(f"cannot read {path}: {error.strerror or error}")


def _from_account(
    member: str,
    carddav: str | None,
    imap: str | None,
    user: str,
    security: str,
    folder: str | None,
    consent_sent: bool,
    instant: datetime,
) -> dict[str, Any]:
    from courtois.services.imports import ImapServer, import_carddav, import_sent_folder

    if not user:
        cli.fail("--user is required with --carddav and --imap", 2)
    if imap is not None and not consent_sent:
        cli.fail(
            "reading a Sent folder needs the member's consent: add --consent-sent-headers "
            "once they agreed that the To and Cc of their sent mail be read",
            2,
        )
    server: ImapServer | None = None
    if imap is not None:
        if security not in ("tls", "starttls", "none"):
            cli.fail(f"--security must be tls, starttls or none, not {security!r}", 2)
        host, _, port_text = imap.rpartition(":") if ":" in imap else (imap, "", "")
        default_port = 993 if security == "tls" else 143
        if port_text and not port_text.isdigit():
            cli.fail(f"--imap {imap!r}: the port must be a number", 2)
        port = int(port_text) if port_text else default_port
        server = ImapServer(host, port, security, folder)  # type: ignore[arg-type]
    password = _password()

    def action(ctx: Context) -> dict[str, Any]:
        if server is not None:
            return import_sent_folder(
                ctx, member, server, user, password, instant, consent=consent_sent
            ).as_dict()
        assert carddav is not None
        return import_carddav(ctx, member, carddav, user, password, instant).as_dict()

    return cli.run(action)


def _password() -> str:
    """From COURTOIS_IMPORT_PASSWORD, else asked on a terminal, else refused."""
    given = os.environ.get("COURTOIS_IMPORT_PASSWORD")
    if given is not None:
        return given
    if not sys.stdin.isatty():
        cli.fail("set COURTOIS_IMPORT_PASSWORD (or run on a terminal to be asked)", 2)
    answer: str = typer.prompt("Password", hide_input=True)
    return answer


def show(data: dict[str, Any]) -> None:
    """The counts, then the records that were not imported, each with where and why."""
    summary = Table(title="Import", show_header=False)
    for label in ("records", "imported", "duplicates", "flagged", "rejected"):
        summary.add_row(label, str(data[label]))
    cli.out.print(summary)
    for cut in data.get("not_read", []):
        cli.out.print(escape(f"{cut['reason'][:1].upper()}{cut['reason'][1:]}."))
    for kind in ("rejected", "flagged", "duplicate"):
        entries = data[f"{kind}_records"]
        if not entries:
            continue
        table = Table(title=f"{kind} ({len(entries)})")
        table.add_column("where")
        table.add_column("why")
        for entry in entries[:SHOWN_PER_KIND]:
            table.add_row(escape(entry["where"]), escape(entry["reason"]))
        cli.out.print(table)
        if len(entries) > SHOWN_PER_KIND:
            cli.out.print(f"... and {len(entries) - SHOWN_PER_KIND} more (--json lists them all)")
