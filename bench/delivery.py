"""Messages per second through the whole delivery pipeline, beside two references.

The pipeline: claim, policy re-check, composition, DKIM signing (when a key is configured),
SMTP over pooled connections, state write, at 1, 8 and 32 connections, into Postfix's
`smtp-sink`, run by worker processes as `courtois worker --processes N` runs them (each on
its share of the recipients; the connections are split between them). The references, in
the same run against the same sink: Postfix's `smtp-source` (C, 4 KB messages) and a bare
aiosmtplib loop sending pre-built messages. It also prints the CPU a message may take for
the goal of 25% of `smtp-source` on this machine, and what DKIM signing alone takes of it.

Worker processes start, open the database, compile the templates, parse the DKIM key,
freeze what they made out of the garbage collector's passes (as `courtois worker` does) and
wait; the clock runs from the moment they are told to go until the last one has recorded
its last outcome (a long-running worker pays its start-up once). Nothing about the
benchmark's members is cached beforehand: each process renders their previews and builds
their skeletons on the clock.

Needs Debian's postfix package for smtp-sink and smtp-source (`apt-get install postfix`;
only the two test programs are used, no mail server is started). Run with
`.venv/bin/python bench/delivery.py [--messages 2000] [--processes 2] [--quick]`;
`--no-pipelining` and `--processes 1` measure without those levers, `--dkim ed25519` with
the fast signature (RFC 8463) instead of RSA-2048, `--dkim rsa+ed25519` with both (two
selectors, one signature each, as an operator whose receivers do not all verify Ed25519
signs), `--dkim none` unsigned; `--database postgresql` keeps the outbox in a fresh
database on the tests' PostgreSQL server (COURTOIS_TEST_POSTGRES_URL) instead of a SQLite
file, where the worker processes claim with `FOR UPDATE SKIP LOCKED`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import aiosmtplib
from databases import postgres_database
from figures import Row, figure, write

from courtois.config import Settings
from courtois.delivery.dkim import sign
from courtois.delivery.render import Inviter, RenderContext, render
from courtois.delivery.smtp import SmtpSettings, SmtpTransport, parse_smtp_url
from courtois.domain.messages import MessageKind
from courtois.services.context import Context
from courtois.services.invitations import ConsentInput, InviteRequest, invite
from courtois.services.members import register_member
from courtois.services.previews import preview_invitations
from courtois.services.worker import Shard, run_pass
from courtois.store.engine import make_engine
from courtois.store.migrate import migrate

SECRET = "bench-secret-key-0123456789"
# Seconds a worker process may take to start (import, open the database, warm up).
STARTUP = 120
# Below the default sender cap (100 a day) and, unlike it, below the sample (20 sent) past
# which a sender's caps scale with their acceptance rate: a member of the benchmark accepts
# nothing, so with more than 20 each the pipeline would (rightly) defer most of the batch.
PER_MEMBER = 20


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def smtp_sink() -> Iterator[int]:
    """Postfix's smtp-sink on a free port, accepting and discarding everything."""
    port = free_port()
    sink = subprocess.Popen(
        ["smtp-sink", "-u", "postfix", "-c", f"127.0.0.1:{port}", "256"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield port
    finally:
        sink.terminate()
        sink.wait(timeout=5)


def bench_smtp_source(port: int, messages: int, sessions: int) -> float:
    """Postfix's own load generator: messages per second."""
    started = time.perf_counter()
    subprocess.run(
        [
            "smtp-source",
            "-s",
            str(sessions),
            "-l",
            "4096",
            "-m",
            str(messages),
            "-f",
            "bench@example.org",
            "-t",
            "sink@example.org",
            f"127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    return messages / (time.perf_counter() - started)


def bench_bare_aiosmtplib(port: int, messages: int, connections: int) -> float:
    """Pre-built 4 KB messages over `connections` aiosmtplib connections."""
    body = b"Subject: bench\r\n\r\n" + (b"x" * 76 + b"\r\n") * 52

    async def one_connection(count: int) -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        await client.connect()
        for _ in range(count):
            await client.sendmail("bench@example.org", ["sink@example.org"], body)
        await client.quit()

    async def run() -> None:
        share = [messages // connections + (i < messages % connections) for i in range(connections)]
        await asyncio.gather(*(one_connection(n) for n in share if n))

    started = time.perf_counter()
    asyncio.run(run())
    return messages / (time.perf_counter() - started)


# The key files a run signs with, one per selector.
Keys = tuple[Path, ...]
# The keys the benchmark can sign with: openssl's command making each.
KEYS = {
    "rsa": ["genrsa", "-out", "{key}", "2048"],
    "ed25519": ["genpkey", "-algorithm", "ed25519", "-out", "{key}"],
}
KEY_NAMES = {"rsa": "rsa 2048", "ed25519": "ed25519", "rsa+ed25519": "rsa 2048 + ed25519"}


def dkim_key(folder: Path, kind: str) -> Keys | None:
    """The key files to sign with (RSA 2048, Ed25519, or one of each under two selectors),
    if openssl is at hand and signing is on."""
    if kind == "none" or shutil.which("openssl") is None:
        return None
    files = []
    for each in kind.split("+"):
        key = folder / f"dkim-{each}.pem"
        subprocess.run(
            ["openssl", *(part.format(key=key) for part in KEYS[each])],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        files.append(key)
    return tuple(files)


@contextmanager
def database(engine: str, folder: Path) -> Iterator[str]:
    """A fresh database of that engine for one run: a SQLite file in `folder`, or a new
    database on the PostgreSQL server of the tests, dropped afterwards."""
    if engine == "postgresql":
        with postgres_database() as url:
            yield url
    else:
        yield f"sqlite:///{folder / 'bench.db'}"


def prepare(
    database: str, messages: int, key: Keys | None, per_member: int = PER_MEMBER
) -> tuple[Context, datetime]:
    """The database with `messages` invitations due now, `per_member` from each member
    (so from enough members that the default sender cap is respected)."""
    engine = make_engine(database)
    migrate(engine)
    settings = bench_settings(database, key)
    ctx = Context(engine, settings)
    given = datetime.now(UTC) - timedelta(minutes=15)
    for m in range((messages + per_member - 1) // per_member):
        member = f"m{m}"
        register_member(ctx, member, f"{member}@members.example", f"Member {m}", "en", given)
        count = min(per_member, messages - m * per_member)
        emails = tuple(f"r{m}-{i}@d{i % 50}.example.org" for i in range(count))
        preview = preview_invitations(ctx, member, count, "", None, 0)
        invite(
            ctx,
            InviteRequest(
                member,
                emails,
                "",
                None,
                0,
                preview.preview_hash,
                ConsentInput(preview.consent_text),
            ),
            given,
        )
    return ctx, given


def bench_settings(database: str, key: Keys | None) -> Settings:
    """The platform of the benchmark, with DKIM when a key is given (a selector each)."""
    settings = Settings(
        secret_key=SECRET,
        platform_name="Agora",
        # Every email gives it (the worker starts only with it set), and a consent keeps
        # the words previewed only when they do.
        platform_postal_address="Agora SAS, 1 rue de la Paix, 75002 Paris",
        mail_from="invitations@agora.example",
        database_url=database,
    )
    if key is not None:
        settings = replace(
            settings,
            dkim_domain="agora.example",
            dkim_selector=",".join(f"bench{i}" for i in range(len(key))),
            dkim_private_key_file=",".join(str(each) for each in key),
        )
    return settings


def bench_signing(key: Keys, rounds: int = 500) -> float:
    """Milliseconds of one core per DKIM signature of a 4 KB message with the pipeline's
    own signer and key: the share of a message's CPU no pipeline change removes."""
    settings = bench_settings("sqlite://", key)
    raw = (
        b"From: Agora <invitations@agora.example>\r\nTo: r@d.example.org\r\n"
        b"Subject: Ana invites you to join Agora\r\nMessage-ID: <m@agora.example>\r\n"
        b"Date: Tue, 01 Dec 2026 08:00:00 +0000\r\n\r\n" + b"x" * 76 + b"\r\n"
    ) + b"y" * 76 * 52
    sign(raw, settings)  # the key parsed once, as a running worker has it
    started = time.process_time()
    for _ in range(rounds):
        sign(raw, settings)
    return (time.process_time() - started) * 1000 / rounds


def warm_up(settings: Settings) -> None:
    """What a running worker has done once and for all: templates and the catalogue
    compiled, the DKIM key parsed. Nothing about the benchmark's members is cached."""
    platform = RenderContext.from_settings(settings, (Inviter("Warm Up"),))
    render(MessageKind.INVITATION, "en", platform)
    sign(b"Subject: warm-up\r\n\r\nwarm-up\r\n", settings)


def worker_process(
    settings: Settings,
    smtp: SmtpSettings,
    shard: Shard,
    ready: Barrier,
    sent: Queue[tuple[int, float] | str],
) -> None:
    """One worker process: passes over its shard until nothing of it is due any more; says
    how many messages it sent and the CPU seconds it spent on them (all its threads)."""
    # Imported here: bench/delivery_instructions.py imports this module to count source
    # trees from before `long_lived` too.
    from courtois.long_lived import freeze_start_up

    ctx = Context(make_engine(settings.database_url), settings)
    transport = SmtpTransport(smtp)
    warm_up(settings)
    freeze_start_up()  # as `courtois worker` does before its first pass
    ready.wait(timeout=STARTUP)
    cpu = time.process_time()
    total = 0
    try:
        while True:
            report = run_pass(ctx, datetime.now(UTC), transport, shard=shard)
            total += report.sent
            if report.sent == 0:
                break
        sent.put((total, time.process_time() - cpu))
    except Exception as error:  # the parent reports it; the benchmark stops
        sent.put(f"{type(error).__name__}: {error}")
        raise
    finally:
        ctx.engine.dispose()


def bench_pipeline(
    port: int,
    messages: int,
    connections: int,
    key: Keys | None,
    processes: int,
    pipelining: bool,
    engine: str,
    per_member: int = PER_MEMBER,
) -> tuple[float, float]:
    """Worker processes until everything due has left: messages per second, and the workers'
    CPU milliseconds per message (the figure a busy machine disturbs least)."""
    processes = max(1, min(processes, connections))
    spawn = get_context("spawn")
    with tempfile.TemporaryDirectory() as folder, database(engine, Path(folder)) as url:
        ctx, _ = prepare(url, messages, key, per_member)
        settings = ctx.settings
        ctx.engine.dispose()
        smtp = replace(
            parse_smtp_url(f"smtp://127.0.0.1:{port}"),
            connections=connections // processes,
            per_domain_per_second=10_000,
            pipelining=pipelining,
        )
        ready = spawn.Barrier(processes + 1)
        sent: Queue[tuple[int, float] | str] = spawn.Queue()
        workers = [
            spawn.Process(
                target=worker_process,
                args=(settings, smtp, Shard(i, processes), ready, sent),
            )
            for i in range(processes)
        ]
        for worker in workers:
            worker.start()
        ready.wait(timeout=STARTUP)  # a worker that failed to start breaks the barrier
        started = time.perf_counter()
        counts = [sent.get(timeout=600) for _ in workers]
        elapsed = time.perf_counter() - started
        for worker in workers:
            worker.join(timeout=60)
    failures = [count for count in counts if isinstance(count, str)]
    if failures:
        raise SystemExit(f"a worker failed: {failures[0]}")
    done = [count for count in counts if not isinstance(count, str)]
    total = sum(count for count, _ in done)
    if total != messages:
        raise SystemExit(f"pipeline stalled: {total} of {messages} messages sent")
    return messages / elapsed, sum(cpu for _, cpu in done) * 1000 / messages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="200 messages, for a smoke test")
    parser.add_argument("--processes", type=int, default=2, help="worker processes (cores)")
    parser.add_argument("--no-pipelining", action="store_true", help="one command at a time")
    parser.add_argument(
        "--dkim",
        choices=["rsa", "ed25519", "rsa+ed25519", "none"],
        default="rsa",
        help="the DKIM key(s) the pipeline signs with (rsa: 2048 bits; rsa+ed25519: both)",
    )
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgresql"],
        default="sqlite",
        help="where the outbox is kept (postgresql: a fresh database on the tests' server)",
    )
    parser.add_argument(
        "--per-member",
        type=int,
        choices=range(1, PER_MEMBER + 1),
        default=PER_MEMBER,
        metavar=f"1..{PER_MEMBER}",
        help="invitations each member sends: each member's words are composed once per worker "
        "process, and their sender facts read once per batch, so fewer a member costs more a "
        "message (platforms' members mostly invite a few people each)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    messages = 200 if args.quick else args.messages
    if shutil.which("smtp-sink") is None or shutil.which("smtp-source") is None:
        print("smtp-sink/smtp-source not found: apt-get install postfix", file=sys.stderr)
        return 2
    print(
        f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}; "
        f"{messages} messages each; up to {args.processes} worker process(es); "
        f"pipelining {'off' if args.no_pipelining else 'when offered'}; "
        f"outbox on {args.database}; {args.per_member} invitations a member"
    )
    with tempfile.TemporaryDirectory() as folder:
        key = dkim_key(Path(folder), args.dkim)
        algorithm = KEY_NAMES.get(args.dkim, "")
        print(f"dkim signing: {f'on ({algorithm})' if key else 'off'}")
        with smtp_sink() as port:
            reference = bench_smtp_source(port, max(messages, 5000), 32)
            print(f"smtp-source (32 sessions, 4 KB): {reference:,.0f} msg/s")
            rows: list[Row] = [figure("smtp-source (Postfix, C), 32 sessions", reference, "msg/s")]
            # What the 25% goal asks of both cores together: an upper bound on the CPU a
            # message may take, before the sink's own share.
            cores = os.cpu_count() or 1
            print(
                f"25% of smtp-source: {reference / 4:,.0f} msg/s, at most "
                f"{cores * 4000 / reference:.2f} ms of CPU per message on {cores} cores"
            )
            if key is not None:
                signing = bench_signing(key)
                print(f"dkim signing alone ({algorithm}): {signing:.3f} ms of CPU per message")
                rows.append(
                    figure(
                        f"DKIM signing alone ({algorithm}), one core",
                        signing,
                        "ms/message",
                        note=f"the 25% goal leaves {cores * 4000 / reference:.2f} ms of CPU "
                        f"per message on {cores} cores",
                    )
                )
            for connections in (1, 8, 32):
                bare = bench_bare_aiosmtplib(port, messages, connections)
                piped, cpu = bench_pipeline(
                    port,
                    messages,
                    connections,
                    key,
                    args.processes,
                    not args.no_pipelining,
                    args.database,
                    args.per_member,
                )
                print(
                    f"{connections:>2} connection(s), "
                    f"{max(1, min(args.processes, connections))} process(es): "
                    f"courtois pipeline {piped:,.0f} msg/s; "
                    f"bare aiosmtplib {bare:,.0f} msg/s; pipeline/bare {piped / bare:.2f}; "
                    f"pipeline/smtp-source {piped / reference:.3f}; "
                    f"worker CPU {cpu:.2f} ms/message"
                )
                rows.append(
                    figure(
                        f"delivery pipeline [{args.database}, {args.per_member} a member], "
                        f"{connections} connection(s), "
                        f"{max(1, min(args.processes, connections))} process(es)",
                        piped,
                        "msg/s",
                        baseline="bare aiosmtplib",
                        baseline_value=bare,
                        note=f"{piped / reference:.3f} of smtp-source; "
                        f"worker CPU {cpu:.2f} ms/message",
                    )
                )
    write(
        args.json,
        "delivery",
        rows,
        messages=messages,
        dkim=algorithm if key is not None else False,
        database=args.database,
        per_member=args.per_member,
        quick=args.quick,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
