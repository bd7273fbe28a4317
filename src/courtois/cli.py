"""The `courtois` command: every use case from the shell, `--json` for scripts.

Exit code 0 on success; otherwise non-zero with a one-line reason on stderr.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from courtois.bootstrap import bootstrap, make_transport
from courtois.config import Settings, no_postal_address_warning, plain_http_warning
from courtois.delivery.transport import Transport
from courtois.domain.errors import DomainError, InvalidInput
from courtois.domain.ledger import ChainReport
from courtois.policy.verdict import Decision
from courtois.services.context import Context
from courtois.services.worker_due import Shard

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
member_app = typer.Typer(no_args_is_help=True, help="Members of the platform.")
audit_app = typer.Typer(no_args_is_help=True, help="The hash-chained audit ledger.")
policy_app = typer.Typer(no_args_is_help=True, help="The sending policy.")
app.add_typer(member_app, name="member")
app.add_typer(audit_app, name="audit")
app.add_typer(policy_app, name="policy")

# The database is out of reach or out of room: try again later (sysexits' EX_TEMPFAIL).
FAULT_EXIT = 75
# The longest wait between two worker passes while the database is out of reach.
WORKER_BACKOFF_LONGEST = 10.0
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
T = TypeVar("T")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
NowOpt = Annotated[
    str | None, typer.Option("--now", help="Act as of this ISO-8601 instant (default: now).")
]


def fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr, non-zero exit; control characters quoted from the input are
    escaped so the reason stays on its line."""
    line = _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", message)
    sys.stderr.write(f"courtois: {line}\n")
    raise typer.Exit(code)


def output_failed(error: OSError) -> NoReturn:
    """Standard output cannot be written (a reader gone, a full disk): one line saying so,
    not the reading error or traceback it would otherwise show."""
    fail(_output_failure(error))


def _output_failure(error: OSError) -> str:
    """The line for a failed standard output; stdout is then pointed at /dev/null, so the
    interpreter's last flush at exit finds nowhere to fail again and prints nothing more."""
    import os
    from contextlib import suppress

    # Not a real file (under a test runner), or no /dev/null: nothing more to do.
    with suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return f"cannot write the output: {error.strerror or type(error).__name__}"


class _Out(Console):
    """Rich's console, whose closed pipe is told as every other failed output is (Rich
    itself exits 1 without a word)."""

    def on_broken_pipe(self) -> None:
        import errno
        import os

        self.quiet = True
        output_failed(BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE)))


out: Console = _Out()


NOW_RANGE = (1970, 9000)


def parse_now(value: str | None) -> datetime:
    """An aware instant; a bare date-time is taken as UTC."""
    if value is None:
        return datetime.now(UTC)
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        fail(f"--now {value!r} is not an ISO-8601 date-time", 2)
    instant = instant if instant.tzinfo else instant.replace(tzinfo=UTC)
    # Every pass reaches years back (purges) and ahead (expiries): far from the calendar's
    # ends, or the arithmetic overflows halfway through a pass.
    if not NOW_RANGE[0] <= instant.year <= NOW_RANGE[1]:
        fail(f"--now {value!r} is outside the years {NOW_RANGE[0]} to {NOW_RANGE[1]}", 2)
    return instant


def run(action: Callable[[Context], T], schema: bool = True) -> T:
    """Build the context, check the schema is this code's (unless `schema` is False, for
    `migrate`), run, and turn domain errors and database errors into a one-line failure:
    a database out of reach or out of room exits FAULT_EXIT; any other names what is
    wrong or the error's type, never the driver's message (it quotes parameters)."""
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    from courtois.store.faults import database_fault, database_problem
    from courtois.store.migrate import check_schema

    try:
        # Only `migrate` (the one run without the schema check) may make a SQLite file.
        ctx = bootstrap(create_database=not schema)
    except DomainError as error:
        fail(error.message)
    try:
        if schema:
            check_schema(ctx.engine)
        return action(ctx)
    except DomainError as error:
        details = "; ".join(f"{k}: {v}" for k, v in error.details.items())
        fail(f"{error.message}{' (' + details + ')' if details else ''}")
    except DBAPIError as error:
        fault = database_fault(error)
        if fault is None:
            fail(database_problem(error))
        fail(f"{fault.value}: {fault.sentence}", FAULT_EXIT)
    except SQLAlchemyError as error:
        fail(f"database error ({type(error).__name__})")
    finally:
        ctx.engine.dispose()


def emit(as_json: bool, data: Any, human: Callable[[], None]) -> None:
    """JSON for scripts, or a human rendering; an output that cannot be written is one
    line saying so."""
    try:
        if as_json:
            sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
        else:
            human()
    except OSError as error:
        output_failed(error)


def show_facts(title: str | None, data: dict[str, Any]) -> None:
    """A report as one `name: value` line each, for people (scripts take `--json`): a
    Python dict's quotes, `True` and `None` and a hash wrapped onto its own line are not
    something to read."""
    if title:
        out.print(escape(title), soft_wrap=True)
    for key, value in data.items():
        out.print(f"  {escape(key.replace('_', ' '))}: {escape(_plain(value))}", soft_wrap=True)


def _plain(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_plain(v)}" for k, v in value.items()) or "none"
    if isinstance(value, list | tuple):
        return ", ".join(_plain(v) for v in value) or "none"
    return str(value)


def show_decision(title: str, decision: dict[str, Any]) -> None:
    """The title on a line of its own (a table's title is wrapped to the table's width,
    which cut an address and an id apart), then a table of every verdict."""
    out.print(title, soft_wrap=True)
    table = Table()
    for column in ("rule", "outcome", "reason"):
        table.add_column(column)
    for verdict in decision["verdicts"]:
        table.add_row(verdict["rule"], verdict["outcome"], verdict["reason"])
    out.print(table)


@app.command()
def migrate(as_json: JsonOpt = False) -> None:
    """Create or upgrade the database schema."""
    from courtois.store.migrate import current_revision
    from courtois.store.migrate import migrate as do_migrate

    def action(ctx: Context) -> str | None:
        do_migrate(ctx.engine)
        return current_revision(ctx.engine)

    revision = run(action, schema=False)
    emit(as_json, {"revision": revision}, lambda: out.print(f"database at revision {revision}"))


@member_app.command("add")
def member_add(
    member_id: Annotated[str, typer.Argument(metavar="ID")],
    email: Annotated[str, typer.Option("--email")],
    name: Annotated[str, typer.Option("--name")],
    locale: Annotated[str, typer.Option("--locale")] = "en",
    reply_to: Annotated[
        bool, typer.Option("--reply-to", help="Replies to their invitations reach the member.")
    ] = False,
    now: NowOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create or update a member."""
    from courtois.services.members import register_member

    member = run(
        lambda ctx: register_member(
            ctx, member_id, email, name, locale, parse_now(now), reply_to=reply_to
        )
    )
    data = {"id": member.id, "name": member.name, "locale": member.locale}
    emit(as_json, data, lambda: out.print(f"member {member.id} saved"))


@member_app.command("stop")
def member_stop(
    member_id: Annotated[str, typer.Argument(metavar="ID")],
    now: NowOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Stop everything the member asked for, in one transaction: every consent still
    active is revoked (invitations not sent yet withdrawn, reminders cancelled). Repeating
    it is harmless."""
    from courtois.services.lifecycle import stop_everything

    stopped = run(lambda ctx: stop_everything(ctx, member_id, parse_now(now)))
    data = {"member_id": member_id, **stopped}
    emit(as_json, data, lambda: show_facts(f"member {member_id}: everything stopped", stopped))


@member_app.command("delete")
def member_delete(
    member_id: Annotated[str, typer.Argument(metavar="ID")],
    now: NowOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Erase a member: nothing of theirs is sent any more, and nothing naming them is kept
    but their id; the id cannot be registered again. Repeating it is harmless."""
    from courtois.services.member_erasure import erase_member

    erased = run(lambda ctx: erase_member(ctx, member_id, parse_now(now)))
    data = erased.as_dict()
    facts = {key: value for key, value in data.items() if key != "id"}
    emit(as_json, data, lambda: show_facts(f"member {erased.id} erased", facts))


@app.command()
def invite(
    member: Annotated[str, typer.Option("--member")],
    email: Annotated[list[str], typer.Option("--email", help="Repeat for several recipients.")],
    reminders: Annotated[int, typer.Option("--reminders", min=0, max=1)] = 0,
    note: Annotated[str, typer.Option("--note")] = "",
    locale: Annotated[str | None, typer.Option("--locale")] = None,
    now: NowOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Invite: the consent is the one given on this command line, to the previewed message."""
    from courtois.services.invitations import ConsentInput, InviteRequest, recipient_count
    from courtois.services.invitations import invite as do_invite
    from courtois.services.previews import preview_invitations

    instant = parse_now(now)

    def action(ctx: Context) -> dict[str, Any]:
        try:
            count = recipient_count(tuple(email))
        except InvalidInput as error:
            # As the command line names them: --email #1 is the first given.
            raise InvalidInput(error.message, _by_option(error.details)) from None
        preview = preview_invitations(ctx, member, count, note, locale, reminders)
        request = InviteRequest(
            member_id=member,
            emails=tuple(email),
            note=note,
            locale=locale,
            reminders=reminders,
            preview_hash=preview.preview_hash,
            consent=ConsentInput(preview.consent_text, "cli", "courtois-cli"),
        )
        answer = do_invite(ctx, request, instant)
        # Said once the consent is taken, so that a refusal stays one line on stderr.
        warn_no_postal_address(ctx.settings)
        return answer

    answer = run(action)

    def human() -> None:
        out.print(f"consent {answer['consent_id']}")
        for item in answer["invitations"]:
            show_decision(
                escape(f"{item['email']} ({item['id']}): {item['status']}"), item["decision"]
            )

    emit(as_json, answer, shares_after(human, answer["invitations"]))


_POSITION = re.compile(r"emails\[(\d+)\]")


def _by_option(details: dict[str, str]) -> dict[str, str]:
    """`emails[0]` (the service's and API's name for a bad address) as `--email #1`."""
    named = {}
    for key, reason in details.items():
        found = _POSITION.fullmatch(key)
        named[f"--email #{int(found.group(1)) + 1}" if found else key] = reason
    return named


def shares_after(show: Callable[[], None], invitations: list[dict[str, Any]]) -> Callable[[], None]:
    """`show`, then each invitation the member sends from their own mailbox (strict-eu): to
    whom, its personal link, and the subject and text to send, which the member cannot do
    without."""

    def say(text: str) -> None:
        # As given (a member's note may hold brackets or colons): no markup, no wrapping.
        out.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True)

    def both() -> None:
        show()
        for item in invitations:
            if item.get("share_link"):
                say(f"\nsend it yourself, from your own mailbox, to {item['email']}:")
                say(f"personal link: {item['share_link']}")
                say(f"subject: {item['share_subject']}")
                say(f"text to send:\n{item['share_text']}")

    return both


@app.command()
def withdraw(
    invitation_id: Annotated[str, typer.Argument(metavar="INVITATION_ID")],
    now: NowOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Withdraw an invitation that has not been answered."""
    from courtois.services.lifecycle import withdraw as do_withdraw

    state = run(lambda ctx: do_withdraw(ctx, invitation_id, parse_now(now)))
    emit(
        as_json,
        {"id": invitation_id, "status": state},
        lambda: out.print(f"{invitation_id}: {state}"),
    )


@app.command()
def revoke(
    consent_id: Annotated[str, typer.Argument(metavar="CONSENT_ID")],
    now: NowOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Revoke a consent: nothing unsent under it leaves."""
    from courtois.services.lifecycle import revoke_consent

    counts = run(lambda ctx: revoke_consent(ctx, consent_id, parse_now(now)))
    emit(
        as_json,
        {"id": consent_id, **counts},
        lambda: show_facts(f"consent {consent_id} revoked", counts),
    )


def _recipient(ctx: Context, email: str) -> str:
    """The digest of the address a recipient's own request names, taken whatever the
    length of its local part: it may have been taken in before that limit was enforced."""
    return ctx.digest_email(email, any_local_length=True)


@app.command()
def unsubscribe(
    email: Annotated[str, typer.Option("--email")],
    from_member: Annotated[str | None, typer.Option("--from-member")] = None,
    now: NowOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Stop all mail to an address, or all mail from one member to it."""
    from courtois.services.recipients import unsubscribe as do_unsubscribe

    counts = run(
        lambda ctx: do_unsubscribe(ctx, _recipient(ctx, email), parse_now(now), from_member)
    )
    emit(as_json, counts, lambda: show_facts("unsubscribed", counts))


@app.command()
def joined(
    email: Annotated[str, typer.Option("--email")], now: NowOpt = None, as_json: JsonOpt = False
) -> None:
    """Record that this address is now a member; its pending mail stops."""
    from courtois.services.recipients import mark_joined

    counts = run(lambda ctx: mark_joined(ctx, _recipient(ctx, email), parse_now(now)))
    emit(as_json, counts, lambda: show_facts("joined", counts))


@app.command()
def forget(
    email: Annotated[str, typer.Option("--email")], now: NowOpt = None, as_json: JsonOpt = False
) -> None:
    """Forget an address: only its digest stays, opted out for good."""
    from courtois.services.recipients import forget_recipient

    counts = run(lambda ctx: forget_recipient(ctx, _recipient(ctx, email), parse_now(now)))
    emit(as_json, counts, lambda: show_facts("forgotten", counts))


@app.command()
def worker(
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
    now: NowOpt = None,
    interval: Annotated[float, typer.Option("--interval", min=0.05)] = 5.0,
    processes: Annotated[
        int,
        typer.Option(
            "--processes", min=1, max=64, help="Worker processes, each on its share of recipients."
        ),
    ] = 1,
    as_json: JsonOpt = False,
) -> None:
    """Run due work: expiries, purges, policy re-checks, sends (over COURTOIS_SMTP_URL;
    without it, allowed mail is left waiting)."""
    import math
    from functools import partial

    from courtois.services.worker import run_pass
    from courtois.worker_processes import one_pass_in_processes, serve_in_processes

    # `inf` would wait forever after the first pass (`nan` is refused as out of range).
    if not math.isfinite(interval):
        fail(f"--interval must be a finite number of seconds, not {interval}", 2)
    if once:
        moment = parse_now(now)
        if processes == 1:
            report = run(lambda ctx: run_pass(ctx, moment, _starting_worker(ctx)))
            counts = report.as_dict()
        else:

            def in_processes(ctx: Context) -> dict[str, Any]:
                _starting_worker(ctx)  # bad settings fail here, in one line
                # A child's database error comes back here, to be told in one line too.
                return one_pass_in_processes(processes, moment)

            counts = run(in_processes)
        emit(as_json, counts, lambda: show_facts(f"pass as of {moment.isoformat()}", counts))
        return
    if now is not None:
        fail("--now only makes sense with --once", 2)
    if processes == 1:
        run(lambda ctx: _serve_worker(ctx, interval, as_json))
        return
    run(_starting_worker)
    code = serve_in_processes(processes, partial(_serve_shard, interval=interval, as_json=as_json))
    if code:
        fail(f"a worker process ended with status {code}", code)


def _starting_worker(ctx: Context) -> Transport | None:
    """The worker's transport, made once its settings are checked (a mistake fails here,
    in one line), then the warning about base_url if there is one: said by the process
    `courtois worker` started, never by each of its processes."""
    transport = make_transport(ctx.settings)
    warn_plain_http(ctx.settings)
    return transport


def warn_plain_http(settings: Settings) -> None:
    """One line on stderr when the emails' one-click unsubscribe will not be honoured
    (`plain_http_warning`); the command goes on, as tests and local setups run on http."""
    _warn(plain_http_warning(settings))


def warn_no_postal_address(settings: Settings) -> None:
    """One line on stderr when previews are taken without the postal address a sending
    worker will add (`no_postal_address_warning`); the command goes on."""
    _warn(no_postal_address_warning(settings))


def _warn(warning: str | None) -> None:
    if warning is not None:
        sys.stderr.write(f"courtois: warning: {warning}\n")
        sys.stderr.flush()


def _serve_shard(shard: Shard, interval: float, as_json: bool) -> None:
    """One process of `worker --processes N`: its share of the recipients, pass after pass."""
    run(lambda ctx: _serve_worker(ctx, interval, as_json, shard))


def _serve_worker(ctx: Context, interval: float, as_json: bool, shard: Shard | None = None) -> None:
    """Pass after pass until SIGTERM or SIGINT; a pass in progress finishes first."""
    import signal
    import time

    from sqlalchemy.exc import DBAPIError

    from courtois.long_lived import freeze_start_up
    from courtois.services.worker import run_pass
    from courtois.store.faults import database_fault

    stopping: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda number, _frame: stopping.append(number))
    # A shard's parent has already checked and warned.
    transport = make_transport(ctx.settings) if shard is not None else _starting_worker(ctx)
    freeze_start_up()
    faults = 0
    while not stopping:
        try:
            report = run_pass(ctx, datetime.now(UTC), transport, shard=shard)
        except DBAPIError as error:
            # A database outage is waited out, not a reason to exit: messages claimed
            # before it stay `sending` and their lease turns them `unknown`, never resent.
            fault = database_fault(error)
            if fault is None:
                raise
            faults += 1
            pause = min(interval * 2 ** min(faults, 16), max(interval, WORKER_BACKOFF_LONGEST))
            sys.stderr.write(
                f"courtois: worker pass failed: {fault.value} ({type(error.orig).__name__});"
                f" next try in {pause:.1f} s\n"
            )
            sys.stderr.flush()
        else:
            if faults:
                sys.stderr.write("courtois: worker resumed: the database answers again\n")
                sys.stderr.flush()
            faults, pause = 0, interval
            trouble = report.webhook_trouble()
            if trouble is not None:
                sys.stderr.write(f"courtois: {trouble}\n")
                sys.stderr.flush()
            webhooks = report.webhooks["delivered"] or report.webhooks["failed"]
            if report.sent or report.failed or report.unknown or report.retried or webhooks:
                counts = report.as_dict()
                emit(as_json, counts, lambda: show_facts("pass", counts))  # noqa: B023 - used at once
        deadline = time.monotonic() + pause
        while not stopping and time.monotonic() < deadline:
            time.sleep(min(0.05, pause))


@audit_app.command("verify")
def audit_verify(
    export_file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            help="Check an `audit export` file instead of the database (no configuration "
            "needed); a file with no entry is refused: it proves nothing.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Recompute the ledger's hash chain; name the first broken entry and print the last
    hash, which a third party compares with the last hash of an export."""
    from courtois.services.audit import verify_export, verify_ledger

    if export_file is None:
        report = run(lambda ctx: verify_ledger(ctx.engine))
    else:
        try:
            with export_file.open(encoding="utf-8") as handle:
                report = verify_export(handle)
        except (OSError, UnicodeDecodeError) as error:
            fail(f"cannot read {export_file}: {type(error).__name__}")
    data = {
        "ok": report.ok,
        "entries": report.entries,
        "first_broken_seq": report.first_broken_seq,
        "problem": report.problem,
        "last_hash": report.last_hash if report.ok else None,
    }
    emit(as_json, data, lambda: show_facts(_verdict(report), data))
    if not report.ok:
        fail(report.refusal)


def _verdict(report: ChainReport) -> str:
    """The title of a report for people: intact, broken, or (an empty file) unverified."""
    if report.ok:
        return "ledger intact"
    return "ledger BROKEN" if report.first_broken_seq is not None else "ledger NOT VERIFIED"


@audit_app.command("export")
def audit_export(
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write this file whole (or not at all); an existing one must be a regular "
            "file: a link, a FIFO or a device is refused.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the ledger as JSON Lines (stdout by default; always JSON, `--json` is accepted
    for symmetry with the other commands)."""
    from courtois.services.audit import export_ledger

    if output is None:
        try:
            run(lambda ctx: export_ledger(ctx.engine, sys.stdout))
            sys.stdout.flush()
        except OSError as error:  # the database's errors are not OSError: this is stdout
            output_failed(error)
        return
    count = _export_to_file(
        output, lambda handle: run(lambda ctx: export_ledger(ctx.engine, handle))
    )
    if as_json:
        emit(True, {"entries": count, "output": str(output)}, lambda: None)
    else:
        sys.stderr.write(f"{count} entries written to {output}\n")


def _export_to_file(output: Path, write: Callable[[Any], int]) -> int:
    """Write beside `output` under a temporary name, then rename it into place: a failed
    export (a broken entry, a database out of reach, a full disk) leaves no partial or
    empty file that could pass for the ledger, and an existing export stays as it was.

    Only a regular file is replaced. A symbolic link is refused, not followed: renaming
    over it would leave its target stale while seeming to update it, and writing through
    it would put the ledger wherever it points. A FIFO, a socket or a device is refused
    too: it would be replaced by a file, and a device node never should be."""
    import os
    import stat
    import tempfile

    if output.is_dir():
        fail(f"--output {output} is a folder; name a file")
    try:
        mode: int | None = output.lstat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as error:
        fail(f"cannot write {output}: {error.strerror or type(error).__name__}")
    if mode is not None and not stat.S_ISREG(mode):
        kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
        fail(f"--output {output} is {kind}; name a regular file, or a new one")
    try:
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, renamed after
            "w",
            encoding="utf-8",
            dir=output.parent,
            prefix=f".{output.name}.",
            suffix=".part",
            delete=False,
        )
    except OSError as error:
        fail(f"cannot write {output}: {error.strerror or type(error).__name__}")
    partial = Path(handle.name)
    try:
        with handle:
            count = write(handle)
        umask = os.umask(0)
        os.umask(umask)
        partial.chmod(0o666 & ~umask)  # as an ordinary new file, not the temporary's 0600
        partial.replace(output)
    except OSError as error:
        partial.unlink(missing_ok=True)
        fail(f"cannot write {output}: {error.strerror or type(error).__name__}")
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return count


@policy_app.command("explain")
def policy_explain(
    member: Annotated[str, typer.Option("--member")],
    email: Annotated[str, typer.Option("--email")],
    reminders: Annotated[int, typer.Option("--reminders", min=0, max=1)] = 0,
    now: NowOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every verdict for a would-be invitation, as an admin sees it; nothing is written."""
    from courtois.services.explain import explain, explained

    decision: Decision = run(lambda ctx: explain(ctx, member, email, parse_now(now), reminders))
    data = explained(decision)
    emit(as_json, data, lambda: show_decision(f"outcome: {data['outcome']}", data))


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    processes: Annotated[int, typer.Option("--processes", min=1, max=64)] = 1,
) -> None:
    """The host API and the pages over HTTP (uvicorn), until stopped."""
    from courtois.serve_processes import serve as serve_http

    # Refuse a bad configuration or database before binding the port.
    dialect, settings = run(lambda ctx: (ctx.engine.dialect.name, ctx.settings))
    check_port_free(host, port)
    warn_plain_http(settings)
    warn_no_postal_address(settings)
    if processes > 1 and dialect == "sqlite":
        # Measured (bench/api.py): two processes served fewer one-click unsubscribes than
        # one; their connections lose each other's page cache and meet at SQLite's lock.
        sys.stderr.write(
            f"courtois: warning: on SQLite one process serves more requests than {processes} "
            "do (docs/operations.md); starting them as asked.\n"
        )
    serve_http(host, port, processes)


def check_port_free(host: str, port: int) -> None:
    """Bind and release the address as uvicorn will bind it (SO_REUSEADDR): one line when
    it is taken or not this machine's, instead of uvicorn's log lines and exit 3."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as error:
        fail(f"cannot listen on {host}:{port}: {error.strerror or type(error).__name__}")


@app.command()
def demo(
    port: Annotated[int, typer.Option("--port", min=0, max=65535)] = 8000,
    smtp_port: Annotated[
        int, typer.Option("--smtp-port", min=0, max=65535, help="Capture SMTP port; 0: free.")
    ] = 0,
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Where the demo keeps its database and keys.")
    ] = Path("courtois-data") / "demo",
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Start from nothing in a temporary folder.")
    ] = False,
) -> None:
    """One process on 127.0.0.1: API, pages, worker, a capture SMTP server and its outbox
    viewer, on a seeded SQLite database; Ctrl-C stops it."""
    from courtois.demo.runner import DemoOptions, run_demo

    def say(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    try:
        run_demo(DemoOptions(port, smtp_port, data_dir, fresh), say)
    except DomainError as error:
        fail(error.message)
    except OSError as error:  # a file of the demo's folder that cannot be read or written
        where = f"{error.filename}: " if error.filename else ""
        fail(f"the demo cannot start: {where}{error.strerror or type(error).__name__}")


def main() -> None:
    """Entry point of the `courtois` script."""
    # Imported here, not at the top: the cli_* modules reuse this module's helpers.
    from courtois.cli_bounces import bounces_app
    from courtois.cli_imports import import_command
    from courtois.cli_restore import reapply_stops_command
    from courtois.cli_simulate import simulate_command
    from courtois.cli_words import check_words_command

    app.add_typer(bounces_app, name="bounces")
    audit_app.command("reapply-stops")(reapply_stops_command)
    app.command("import")(import_command)
    app.command("simulate")(simulate_command)
    app.command("check-words")(check_words_command)
    code = _invoke()
    try:
        sys.stdout.flush()  # what is still buffered fails here, not in the exit's flush
    except OSError as error:
        sys.stderr.write(f"courtois: {_output_failure(error)}\n")
        code = code or 1
    sys.exit(code)


def _invoke() -> int:
    """Run the command line; a usage mistake (a missing or bad option, an unknown command)
    is one line on stderr with exit 2, as every other refusal is one line, instead of the
    boxed Usage/Try/Error block scripts would have to parse. Help asked for, or shown for a
    bare group, stays the full text."""
    try:
        # Typer carries its own copy of Click; the installed click's classes are not its.
        from typer._click.exceptions import ClickException, NoArgsIsHelpError
    except ImportError:  # an older Typer, on Click itself
        from click.exceptions import (  # type: ignore[assignment]
            ClickException,
            NoArgsIsHelpError,
        )

    try:
        code = app(standalone_mode=False)
    except NoArgsIsHelpError as error:
        sys.stderr.write(error.format_message() + "\n")
        return error.exit_code
    except ClickException as error:
        context = getattr(error, "ctx", None)
        hint = f" (see `{context.command_path} --help`)" if context is not None else ""
        message = " ".join(error.format_message().split())
        line = _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", message + hint)
        sys.stderr.write(f"courtois: {line}\n")
        return error.exit_code
    except typer.Abort:
        sys.stderr.write("courtois: aborted\n")
        return 1
    return code if isinstance(code, int) else 0
