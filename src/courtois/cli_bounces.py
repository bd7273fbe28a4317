"""`courtois bounces`: read bounce and complaint messages and apply them.

`courtois bounces ingest PATH...` reads each message of each PATH (a message file, an
mbox file or a Maildir folder), classifies it, applies it (a hard bounce or a complaint
suppresses the recipient, a complaint also counts against the member who invited them)
and reports one line per message; with `--json`, one JSON object per line:
`{"source", "kind", "recipients": [{"address", "status", "hard"}]}`.

A mail whose subject is "unsubscribe TOKEN" (the `mailto:` of an email's List-Unsubscribe,
sent to `mail_from` by a recipient's mail client) is honoured as the one-click link is:
with `--json` it keeps the contract's kind, `not_a_bounce` (a consumer written against the
kinds above meets no other), with no recipients and `"unsubscribe_request"`:
`unsubscribed`, `already_unsubscribed` or `unknown_token` (forged, unknown or expired:
nothing changed). Neither the token nor the sender's address is printed.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.markup import escape

from courtois.delivery.bounces import BounceReport, classify, iter_messages
from courtois.services.context import Context

bounces_app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Bounce (DSN) and complaint (ARF) messages."
)

# `courtois.cli` is imported as a module, and only once `bounces_app` exists: whichever of
# the two modules is imported first, and wherever `courtois.cli` imports this one to add
# `bounces_app`, each finds what it needs (the names of `cli` are looked up when used).
from courtois import cli  # noqa: E402


@bounces_app.callback()
def bounces() -> None:
    """Bounce (DSN) and complaint (ARF) messages."""
    # A callback keeps `ingest` a subcommand even while it is the only one, run alone or
    # added to the main `courtois` command.


PathsArg = Annotated[
    list[Path],
    typer.Argument(
        metavar="PATH...", help="Message files, mbox files or Maildir folders.", show_default=False
    ),
]


def check_paths(paths: list[Path]) -> None:
    """Refuse the whole run, before anything is applied, if a path or a message in a
    Maildir cannot be read: applied one by one, the messages before it would otherwise
    have changed the database of a run that fails. (A file taken away between this check
    and its reading still fails the run after the messages before it.)"""
    for path in paths:
        if path.is_dir():
            if not (path / "cur").is_dir() and not (path / "new").is_dir():
                cli.fail(f"{path}: a folder must be a Maildir (with cur/ and new/)", 2)
            for folder in (path / "new", path / "cur"):
                # The files Python's Maildir reads: every entry but a folder.
                try:
                    names = [] if not folder.is_dir() else list(folder.iterdir())
                except OSError as error:
                    _unreadable(folder, error)
                for name in names:
                    if not name.is_dir():
                        _check_readable(name)
        elif not path.is_file():
            cli.fail(f"{path}: no such file or folder", 2)
        else:
            _check_readable(path)


def _check_readable(path: Path) -> None:
    """A regular file this process may open; not opened if it is anything else (a FIFO
    would block the open)."""
    import stat

    try:
        if not stat.S_ISREG(path.stat().st_mode):
            cli.fail(f"{path}: not a regular file", 2)
        with path.open("rb"):
            pass
    except OSError as error:
        _unreadable(path, error)


def _unreadable(path: Path, error: OSError) -> NoReturn:
    cli.fail(f"{path}: cannot be read: {error.strerror or type(error).__name__}", 2)


@bounces_app.command("ingest")
def ingest(paths: PathsArg, now: cli.NowOpt = None, as_json: cli.JsonOpt = False) -> None:
    """Classify and apply every message found at PATH (files, mbox files, Maildirs):
    bounces, complaints, and the "unsubscribe TOKEN" mails of List-Unsubscribe.

    With --json, one JSON object per message, one per line (JSON Lines), as each is
    applied: a Maildir of a million reports is never held in memory to print one array."""
    from courtois.services.bounces import apply_bounce

    instant = cli.parse_now(now)
    check_paths(paths)

    def action(ctx: Context) -> dict[str, int]:
        totals: dict[str, int] = {}
        for path in paths:
            for source, raw in iter_messages(path):
                report = classify(raw, source)
                applied = apply_bounce(ctx, report, instant)
                totals[report.kind] = totals.get(report.kind, 0) + 1
                cli.emit(as_json, as_dict(report, applied), partial(show, report, applied))
        return totals

    try:
        # A failed output (`| head`, a full disk) is told by `cli.emit`, never as a read.
        totals = cli.run(action)
    except OSError as error:
        cli.fail(f"cannot read {error.filename or 'the input'}: {error.strerror or error}")
    try:
        if not as_json:
            summary = ", ".join(f"{count} {kind}" for kind, count in sorted(totals.items()))
            cli.out.print(f"{sum(totals.values())} messages: {summary or 'none'}")
        sys.stdout.flush()
    except OSError as error:
        cli.output_failed(error)


# What an unsubscribe request did, by the key `apply_bounce` counts it under.
REQUEST_OUTCOMES = {
    "unsubscribed": "unsubscribed from every member",
    "already_unsubscribed": "already unsubscribed: nothing changed",
    "unknown_token": "unknown, forged or expired token: nothing changed",
}


def request_outcome(applied: Mapping[str, Any]) -> str:
    """Which of REQUEST_OUTCOMES applying an unsubscribe request had."""
    return next(key for key in REQUEST_OUTCOMES if applied.get(key, 0))


def as_dict(report: BounceReport, applied: Mapping[str, Any]) -> dict[str, object]:
    """One message as `--json` prints it: the report, and for an unsubscribe request
    (which names nobody, and is no bounce: the contract's kinds stay the only ones) what
    it did."""
    shown = report.as_dict()
    if report.kind == "unsubscribe":
        shown["kind"] = "not_a_bounce"
        shown["unsubscribe_request"] = request_outcome(applied)
    return shown


def show(report: BounceReport, applied: Mapping[str, Any]) -> None:
    """One message, human-readable: its kind, each recipient it names with what the report
    says of them, then what was done: a report about mail we never sent, or about someone
    else's, changes nothing, and is not said to have suppressed anyone."""
    feedback = f" ({escape(report.feedback)} report)" if report.feedback else ""
    cli.out.print(f"{escape(report.source)}: [bold]{report.kind}[/bold]{feedback}")
    for recipient in report.recipients:
        if report.kind == "complaint":
            verdict = "reported spam"
        elif report.feedback:
            verdict = "no complaint"
        else:
            verdict = "dead address" if recipient.hard else "kept"
        status = recipient.status or "no status"
        cli.out.print(f"  {escape(recipient.address)}  {status}  {verdict}")
    if report.kind in ("hard_bounce", "complaint"):
        cli.out.print(f"  -> {outcome(applied)}")
    elif report.kind == "unsubscribe":
        cli.out.print(f"  -> {REQUEST_OUTCOMES[request_outcome(applied)]}")


def outcome(applied: Mapping[str, Any]) -> str:
    """What applying one report changed, in words, from its counts."""
    parts = [
        f"{applied.get(key, 0)} {words}"
        for key, words in (
            ("suppressed", "suppressed"),
            ("already_suppressed", "already suppressed"),
            ("not_mailed", "never mailed by us: nothing changed"),
            ("not_ours", "about someone else's mail: nothing changed"),
            ("invalid", "not an address"),
        )
        if applied.get(key, 0)
    ]
    return "; ".join(parts) or "nothing changed"


@bounces_app.command("listen")
def listen(
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 2526,
) -> None:
    """Receive bounces and complaints over SMTP (the bounce address's MX) until stopped."""
    import signal
    import time

    from courtois.delivery.bounce_listener import bounce_listener

    def action(ctx: Context) -> None:
        stopping: list[int] = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda number, _frame: stopping.append(number))
        # One line when the address is taken or not this machine's, as `serve` says it.
        cli.check_port_free(host, port)
        controller = bounce_listener(ctx, host, port)
        try:
            controller.start()
        except OSError as error:  # taken between the check and the start
            cli.fail(f"cannot listen on {host}:{port}: {error.strerror or type(error).__name__}")
        sys.stderr.write(f"courtois: receiving bounces on {host}:{port}\n")
        try:
            while not stopping:
                time.sleep(0.2)
        finally:
            controller.stop()

    cli.run(action)
