"""Requests per second and p99 latency of the host API under 16 concurrent clients.

Measured against `courtois serve` (one process, as started by operators, then two with
`--processes 2`) on SQLite and on PostgreSQL, beside a bare FastAPI endpoint that returns a
constant, served the same way in the same run (the ceiling of this machine, server and
client together):
- `POST /v1/members/{id}/invitations`, 10 new recipients each, consented to the previewed
  message, with an Idempotency-Key (as a careful platform sends it);
- `POST /u/TOKEN` with `List-Unsubscribe=One-Click` (RFC 8058), one recipient each.

Request n goes to member n % members, so the 16 requests in flight at any moment come from
16 different members, as on a real platform (requests of one member take that member's
row lock one after another; runs before this assignment sent ten requests in a row to one
member and measured that queue, not the server). There are enough members that none sends
more than INVITES_PER_MEMBER invitations, within the default sender cap.

The clients are a small keep-alive HTTP/1.1 loop on asyncio, lighter than a full client
library so that the ceiling measures the server more than the load generator. Each courtois
line is followed by the server's CPU per request (user and system time of the server and its
worker processes, read from /proc around the timed requests): on this 2-core machine, shared
with the clients and PostgreSQL, it moves less from run to run than the rate does. Run with
`.venv/bin/python bench/api.py [--requests 2000] [--processes 1 2] [--quick]`; PostgreSQL
is reached through COURTOIS_TEST_POSTGRES_URL (a fresh database is created there and
dropped).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from databases import postgres_database
from figures import Row, figure, write

from courtois.tokens import Scope, make_token

SECRET = "bench-secret-key-0123456789"
API_KEY = "bench-api-key-0123456789"
CLIENTS = 16
TARGET_SHARE = 25  # percent of the bare endpoint's rate
PER_INVITATION = 10
# The default sender cap is 100 a day: each member sends at most this many invitations.
INVITES_PER_MEMBER = 10
COURTOIS = str(Path(sys.executable).parent / "courtois")

Request = Callable[[int], tuple[str, bytes, str]]  # n -> (path, body, content type)
WARM = CLIENTS * 2
FIGURES: list[Row] = []  # what --json writes


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(root: int) -> float:
    """User and system CPU time used so far by process `root` and every live descendant
    (`courtois serve --processes N` serves from N children), from /proc; 0 elsewhere."""
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name (field 2) may hold spaces: split after its closing parenthesis.
            fields = entry.read_text().rpartition(")")[2].split()
        except OSError:  # gone meanwhile
            continue
        pid = int(entry.parent.name)
        parents[pid] = int(fields[1])
        used[pid] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    tree, added = {root}, True
    while added:
        found = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= found
        added = bool(found)
    return sum(used.get(pid, 0.0) for pid in tree)


@contextmanager
def server(
    command: list[str], env: dict[str, str], port: int, ready: str
) -> Iterator[tuple[str, int]]:
    """Start a server process and wait until `ready` answers; yields its base URL and pid."""
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
        try:
            deadline = time.monotonic() + 30
            while not answers(base + ready):
                if time.monotonic() > deadline or process.poll() is not None:
                    log.seek(0)
                    sys.stderr.write(log.read().decode(errors="replace"))
                    raise SystemExit(f"server did not start: {' '.join(command)}")
                time.sleep(0.1)
            yield base, process.pid
        finally:
            process.terminate()
            process.wait(timeout=10)


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code < 500
    except httpx.HTTPError:
        return False


async def one_client(
    port: int, requests: Iterator[int], make: Request, latencies: list[float], codes: list[int]
) -> None:
    """Keep-alive HTTP/1.1: send, read the answer, repeat while requests remain."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    auth = f"Authorization: Bearer {API_KEY}\r\n"
    for n in requests:
        path, body, kind = make(n)
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: {kind}\r\n"
            f"Idempotency-Key: bench-{n}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        started = time.perf_counter()
        writer.write(head.encode() + body)
        status_line = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - started)
        codes.append(int(status_line.split()[1]))
    writer.close()


@dataclass
class Result:
    rate: float
    p50_ms: float
    p99_ms: float
    codes: dict[int, int]
    server_cpu_ms: float | None = None  # per request, when the server's pid was given


def load(
    port: int, make: Request, total: int, first: int = 0, server_pid: int | None = None
) -> Result:
    """Requests `first` to `first + total` over CLIENTS connections: requests per second
    and latencies, and the server's CPU per request when its pid is given."""
    latencies: list[float] = []
    codes: list[int] = []
    shared = iter(range(first, first + total))

    async def run() -> float:
        started = time.perf_counter()
        await asyncio.gather(
            *(one_client(port, shared, make, latencies, codes) for _ in range(CLIENTS))
        )
        return time.perf_counter() - started

    cpu_before = cpu_seconds(server_pid) if server_pid is not None else 0.0
    elapsed = asyncio.run(run())
    cpu_ms = None
    if server_pid is not None:
        cpu_ms = (cpu_seconds(server_pid) - cpu_before) * 1000 / total
    ordered = sorted(latencies)
    return Result(
        rate=len(ordered) / elapsed,
        p50_ms=ordered[len(ordered) // 2] * 1000,
        p99_ms=ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        codes={code: codes.count(code) for code in sorted(set(codes))},
        server_cpu_ms=cpu_ms,
    )


def report(label: str, result: Result, ceiling: Result | None) -> None:
    """One line per measure; measured endpoints also say whether they reach the target."""
    line = (
        f"  {label:<58} {result.rate:7.1f} req/s  p50 {result.p50_ms:7.1f} ms  "
        f"p99 {result.p99_ms:7.1f} ms  statuses {result.codes}"
    )
    if ceiling is not None:
        share = 100 * result.rate / ceiling.rate
        verdict = "met" if share >= TARGET_SHARE else "BELOW target"
        line += f"  {share:.1f}% of bare, target >= {TARGET_SHARE}%: {verdict}"
    note = f"p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms"
    if result.server_cpu_ms is not None:
        line += f"\n    server CPU {result.server_cpu_ms:.2f} ms/request"
        note += f", server CPU {result.server_cpu_ms:.2f} ms/request"
    print(line)
    FIGURES.append(
        figure(
            label,
            result.rate,
            "req/s",
            baseline=None if ceiling is None else "bare FastAPI endpoint",
            baseline_value=None if ceiling is None else ceiling.rate,
            goal=None if ceiling is None else f">= {TARGET_SHARE}% of bare",
            met=None if ceiling is None else result.rate >= ceiling.rate * TARGET_SHARE / 100,
            note=note,
        )
    )


def seed(base: str, members: int) -> dict[str, str]:
    """Members (all named alike, so one preview fits all) and the preview they consent to."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {API_KEY}"}) as http:
        for i in range(members):
            body = {"id": f"m{i}", "email": f"m{i}@members.example", "name": "Member"}
            http.post("/v1/members", json=body).raise_for_status()
        emails = [f"probe{i}@example.org" for i in range(PER_INVITATION)]
        shown = http.post("/v1/members/m0/invitations/preview", json={"emails": emails})
        shown.raise_for_status()
    return shown.json()  # type: ignore[no-any-return]


def invitation_request(preview: dict[str, str], members: int) -> Request:
    """Request n: 10 new recipients for member n % members, so that consecutive requests,
    the ones in flight together, come from different members."""
    consent = {"text_shown": preview["consent_text"], "ip": "192.0.2.1", "user_agent": "bench"}

    def make(n: int) -> tuple[str, bytes, str]:
        emails = [f"r{n}-{i}@example.org" for i in range(PER_INVITATION)]
        body = {"emails": emails, "preview_hash": preview["preview_hash"], "consent": consent}
        path = f"/v1/members/m{n % members}/invitations"
        return path, json.dumps(body).encode(), "application/json"

    return make


def unsubscribe_request(tokens: list[str]) -> Request:
    def make(n: int) -> tuple[str, bytes, str]:
        return f"/u/{tokens[n]}", b"List-Unsubscribe=One-Click", "application/x-www-form-urlencoded"

    return make


def invitation_ids(base: str, members: int) -> list[str]:
    """Ids of the invitations made, to sign unsubscribe tokens for them."""
    found: list[str] = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {API_KEY}"}) as http:
        for i in range(members):
            page = http.get(f"/v1/members/m{i}/invitations", params={"limit": 500}).json()
            found.extend(item["id"] for item in page["items"])
    return found


def bench_engine(name: str, database_url: str, total: int, ceiling: Result, processes: int) -> None:
    env = {
        **os.environ,
        "COURTOIS_DATABASE_URL": database_url,
        "COURTOIS_SECRET_KEY": SECRET,
        "COURTOIS_API_KEY": API_KEY,
        "COURTOIS_PLATFORM_NAME": "Bench",
    }
    subprocess.run([COURTOIS, "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    port = free_port()
    # At most INVITES_PER_MEMBER requests each, and at least one member per client.
    members = max(CLIENTS, -(-(WARM + total) // INVITES_PER_MEMBER))
    command = [COURTOIS, "serve", "--port", str(port), "--processes", str(processes)]
    name = f"{name}, {processes} process{'es' if processes > 1 else ''}"
    with server(command, env, port, "/healthz") as (base, pid):
        preview = seed(base, members)
        load(port, invitation_request(preview, members), WARM)  # connections, caches
        invited = load(port, invitation_request(preview, members), total, WARM, pid)
        report(f"{name}: POST invitations ({PER_INVITATION} recipients)", invited, ceiling)
        ids = invitation_ids(base, members)
        tokens = [make_token(SECRET.encode(), Scope.UNSUBSCRIBE, i) for i in ids]
        count = min(len(tokens), total)
        clicked = load(port, unsubscribe_request(tokens), count, server_pid=pid)
        report(f"{name}: POST /u/TOKEN (one-click unsubscribe)", clicked, ceiling)


BARE_APP = """
from fastapi import FastAPI
app = FastAPI()
@app.post("/{rest:path}")
def constant() -> dict[str, bool]:
    return {"ok": True}
"""


def bench_bare(total: int) -> Result:
    with tempfile.TemporaryDirectory(prefix="courtois-bench-") as folder:
        Path(folder, "bare_app.py").write_text(BARE_APP, encoding="utf-8")
        port = free_port()
        command = [
            sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(port),
            "--no-access-log", "--no-server-header", "--log-level", "warning",
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": folder}
        with server(command, env, port, "/docs"):
            preview = {"consent_text": "x" * 120, "preview_hash": "0" * 64}
            load(port, invitation_request(preview, CLIENTS), CLIENTS * 20)
            return load(port, invitation_request(preview, CLIENTS), total * 4, first=CLIENTS * 20)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=2000, help="invitation requests")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run for tests")
    parser.add_argument(
        "--processes", type=int, nargs="+", default=[1, 2], help="`courtois serve --processes`"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    total = 64 if args.quick else args.requests
    print(f"courtois API bench: {CLIENTS} concurrent clients, {os.cpu_count()} cores")
    ceiling = bench_bare(total)
    report("bare FastAPI endpoint (constant answer)", ceiling, None)
    for processes in args.processes:
        with tempfile.TemporaryDirectory(prefix="courtois-bench-") as folder:
            url = f"sqlite:///{Path(folder) / 'bench.db'}"
            bench_engine("sqlite", url, total, ceiling, processes)
        with postgres_database() as url:
            bench_engine("postgresql", url, total, ceiling, processes)
    write(args.json, "api", FIGURES, clients=CLIENTS, requests=total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
