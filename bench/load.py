"""Mixed load on `courtois serve --processes 2` over PostgreSQL, then every invariant checked.

N clients (default 16, httpx, asyncio) do for a bounded time what members and recipients do:
import an address book (CSV or vCard upload), preview then invite with consent (one in ten
repeated with the same Idempotency-Key, as a double click sends it), withdraw an invitation,
revoke a consent, and, from the emails that really left, unsubscribe with one click
(`POST /u/TOKEN`, `List-Unsubscribe=One-Click`) or accept (`GET /join/TOKEN`, then the
platform's `POST /v1/joined`). A `courtois worker --once --now T` runs pass after pass
meanwhile into an SMTP server in this process, T being the real time plus the undo window,
so that what was consented to leaves during the run and recipients can act on it. After
the load, three last passes (at once, 15 and 31 days on) send what fell due, reminders and
deferrals included, and expire and purge; then the invariants of DESIGN.md are checked on
the database, the received mail and the logs (bench/load_invariants.py).

    .venv/bin/python bench/load.py [--seconds 30] [--clients 16] [--json FILE]

Exits 1 when an invariant fails. PostgreSQL is reached through COURTOIS_TEST_POSTGRES_URL
(a fresh database is created there and dropped).
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import IO, Any

import httpx
from aiosmtpd.controller import Controller
from databases import postgres_database
from figures import figure, write
from load_invariants import ClientFacts, check_all, contacts_start_unselected, report

from courtois.config import Settings
from courtois.delivery.compose import tokens_in
from courtois.services.context import Context
from courtois.store.engine import make_engine

SECRET = "bench-secret-key-0123456789"
API_KEY = "bench-api-key-0123456789"
COURTOIS = str(Path(sys.executable).parent / "courtois")
PLATFORM = "Bench"
MAIL_FROM = "invitations@bench.example"
POSTAL = "1 Bench Street, 75000 Paris"
MEMBERS = 200
POOL = 4000  # recipients members invite, shared so that invitations meet in inboxes
DOMAINS = 25
UNDO_AND_MARGIN = timedelta(minutes=10, seconds=5)
LATER = (timedelta(days=15), timedelta(days=31))
NOTES = ("", "Join me there, it is where our club meets now.", "À bientôt sur Bench !")
# Operation -> weight in the mix; the recipients' ones wait for mail to have left.
MIX = {"invite": 40, "import": 14, "withdraw": 12, "revoke": 4, "unsubscribe": 18, "join": 12}
# What each request may answer without being an error: a withdrawal or revocation of what
# was already sent, answered or closed is refused (409) by design.
EXPECTED = {
    "preview": {200},
    "invite": {201},
    "invite (repeat)": {201},
    "import": {200, 201},
    "withdraw": {200, 409},
    "revoke": {200, 409},
    "unsubscribe": {200},
    "join": {303, 307},
    "joined": {200},
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def address(n: int) -> str:
    return f"friend{n}@d{n % DOMAINS}.example.org"


# --- the mail that leaves ---------------------------------------------------------------------


@dataclass
class Inbox:
    """Every email received, and the links recipients will click, handed out once each."""

    settings: Settings
    received: list[bytes] = field(default_factory=list)
    unsubscribe: deque[str] = field(default_factory=deque)
    join: deque[tuple[str, str]] = field(default_factory=deque)  # token, address
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        raw = bytes(envelope.content)
        self.received.append(raw)
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        tokens = tokens_in(parsed, self.settings)
        # Each recipient does one thing with what they got: stop it, or accept it.
        if self.rng.random() < 0.6:
            self.unsubscribe.append(tokens.unsubscribe)
        else:
            self.join.append((tokens.join[0], envelope.rcpt_tos[0]))
        return "250 OK"


@contextmanager
def smtp_server(inbox: Inbox) -> Iterator[int]:
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


class Worker:
    """`courtois worker --once --now T` pass after pass, T past the undo window."""

    def __init__(self, env: dict[str, str], log: IO[bytes]) -> None:
        self.env, self.log = env, log
        self.counts: Counter[str] = Counter()
        self.passes = 0
        self.last = datetime.now(UTC)
        self.stopping = threading.Event()
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def one_pass(self, now: datetime) -> None:
        done = subprocess.run(
            [COURTOIS, "worker", "--once", "--now", now.isoformat(), "--json"],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=self.log,
            check=False,
        )
        self.log.write(done.stdout)
        if done.returncode != 0:
            raise SystemExit(f"a worker pass failed (exit {done.returncode})")
        for key, value in json.loads(done.stdout).items():
            if isinstance(value, dict):  # problems met, by kind
                self.counts.update({f"{key}: {k}": v for k, v in value.items()})
            elif value:
                self.counts[key] += value
        self.passes += 1
        self.last = now

    def loop(self) -> None:
        try:
            while not self.stopping.is_set():
                self.one_pass(datetime.now(UTC) + UNDO_AND_MARGIN)
        except BaseException as error:  # the load goes on; the run fails at the end
            self.failure = error

    def __enter__(self) -> Worker:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        self.thread.join()
        if self.failure is not None:
            raise SystemExit(f"the worker failed during the load: {self.failure!r}")


# --- the clients ------------------------------------------------------------------------------


@dataclass
class Stats:
    """Latencies and statuses per request kind, and what the database is checked against."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    facts: ClientFacts = field(default_factory=ClientFacts)
    invitations: list[str] = field(default_factory=list)
    consents: list[str] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    members: int = MEMBERS

    def add(self, kind: str, seconds: float, status: int) -> None:
        self.latencies.setdefault(kind, []).append(seconds)
        self.statuses.setdefault(kind, Counter())[status] += 1
        if status >= 500:
            self.facts.server_errors[kind] += 1


async def timed(
    stats: Stats, kind: str, http: httpx.AsyncClient, method: str, url: str, **kw: Any
) -> httpx.Response:
    started = time.perf_counter()
    answer = await http.request(method, url, **kw)
    stats.add(kind, time.perf_counter() - started, answer.status_code)
    return answer


def address_book(rng: random.Random) -> tuple[str, bytes, str]:
    """A small CSV (Google's columns) or vCard 3.0 export of 3 to 12 people."""
    people = [(f"Friend {n}", address(n)) for n in rng.sample(range(POOL), rng.randint(3, 12))]
    if rng.random() < 0.5:
        rows = ["Name,Given Name,Family Name,E-mail 1 - Type,E-mail 1 - Value"]
        rows += [
            f"{name},{name.split()[0]},{name.split()[1]},* Home,{mail}" for name, mail in people
        ]
        return "contacts.csv", ("\r\n".join(rows) + "\r\n").encode(), "csv"
    cards = [
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:{name}\r\nN:{name.split()[1]};{name.split()[0]};;;\r\n"
        f"EMAIL;type=INTERNET:{mail}\r\nEND:VCARD\r\n"
        for name, mail in people
    ]
    return "contacts.vcf", "".join(cards).encode(), "vcard"


async def invite(http: httpx.AsyncClient, stats: Stats, rng: random.Random) -> None:
    member = f"m{rng.randrange(stats.members)}"
    emails = [address(n) for n in rng.sample(range(POOL), rng.randint(1, 4))]
    wish = {"emails": emails, "note": rng.choice(NOTES), "reminders": int(rng.random() < 0.3)}
    shown = await timed(
        stats, "preview", http, "POST", f"/v1/members/{member}/invitations/preview", json=wish
    )
    if shown.status_code != 200:
        return
    preview = shown.json()
    body = {
        **wish,
        "preview_hash": preview["preview_hash"],
        "consent": {"text_shown": preview["consent_text"], "ip": "192.0.2.1", "user_agent": "load"},
    }
    key = str(uuid.uuid4())
    url, headers = f"/v1/members/{member}/invitations", {"Idempotency-Key": key}
    answer = await timed(stats, "invite", http, "POST", url, json=body, headers=headers)
    if answer.status_code != 201:
        return
    stats.facts.invite_keys.add(key)
    made = answer.json()
    stats.consents.append(made["consent_id"])
    stats.invitations.extend(item["id"] for item in made["invitations"])
    if rng.random() < 0.1:
        again = await timed(stats, "invite (repeat)", http, "POST", url, json=body, headers=headers)
        stats.facts.repeats += 1
        if again.status_code != 201 or again.json() != made:
            stats.facts.repeats_differing += 1


async def one_client(base: str, seed: int, deadline: float, stats: Stats, inbox: Inbox) -> None:
    rng = random.Random(seed)
    auth = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(base_url=base, headers=auth, timeout=60) as http:
        while time.monotonic() < deadline:
            operation = rng.choices(list(MIX), weights=list(MIX.values()))[0]
            if operation == "unsubscribe" and inbox.unsubscribe:
                token = inbox.unsubscribe.popleft()
                await timed(
                    stats, "unsubscribe", http, "POST", f"/u/{token}",
                    content=b"List-Unsubscribe=One-Click",
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )  # fmt: skip
            elif operation == "join" and inbox.join:
                token, to = inbox.join.popleft()
                await timed(stats, "join", http, "GET", f"/join/{token}")
                await timed(stats, "joined", http, "POST", "/v1/joined", json={"email": to})
            elif operation == "import":
                name, content, kind = address_book(rng)
                member = f"m{rng.randrange(stats.members)}"
                await timed(
                    stats, "import", http, "POST", f"/v1/members/{member}/imports",
                    files={"file": (name, content, "application/octet-stream")},
                    data={"format": kind},
                )  # fmt: skip
            elif operation == "withdraw" and stats.invitations:
                invitation = stats.invitations.pop(rng.randrange(len(stats.invitations)))
                await timed(
                    stats, "withdraw", http, "POST", f"/v1/invitations/{invitation}/withdraw"
                )
            elif operation == "revoke" and stats.consents:
                consent = stats.consents.pop(rng.randrange(len(stats.consents)))
                await timed(stats, "revoke", http, "POST", f"/v1/consents/{consent}/revoke")
            else:
                if operation != "invite":
                    stats.skipped[operation] += 1
                await invite(http, stats, rng)


def run_clients(base: str, clients: int, seconds: float, stats: Stats, inbox: Inbox) -> float:
    async def run() -> float:
        started = time.perf_counter()
        deadline = time.monotonic() + seconds
        await asyncio.gather(
            *(one_client(base, 1000 + i, deadline, stats, inbox) for i in range(clients))
        )
        return time.perf_counter() - started

    return asyncio.run(run())


# --- the service ------------------------------------------------------------------------------


@contextmanager
def serve(env: dict[str, str], port: int, processes: int, log: IO[bytes]) -> Iterator[str]:
    base = f"http://127.0.0.1:{port}"
    command = [COURTOIS, "serve", "--port", str(port), "--processes", str(processes)]
    process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("courtois serve did not start")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def seed(base: str, count: int) -> None:
    """The platform's members, a few of them French."""
    auth = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=base, headers=auth, timeout=60) as http:
        for i in range(count):
            body = {
                "id": f"m{i}",
                "email": f"m{i}@members.example",
                "name": f"Member {i}",
                "locale": "fr" if i % 5 == 0 else "en",
            }
            http.post("/v1/members", json=body).raise_for_status()


# --- figures ----------------------------------------------------------------------------------


def percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def figures(stats: Stats, elapsed: float) -> dict[str, dict[str, Any]]:
    """Per request kind: rate, p50, p99, statuses and unexpected ones; and the total."""
    table: dict[str, dict[str, Any]] = {}
    for kind, latencies in stats.latencies.items():
        ordered = sorted(latencies)
        statuses = stats.statuses[kind]
        table[kind] = {
            "requests": len(ordered),
            "rate": len(ordered) / elapsed,
            "p50_ms": percentile(ordered, 0.5) * 1000,
            "p99_ms": percentile(ordered, 0.99) * 1000,
            "statuses": {str(code): n for code, n in sorted(statuses.items())},
            "errors": {
                str(code): n
                for code, n in sorted(statuses.items())
                if code not in EXPECTED.get(kind, set())
            },
        }
    every = sorted(s for latencies in stats.latencies.values() for s in latencies)
    table["total"] = {
        "requests": len(every),
        "rate": len(every) / elapsed,
        "p50_ms": percentile(every, 0.5) * 1000 if every else 0.0,
        "p99_ms": percentile(every, 0.99) * 1000 if every else 0.0,
        "statuses": {},
        "errors": {k: v for row in table.values() for k, v in row["errors"].items()},
    }
    return table


def print_figures(table: dict[str, dict[str, Any]]) -> None:
    for kind, row in table.items():
        errors = row["errors"] or "none"
        print(
            f"  {kind:<16} {row['requests']:6,} requests {row['rate']:7.1f} req/s  "
            f"p50 {row['p50_ms']:7.1f} ms  p99 {row['p99_ms']:7.1f} ms  "
            f"statuses {row['statuses'] or '-'}  errors {errors}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the load lasts")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--members", type=int, default=MEMBERS, help="members who invite")
    parser.add_argument("--processes", type=int, default=2, help="`courtois serve --processes`")
    parser.add_argument(
        "--keep-database", action="store_true", help="leave the database to look into"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    print(
        f"courtois load bench: {args.clients} clients for {args.seconds:g} s against "
        f"`courtois serve --processes {args.processes}` on PostgreSQL, with a worker; "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}"
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(
        secret_key=SECRET,
        base_url=base,
        platform_name=PLATFORM,
        platform_postal_address=POSTAL,
        mail_from=MAIL_FROM,
    )
    inbox = Inbox(settings)
    stats = Stats(members=args.members)
    with (
        postgres_database("courtois_load", keep=args.keep_database) as url,
        smtp_server(inbox) as smtp_port,
        tempfile.TemporaryFile() as serve_log,
        tempfile.TemporaryFile() as worker_log,
    ):
        env = {k: v for k, v in os.environ.items() if not k.startswith("COURTOIS_")}
        env.update(
            COURTOIS_DATABASE_URL=url,
            COURTOIS_SECRET_KEY=SECRET,
            COURTOIS_API_KEY=API_KEY,
            COURTOIS_BASE_URL=base,
            COURTOIS_PLATFORM_NAME=PLATFORM,
            COURTOIS_PLATFORM_POSTAL_ADDRESS=POSTAL,
            COURTOIS_MAIL_FROM=MAIL_FROM,
            COURTOIS_SMTP_URL=f"smtp://127.0.0.1:{smtp_port}",
        )
        subprocess.run([COURTOIS, "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
        with serve(env, port, args.processes, serve_log):
            seed(base, args.members)
            with Worker(env, worker_log) as worker:
                elapsed = run_clients(base, args.clients, args.seconds, stats, inbox)
            table = figures(stats, elapsed)
            print(f"load: {elapsed:.1f} s; per request kind:")
            print_figures(table)
            skipped = dict(stats.skipped) or "none"
            print(f"  recipients' actions replaced by an invite while no mail had left: {skipped}")
        engine = make_engine(url)
        earlier = [contacts_start_unselected(engine)]
        for later in (timedelta(0), *LATER):
            worker.one_pass(datetime.now(UTC) + UNDO_AND_MARGIN + later)
        print(
            f"worker: {worker.passes} passes (3 after the load: at once, 15 and 31 days on); "
            f"{dict(worker.counts)}; {len(inbox.received):,} emails received"
        )
        serve_log.seek(0)
        worker_log.seek(0)
        stats.facts.logs = serve_log.read() + worker_log.read()
        try:
            started = time.perf_counter()
            checks = check_all(
                Context(engine, settings), inbox.received, stats.facts, worker.last, earlier
            )
            print(f"invariants ({time.perf_counter() - started:.1f} s to check):")
            held = report(checks)
        finally:
            engine.dispose()
    rows = [
        figure(
            f"load: {kind}",
            row["rate"],
            "req/s",
            note=f"p50 {row['p50_ms']:.0f} ms, p99 {row['p99_ms']:.0f} ms"
            + (f"; unexpected statuses {row['errors']}" if row["errors"] else ""),
        )
        for kind, row in table.items()
    ]
    rows.append(
        figure(
            "load: invariants holding after the run",
            sum(c.ok for c in checks),
            "checks",
            baseline="checks made",
            baseline_value=len(checks),
            goal="all",
            met=held,
            note=f"{len(inbox.received):,} emails received and checked",
        )
    )
    write(
        args.json,
        "load",
        rows,
        clients=args.clients,
        seconds=elapsed,
        processes=args.processes,
        operations=table,
        emails=len(inbox.received),
        worker=dict(worker.counts),
        invariants=[
            {"invariant": c.invariant, "name": c.name, "ok": c.ok, "checked": c.checked}
            for c in checks
        ],
    )
    print(f"invariants {'all hold' if held else 'FAILED'}")
    return 0 if held else 1


if __name__ == "__main__":
    sys.exit(main())
