"""A fleet of four `courtois worker` processes on one PostgreSQL database sends 20,000
invitations to a real SMTP server; one of them is SIGKILLed halfway, in the middle of a
batch it has already started to hand over. Once its lease has run out, a later pass (as an
operator would run it) resolves what it held. Then: no message arrived twice, every
message is sent or `unknown`, none is lost, everything marked sent arrived, and everything
that arrived is marked sent or `unknown`."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fleet_support import CountingHandler, client_ports, counting_server, in_schema
from sqlalchemy import Engine, func, select, text

from conftest import POSTGRES_URL, SECRET
from courtois.config import load_settings
from courtois.services.context import Context
from courtois.services.invitations import ConsentInput, InviteRequest, invite
from courtois.services.leases import LEASE
from courtois.services.members import register_member
from courtois.services.previews import preview_invitations
from courtois.store.engine import make_engine
from courtois.store.migrate import migrate
from courtois.store.tables import invitations, messages

pytestmark = pytest.mark.postgres

COURTOIS = str(Path(sys.executable).parent / "courtois")
WORKERS = 4
# Members who accept nothing see their caps shrink past `sender_min_sample` (20) sent
# invitations, which is a hard cap: a thousand members of twenty recipients each.
MEMBERS = 1000
PER_MEMBER = 20
TOTAL = MEMBERS * PER_MEMBER
KILL_AT = TOTAL // 2
DEADLINE = 240.0

CONFIG = """\
platform_name = "Agora"
platform_postal_address = "Agora, 1 Example Street, 99999 Exampleton"
mail_from = "invitations@agora.example"
smtp_connections = 4
"""


@dataclass
class Fleet:
    """The database of the run and the environment its processes share."""

    engine: Engine
    env: dict[str, str]
    ctx: Context
    # Where the workers' output is kept.
    folder: Path


@pytest.fixture
def fleet(postgres_admin: Engine, tmp_path: Path) -> Iterator[Fleet]:
    """A fresh schema, migrated, which subprocesses reach through their URL's search_path."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with postgres_admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = in_schema(POSTGRES_URL, schema)
    config = tmp_path / "courtois.toml"
    config.write_text(CONFIG, encoding="utf-8")
    env = {
        **os.environ,
        "COURTOIS_CONFIG": str(config),
        "COURTOIS_DATABASE_URL": url,
        "COURTOIS_SECRET_KEY": SECRET,
    }
    engine = make_engine(url)
    try:
        migrate(engine)
        # The same settings the workers will read: the preview the members consent to is
        # the message the workers compose.
        yield Fleet(engine, env, Context(engine, load_settings(environ=env)), tmp_path)
    finally:
        engine.dispose()
        with postgres_admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def invite_everyone(ctx: Context, now: datetime) -> None:
    """Every member previews and consents to their hundred recipients, spread over many
    domains, through the same use cases as the API, four members at a time as concurrent
    requests would."""

    def one(m: int) -> None:
        member = f"m{m}"
        register_member(ctx, member, f"{member}@members.example", f"Member {m}", "en", now)
        emails = tuple(
            f"r{m}-{i}@d{(m * PER_MEMBER + i) % 97}.example.org" for i in range(PER_MEMBER)
        )
        preview = preview_invitations(ctx, member, PER_MEMBER, "", None, 0)
        request = InviteRequest(
            member, emails, "", None, 0, preview.preview_hash, ConsentInput(preview.consent_text)
        )
        invite(ctx, request, now)

    with ThreadPoolExecutor(4) as pool:
        # list() re-raises the first failure here.
        list(pool.map(one, range(MEMBERS)))


def start_worker(
    env: dict[str, str], at: datetime, folder: Path, name: str
) -> subprocess.Popen[bytes]:
    """`courtois worker --once --now AT --json`, its output kept in files."""
    with (folder / f"{name}.out").open("wb") as out, (folder / f"{name}.err").open("wb") as err:
        return subprocess.Popen(
            [COURTOIS, "worker", "--once", "--now", at.isoformat(), "--json"],
            env=env,
            stdout=out,
            stderr=err,
        )


def report_of(folder: Path, name: str) -> dict[str, Any]:
    """The pass report a worker printed."""
    lines = (folder / f"{name}.out").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1, (lines, (folder / f"{name}.err").read_text(encoding="utf-8"))
    report: dict[str, Any] = json.loads(lines[0])
    return report


def states(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(select(messages.c.state, func.count()).group_by(messages.c.state))
        return {str(state): int(count) for state, count in rows}


@dataclass
class Run:
    """What happened while the fleet ran, as the test measured it."""

    killed_after: int
    survivors_sent: list[int]
    seconds: float
    arrived: int
    workers_cpu: float
    server_cpu: float
    # Message states once the fleet was done, before the later pass.
    states: dict[str, int]


def run_fleet(
    fleet: Fleet, env: dict[str, str], at: datetime, handler: CountingHandler, port: int
) -> Run:
    """Start the workers together, kill the first one halfway, wait for the others."""
    folder = fleet.folder
    names = [f"worker{i}" for i in range(WORKERS)]
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started, own_cpu = time.perf_counter(), time.process_time()
    workers = [start_worker(env, at, folder, name) for name in names]
    try:
        killed_after = kill_one_midway(handler, workers[0], workers, port)
        for name, worker in zip(names[1:], workers[1:], strict=True):
            code = worker.wait(timeout=DEADLINE)
            assert code == 0, (folder / f"{name}.err").read_text(encoding="utf-8")
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    seconds = time.perf_counter() - started
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    # The victim died by the signal, as killed, and not before.
    assert workers[0].returncode == -signal.SIGKILL
    return Run(
        killed_after=killed_after,
        survivors_sent=[report_of(folder, name)["sent"] for name in names[1:]],
        seconds=seconds,
        arrived=handler.total,
        workers_cpu=children.ru_utime
        + children.ru_stime
        - children_before.ru_utime
        - children_before.ru_stime,
        # The server's thread, and this process's polling, while the workers ran.
        server_cpu=time.process_time() - own_cpu,
        states=states(fleet.engine),
    )


def kill_one_midway(
    handler: CountingHandler,
    victim: subprocess.Popen[bytes],
    workers: list[subprocess.Popen[bytes]],
    smtp_port: int,
) -> int:
    """Once half the messages arrived, SIGKILL the victim as the next message it sends
    arrives, before the server answers it; returns how many had arrived then."""
    deadline = time.monotonic() + DEADLINE
    killed: list[int] = []

    def spring() -> None:
        killed.append(handler.total)
        victim.kill()
        victim.wait()

    armed_at = 0.0
    while not killed:
        assert time.monotonic() < deadline, f"stuck at {handler.total} arrivals"
        assert victim.poll() is None or killed, f"the victim ended early: {victim.returncode}"
        for worker in workers[1:]:
            assert worker.poll() in (None, 0), f"a worker failed with {worker.returncode}"
        # Its connections to the server, read again now and then in case it opened others.
        if handler.total >= KILL_AT and time.monotonic() - armed_at > 0.2:
            ports = client_ports(victim.pid, smtp_port)
            if ports:
                handler.set_trap(ports, spring)
            armed_at = time.monotonic()
        time.sleep(0.01)
    return killed[0]


def later_pass(env: dict[str, str], at: datetime) -> dict[str, Any]:
    """What an operator runs once the dead worker's leases ran out: one pass, then exit."""
    done = subprocess.run(
        [COURTOIS, "worker", "--once", "--now", at.isoformat(), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def message_states(engine: Engine) -> dict[str, set[str]]:
    """Message ids by state, having checked that every invitation has exactly one message
    and that its state agrees with it: a sent message's invitation is sent, one left
    unknown waits (scheduled) for a person to resolve it."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(invitations.c.id, invitations.c.state, messages.c.id, messages.c.state).join(
                messages, messages.c.invitation_id == invitations.c.id, isouter=True
            )
        ).all()
    assert len(rows) == TOTAL
    assert len({row[0] for row in rows}) == TOTAL, "an invitation has more than one message"
    by_state: dict[str, set[str]] = defaultdict(set)
    for _invitation, invitation_state, message_id, message_state in rows:
        assert message_id is not None, "an invitation has no message"
        expected = {"sent": "sent", "unknown": "scheduled"}.get(message_state)
        assert invitation_state == expected, (message_id, message_state, invitation_state)
        by_state[message_state].add(message_id)
    return by_state


def test_four_workers_one_killed_midway_send_every_message_at_most_once(fleet: Fleet) -> None:
    started = time.perf_counter()
    consented = datetime.now(UTC)
    invite_everyone(fleet.ctx, consented)
    setup_seconds = time.perf_counter() - started
    assert states(fleet.engine) == {"scheduled": TOTAL}

    # Past the undo window; the leases taken then run out at `run_at + LEASE`.
    run_at = consented + timedelta(minutes=11)
    handler = CountingHandler()
    with counting_server(handler) as (smtp_url, smtp_port):
        env = {**fleet.env, "COURTOIS_SMTP_URL": smtp_url}
        run = run_fleet(fleet, env, run_at, handler, smtp_port)
        later = later_pass(env, run_at + LEASE + timedelta(minutes=1))
    total_seconds = time.perf_counter() - started
    assert KILL_AT <= run.killed_after < TOTAL

    # Never twice: every Message-ID arrived once.
    arrivals = handler.snapshot()
    duplicated = {key: count for key, count in arrivals.items() if count != 1}
    assert not duplicated, f"{len(duplicated)} messages arrived more than once"
    assert "" not in arrivals, "an arrival without a Message-ID"

    # Nothing lost: every invitation has its one message, every message is sent or unknown.
    by_state = message_states(fleet.engine)
    assert set(by_state) <= {"sent", "unknown"}, {k: len(v) for k, v in by_state.items()}
    sent, unknown = by_state["sent"], by_state["unknown"]

    # Everything marked sent arrived; everything that arrived is sent or unknown.
    arrived = set(arrivals)
    assert sent <= arrived, f"{len(sent - arrived)} marked sent never arrived"
    assert arrived <= sent | unknown, f"{len(arrived - sent - unknown)} arrived, marked neither"
    # The victim's open batch, and only that, became unknown at the later pass: at least the
    # message it had sent and never heard back about, which did arrive.
    assert later["unknown"] == len(unknown) == run.states.get("sending", 0)
    assert unknown & arrived

    # They worked side by side: each survivor sent a share, and so did the victim before it
    # died (what the store records as sent beyond the others' reports).
    victim_sent = len(sent) - sum(run.survivors_sent) - later["sent"]
    shares = [victim_sent, *run.survivors_sent]
    assert sum(1 for share in shares if share > 0) >= 3, shares

    print(
        f"\nworker fleet on PostgreSQL: {TOTAL} messages, {WORKERS} workers, one SIGKILLed "
        f"after {run.killed_after} arrivals; sent {len(sent)}, unknown {len(unknown)} "
        f"({len(unknown & arrived)} of them arrived), duplicates 0; shares {shares} "
        f"(victim first; the later pass sent {later['sent']}); setup {setup_seconds:.1f} s, "
        f"sending {run.seconds:.1f} s ({run.arrived / run.seconds:.0f} msg/s), "
        f"whole test {total_seconds:.1f} s; CPU while sending: workers "
        f"{run.workers_cpu:.1f} s, SMTP server {run.server_cpu:.1f} s"
    )
