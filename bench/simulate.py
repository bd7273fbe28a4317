"""How fast `courtois simulate` reads and replays a year of a large platform's history.

A year of ledger (1,000,000 entries by default) is generated and bulk-inserted straight into
a fresh SQLite database (and, with `--postgres`, a fresh PostgreSQL database on the server
named by COURTOIS_TEST_POSTGRES_URL): members registering, consents to invitations of 1 to
1,000 recipients (popular recipients and heavy senders following Zipf laws), each decision
with every rule's outcome, sends, digests-free first emails and ticked reminders, expiries,
withdrawals, acceptances, declines, joins, opt-outs, complaints and hard bounces, hash-
chained as the services chain them. Then `simulate` runs end to end (streamed read of the
ledger, current-policy replay, new-policy replay, report) in a fresh process, which reports
its wall time, entries and events per second, and its peak resident memory.

The generated history is plausible, not policy-exact (its recorded outcomes come from a
simple model, so the current-policy replay differs from it): this measures speed and
memory, not fidelity, which the tests measure.

    .venv/bin/python bench/simulate.py [--entries N] [--postgres] [--since-days D]
    .venv/bin/python bench/simulate.py --quick      # 20,000 entries, for the tests
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import platform
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any

from databases import postgres_database
from figures import Row, cpu_model, figure, write

from courtois.config import Settings
from courtois.domain.ledger import GENESIS_HASH, canonical_payload, hash_canonical
from courtois.policy.chain import CHAIN
from courtois.policy.config import PolicyConfig
from courtois.services.context import Context
from courtois.services.simulate import simulate
from courtois.store.engine import make_engine
from courtois.store.migrate import migrate

SECRET = "bench-secret-key-0123456789abcdef"
START = datetime(2025, 1, 1, tzinfo=UTC)
YEAR = timedelta(days=365)
MINUTE, DAY = timedelta(minutes=1), timedelta(days=1)
# The policy tried against the recorded one: a two-week-longer inbox window, half the caps.
NEW_POLICY = PolicyConfig(
    recipient_short_window_days=30, sender_daily_cap=50, sender_weekly_cap=250
)
CODES = [rule.code for rule in CHAIN]
ENTRIES_PER_INVITATION = 6.7  # what the model below writes, on average
BATCH = 20_000
FIGURES: list[Row] = []  # what --json writes


# --- 1. a year of history -----------------------------------------------------------------


def _id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _rules(**said: str) -> dict[str, str]:
    return {code: said.get(code, "allow") for code in CODES}


class Platform:
    """The generator's world: who is who, and what is already true of each recipient."""

    def __init__(self, entries: int, seed: int) -> None:
        self.rng = random.Random(seed)
        invitations = max(100, int(entries / ENTRIES_PER_INVITATION))
        self.member_ids = [f"member-{i:06d}" for i in range(max(20, entries // 60))]
        self.recipients = [f"{self.rng.getrandbits(256):064x}" for _ in range(invitations)]
        self.consents = max(20, invitations * 10 // 47)
        # Zipf-like weights: a few heavy senders, a few much-invited people.
        self.member_weights = list(
            accumulate(1 / (i + 1) ** 0.9 for i in range(len(self.member_ids)))
        )
        self.recipient_weights = list(
            accumulate(1 / (i + 1) ** 0.6 for i in range(len(self.recipients)))
        )
        self.member_digest = {m: f"{self.rng.getrandbits(256):064x}" for m in self.member_ids}
        # A few members were invited before they registered: their digest is an invitee's.
        for member in self.rng.sample(self.member_ids, len(self.member_ids) // 50):
            self.member_digest[member] = self.rng.choice(self.recipients)
        # 60% joined before the year, the rest during it.
        self.registered = {
            m: START - YEAR * self.rng.random()
            if self.rng.random() < 0.6
            else START + YEAR * self.rng.random()
            for m in self.member_ids
        }
        self.invited: set[tuple[str, str]] = set()
        self.stopped: set[str] = set()
        self.last_email: dict[str, datetime] = {}
        self.daily: dict[tuple[str, int], int] = {}


def ledger_entries(world: Platform) -> Iterator[tuple[datetime, str, dict[str, Any]]]:
    """Ledger entries in time order."""
    rng = world.rng
    heap: list[tuple[datetime, int, str, dict[str, Any]]] = []
    order = 0

    def later(at: datetime, event: str, payload: dict[str, Any]) -> None:
        nonlocal order
        order += 1
        heapq.heappush(heap, (at, order, event, payload))

    for member, joined in world.registered.items():
        later(joined, "member.registered", {"member": member, "new": True})
    instants = sorted(START + YEAR * rng.random() for _ in range(world.consents))
    for at in instants:
        while heap and heap[0][0] <= at:
            when, _, event, payload = heapq.heappop(heap)
            yield when, event, payload
        yield from _consent(world, at, later)
    while heap:
        when, _, event, payload = heapq.heappop(heap)
        yield when, event, payload


def _consent(world: Platform, at: datetime, later: Any) -> Iterator[tuple[datetime, str, Any]]:
    rng = world.rng
    member = rng.choices(world.member_ids, cum_weights=world.member_weights)[0]
    size = 1 + int(rng.expovariate(1 / 3.7))
    if rng.random() < 0.002:
        size = rng.randint(100, 1000)
    picked = set(rng.choices(world.recipients, cum_weights=world.recipient_weights, k=size))
    consent, reminders = _id(rng), int(rng.random() < 0.3)
    yield (
        at,
        "consent.given",
        {
            "consent": consent,
            "member": member,
            "recipients": sorted(picked),
            "preview_hash": "0" * 64,
            "reminders": reminders,
        },
    )
    day = (member, int((at - START) / DAY))
    for recipient in sorted(picked):
        invitation, message = _id(rng), _id(rng)
        outcome, rules = "defer", _rules(**{"undo-window-elapsed": "defer"})
        if (member, recipient) in world.invited:
            outcome, rules = "deny", _rules(**{"not-already-invited": "deny"})
        elif recipient in world.stopped:
            outcome, rules = "deny", _rules(**{"not-unsubscribed": "deny"})
        elif world.daily.get(day, 0) >= 100:
            outcome, rules = "deny", _rules(**{"sender-quota": "deny"})
        send_at = at + 10 * MINUTE
        previous = world.last_email.get(recipient)
        if outcome == "defer" and previous is not None and send_at < previous + 14 * DAY:
            send_at = previous + 14 * DAY
            rules["recipient-quota"] = "defer"
        yield (
            at,
            "decision",
            {
                "invitation": invitation,
                "message": None if outcome == "deny" else message,
                "member": member,
                "recipient": recipient,
                "kind": "invitation",
                "stage": "queue",
                "outcome": outcome,
                "rules": rules,
                "reasons": [],
            },
        )
        if outcome == "deny":
            continue
        world.invited.add((member, recipient))
        world.daily[day] = world.daily.get(day, 0) + 1
        if rng.random() < 0.01:
            withdrawn = at + MINUTE * rng.randint(1, 9)
            later(
                withdrawn,
                "invitation.state",
                _moved(invitation, "withdrawn", "withdrawn by the member"),
            )
            later(
                withdrawn, "message.state", _message(message, "scheduled", "cancelled", "withdrawn")
            )
            continue
        world.last_email[recipient] = send_at
        _send(world, send_at, member, recipient, invitation, message, "invitation", later)
        later(send_at, "invitation.state", _moved(invitation, "sent", "sent", "scheduled"))
        if reminders:
            _send(
                world,
                send_at + 14 * DAY,
                member,
                recipient,
                invitation,
                _id(rng),
                "reminder",
                later,
            )
        _react(world, send_at, member, recipient, invitation, later)


def _moved(invitation: str, target: str, reason: str, source: str = "sent") -> dict[str, Any]:
    return {"invitation": invitation, "from": source, "to": target, "reason": reason}


def _message(message: str, source: str, target: str, reason: str) -> dict[str, Any]:
    return {"message": message, "from": source, "to": target, "reason": reason}


def _send(
    world: Platform,
    at: datetime,
    member: str,
    recipient: str,
    invitation: str,
    message: str,
    kind: str,
    later: Any,
) -> None:
    payload = {
        "invitation": invitation,
        "message": message,
        "member": member,
        "recipient": recipient,
        "kind": kind,
        "stage": "send",
        "outcome": "allow",
        "rules": _rules(),
        "reasons": [],
    }
    later(at, "decision", payload)
    later(at, "message.state", _message(message, "scheduled", "sending", "claimed by the worker"))
    later(at, "message.state", _message(message, "sending", "sent", "accepted by the server"))


def _react(
    world: Platform, sent: datetime, member: str, recipient: str, invitation: str, later: Any
) -> None:
    rng = world.rng
    roll = rng.random()
    when = sent + DAY * rng.uniform(0.01, 10)
    if roll < 0.08:
        later(when, "invitation.state", _moved(invitation, "accepted", "the recipient accepted"))
    elif roll < 0.11:
        later(when, "invitation.state", _moved(invitation, "accepted", "the recipient joined"))
        later(when, "recipient.joined", {"recipient": recipient})
    elif roll < 0.14:
        later(
            when,
            "invitation.state",
            _moved(invitation, "declined", "the recipient is not interested"),
        )
    elif roll < 0.155:
        source = "everyone" if rng.random() < 0.7 else member
        later(when, "recipient.unsubscribed", {"recipient": recipient, "from": source})
        world.stopped.add(recipient)
    elif roll < 0.1555:
        payload = {
            "recipient": recipient,
            "reason": "complaint",
            "source": "report",
            "member": member,
        }
        later(when, "recipient.suppressed", payload)
        world.stopped.add(recipient)
    elif roll < 0.1655:
        bounced = sent + MINUTE
        payload = {"recipient": recipient, "reason": "hard-bounce", "source": "report"}
        later(bounced, "recipient.suppressed", payload)
        later(
            bounced,
            "invitation.state",
            _moved(invitation, "bounced", "the address bounced for good"),
        )
        world.stopped.add(recipient)
    else:
        expiry = sent + 30 * DAY
        later(
            expiry,
            "invitation.state",
            _moved(invitation, "expired", "no answer before the expiry date"),
        )


def chained(
    entries: Iterator[tuple[datetime, str, dict[str, Any]]],
) -> Iterator[tuple[int, datetime, str, str, str, str]]:
    """Ledger rows as the unit of work writes them: canonical payload, hash chain."""
    previous = GENESIS_HASH
    for seq, (at, event, payload) in enumerate(entries, start=1):
        text_payload = canonical_payload(payload)
        digest = hash_canonical(previous, seq, at, event, text_payload)
        yield seq, at, event, text_payload, previous, digest
        previous = digest


# --- 2. writing it ---------------------------------------------------------------------------


def _batches(rows: Iterator[Any], size: int = BATCH) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _naive(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(tzinfo=None)


def write_sqlite(path: Path, entries: int, seed: int) -> tuple[int, float]:
    """Migrate, then insert members and ledger with executemany; returns (rows, seconds)."""
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    started = time.perf_counter()
    world = Platform(entries, seed)
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA synchronous=OFF")
    connection.executemany(
        "INSERT INTO members (id, email, email_digest, name, locale, reply_to, created_at, "
        "updated_at) VALUES (?, ?, ?, ?, 'en', 0, ?, ?)",
        _member_rows(world, iso=True),
    )
    count, seq, last = 0, 0, GENESIS_HASH
    for batch in _batches(chained(ledger_entries(world))):
        connection.executemany(
            "INSERT INTO ledger (seq, at, event, payload, prev_hash, hash) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [
                (s, _naive(at).isoformat(" ", "microseconds"), e, p, h0, h1)
                for s, at, e, p, h0, h1 in batch
            ],
        )
        count += len(batch)
        seq, last = batch[-1][0], batch[-1][5]
    connection.execute("UPDATE ledger_head SET seq = ?, hash = ? WHERE id = 1", (seq, last))
    connection.commit()
    connection.close()
    return count, time.perf_counter() - started


def _member_rows(world: Platform, iso: bool) -> Iterator[tuple[Any, ...]]:
    """Members with the registration time the ledger gives them."""
    for member, digest in world.member_digest.items():
        at = _naive(world.registered[member])
        stamp: Any = at.isoformat(" ", "microseconds") if iso else at
        yield member, f"{member}@bench.invalid", digest, member, stamp, stamp


def write_postgres(url: str, entries: int, seed: int) -> tuple[int, float]:
    """Migrate, then COPY members and ledger; returns (rows, seconds)."""
    engine = make_engine(url)
    migrate(engine)
    started = time.perf_counter()
    world = Platform(entries, seed)
    raw = engine.raw_connection()
    count, seq, last = 0, 0, GENESIS_HASH
    try:
        driver: Any = raw.driver_connection
        with driver.cursor() as cursor:
            columns = "id, email, email_digest, name, locale, reply_to, created_at, updated_at"
            with cursor.copy(f"COPY members ({columns}) FROM STDIN") as copy:
                for m, email, digest, name, created, updated in _member_rows(world, iso=False):
                    copy.write_row((m, email, digest, name, "en", False, created, updated))
            with cursor.copy(
                "COPY ledger (seq, at, event, payload, prev_hash, hash) FROM STDIN"
            ) as copy:
                for s, at, e, p, h0, h1 in chained(ledger_entries(world)):
                    copy.write_row((s, _naive(at), e, p, h0, h1))
                    count, seq, last = count + 1, s, h1
            cursor.execute("UPDATE ledger_head SET seq = %s, hash = %s WHERE id = 1", (seq, last))
        driver.commit()
    finally:
        raw.close()
        engine.dispose()
    return count, time.perf_counter() - started


# --- 3. replaying it -------------------------------------------------------------------------


def _resident_kib() -> int:
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def replay_here(url: str, since_days: int | None) -> dict[str, Any]:
    """Run `simulate` in this process and say how long it took and how much it held."""
    engine = make_engine(url)
    ctx = Context(engine, Settings(secret_key=SECRET, database_url=url))
    before = _resident_kib()
    since = None if since_days is None else START + YEAR - since_days * DAY
    started = time.perf_counter()
    report = simulate(ctx, NEW_POLICY, since).report
    seconds = time.perf_counter() - started
    engine.dispose()
    totals = {row["measure"]: row for row in report["totals"]}
    return {
        "seconds": seconds,
        "events": report["events"],
        "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "before_kib": before,
        "decisions": {side: totals["decisions"][side] for side in ("history", "current", "new")},
        "emails": {side: totals["emails"][side] for side in ("history", "current", "new")},
        "gap": report["replay_gap"],
    }


def replay_in_child(url: str, since_days: int | None) -> dict[str, Any]:
    """A fresh interpreter, so that its peak memory is the replay's alone."""
    args = [sys.executable, __file__, "--replay", url]
    if since_days is not None:
        args += ["--since-days", str(since_days)]
    done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=7200)
    if done.returncode != 0:
        raise SystemExit(f"the replay failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def report_run(engine: str, since_days: int | None, rows: int, result: dict[str, Any]) -> None:
    seconds = result["seconds"]
    peak, before = result["peak_kib"] / 1024, result["before_kib"] / 1024
    events = result["events"]
    if since_days is None:
        label, what = engine, f"{rows:,} ledger entries ({rows / seconds:,.0f} entries/s; "
    else:
        label = f"{engine}, since the last {since_days} days"
        what = "the span and its warm-up ("
    print(
        f"replay [{label}]: {seconds:.1f} s for {what}{events:,} replay events, "
        f"{events / seconds:,.0f} events/s); peak memory {peak:,.0f} MiB "
        f"({peak - before:,.0f} MiB above the process before the replay)"
    )
    rate = (rows if since_days is None else events) / seconds
    FIGURES.append(
        figure(
            f"simulate replay [{label}]",
            rate,
            "entries/s" if since_days is None else "events/s",
            note=f"{seconds:.1f} s, {events:,} replay events; peak memory {peak:,.0f} MiB",
        )
    )
    d, e = result["decisions"], result["emails"]
    print(
        f"  [{label}] decisions history/current/new {d['history']:,}/{d['current']:,}/"
        f"{d['new']:,}; emails {e['history']:,}/{e['current']:,}/{e['new']:,}; "
        f"replay gap {result['gap']:.1%}"
    )


def print_machine() -> None:
    print(
        f"machine: cpu {cpu_model()}; cores {os.cpu_count()}; python {platform.python_version()}; "
        f"sqlite {sqlite3.sqlite_version}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--entries", type=int, default=1_000_000, help="ledger entries to generate")
    parser.add_argument("--quick", action="store_true", help="20,000 entries: a smoke run")
    parser.add_argument("--postgres", action="store_true", help="also on PostgreSQL")
    parser.add_argument("--since-days", type=int, default=None, help="also replay with --since")
    parser.add_argument("--seed", type=int, default=20260302)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--replay", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.replay:
        print(json.dumps(replay_here(args.replay, args.since_days)))
        return 0
    entries = 20_000 if args.quick else args.entries
    print(
        f"courtois simulate bench: {entries:,} ledger entries{' (--quick)' if args.quick else ''}"
    )
    print_machine()
    with tempfile.TemporaryDirectory(prefix="courtois-bench-simulate-") as folder:
        path = Path(folder) / "history.db"
        rows, seconds = write_sqlite(path, entries, args.seed)
        size = path.stat().st_size / 2**20
        print(f"generated [sqlite]: {rows:,} ledger entries in {seconds:.1f} s ({size:,.0f} MiB)")
        url = f"sqlite:///{path}"
        report_run("sqlite", None, rows, replay_in_child(url, None))
        if args.since_days is not None:
            since = replay_in_child(url, args.since_days)
            report_run("sqlite", args.since_days, rows, since)
    if args.postgres:
        with postgres_database() as url:
            rows, seconds = write_postgres(url, entries, args.seed)
            print(f"generated [postgresql]: {rows:,} ledger entries in {seconds:.1f} s")
            report_run("postgresql", None, rows, replay_in_child(url, None))
            if args.since_days is not None:
                since = replay_in_child(url, args.since_days)
                report_run("postgresql", args.since_days, rows, since)
    write(args.json, "simulate", FIGURES, entries=entries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
