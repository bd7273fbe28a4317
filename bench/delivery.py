"""Messages per second through the whole delivery pipeline, beside two references.

The pipeline: claim, policy re-check, composition, DKIM signing (when a key is configured),
SMTP over pooled connections, state write, at 1, 8 and 32 connections, into Postfix's
`smtp-sink`. The references, in the same run against the same sink: Postfix's
`smtp-source` (C, 4 KB messages) and a bare aiosmtplib loop sending pre-built messages.

Needs Debian's postfix package for smtp-sink and smtp-source (`apt-get install postfix`;
only the two test programs are used, no mail server is started). Run with
`.venv/bin/python bench/delivery.py [--messages 2000] [--quick]`.
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
from pathlib import Path

import aiosmtplib

from courtois.config import Settings
from courtois.delivery.smtp import SmtpTransport, parse_smtp_url
from courtois.services.context import Context
from courtois.services.invitations import ConsentInput, InviteRequest, invite
from courtois.services.members import register_member
from courtois.services.previews import preview_invitations
from courtois.services.worker import run_pass
from courtois.store.engine import make_engine
from courtois.store.migrate import migrate

SECRET = "bench-secret-key-0123456789"
PER_MEMBER = 100  # the default sender cap a day


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


def dkim_key(folder: Path) -> Path | None:
    """An RSA key for signing, if openssl is at hand."""
    if shutil.which("openssl") is None:
        return None
    key = folder / "dkim.pem"
    subprocess.run(
        ["openssl", "genrsa", "-out", str(key), "2048"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return key


def prepare(folder: Path, messages: int, key: Path | None) -> tuple[Context, datetime]:
    """A SQLite database with `messages` invitations due now, from enough members that the
    default sender cap is respected."""
    engine = make_engine(f"sqlite:///{folder / 'bench.db'}")
    migrate(engine)
    settings = Settings(
        secret_key=SECRET, platform_name="Agora", mail_from="invitations@agora.example"
    )
    if key is not None:
        settings = replace(
            settings,
            dkim_domain="agora.example",
            dkim_selector="bench",
            dkim_private_key_file=str(key),
        )
    ctx = Context(engine, settings)
    given = datetime.now(UTC) - timedelta(minutes=15)
    for m in range((messages + PER_MEMBER - 1) // PER_MEMBER):
        member = f"m{m}"
        register_member(ctx, member, f"{member}@members.example", f"Member {m}", "en", given)
        count = min(PER_MEMBER, messages - m * PER_MEMBER)
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


def bench_pipeline(port: int, messages: int, connections: int, key: Path | None) -> float:
    """The worker's passes until everything due has left: messages per second."""
    with tempfile.TemporaryDirectory() as folder:
        ctx, _ = prepare(Path(folder), messages, key)
        smtp = replace(
            parse_smtp_url(f"smtp://127.0.0.1:{port}"),
            connections=connections,
            per_domain_per_second=10_000,
        )
        transport = SmtpTransport(smtp)
        started = time.perf_counter()
        sent = 0
        while sent < messages:
            report = run_pass(ctx, datetime.now(UTC), transport)
            if report.sent == 0:
                raise SystemExit(f"pipeline stalled after {sent} messages: {report.as_dict()}")
            sent += report.sent
        elapsed = time.perf_counter() - started
        ctx.engine.dispose()
    return messages / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="200 messages, for a smoke test")
    args = parser.parse_args(argv)
    messages = 200 if args.quick else args.messages
    if shutil.which("smtp-sink") is None or shutil.which("smtp-source") is None:
        print("smtp-sink/smtp-source not found: apt-get install postfix", file=sys.stderr)
        return 2
    print(
        f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}; "
        f"{messages} messages each"
    )
    with tempfile.TemporaryDirectory() as folder:
        key = dkim_key(Path(folder))
        print(f"dkim signing: {'on (rsa 2048)' if key else 'off (no openssl)'}")
        with smtp_sink() as port:
            reference = bench_smtp_source(port, max(messages, 5000), 32)
            print(f"smtp-source (32 sessions, 4 KB): {reference:,.0f} msg/s")
            for connections in (1, 8, 32):
                bare = bench_bare_aiosmtplib(port, messages, connections)
                piped = bench_pipeline(port, messages, connections, key)
                print(
                    f"{connections:>2} connection(s): courtois pipeline {piped:,.0f} msg/s; "
                    f"bare aiosmtplib {bare:,.0f} msg/s; pipeline/bare {piped / bare:.2f}; "
                    f"pipeline/smtp-source {piped / reference:.3f}"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
