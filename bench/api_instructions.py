"""Instructions an API request costs the server, counted by valgrind's callgrind.

`bench/api.py` gives requests per second over real sockets, but on a shared machine of two
cores its figures move by up to a half from one run to the next (its bare endpoint alone
went from 1,611 to 2,956 requests/s within the same hour), so a change worth a tenth of a
request's CPU takes many interleaved runs to see. An instruction count does not move with
the machine's load: two runs of one tree differ by under 0.5%. It is not time (an
instruction of SQLite's C weighs as much as one of the interpreter's, a cache miss
nothing, and the kernel's work is not counted), so it ranks changes to the server's own
work; the throughput is still bench/api.py's to say.

What is counted: the app of `courtois serve` (`create_app` over a SQLite file, as
configured from the environment) answering, one after another, `--requests` calls of
`POST /v1/members/{id}/invitations` (10 new recipients each, with an Idempotency-Key), then
as many one-click unsubscribes (`POST /u/TOKEN`, RFC 8058's body), each from a member or
recipient of its own, as bench/api.py sends them. The requests go to the ASGI app in
process, so the HTTP server (uvicorn, httptools) is not counted; FastAPI, the thread pool
hop, courtois and SQLite are. Not counted either: start-up, the members' registration and
a warm-up of each kind. The child turns callgrind's instrumentation on around each kind
(`callgrind_control`, which reaches every thread) and dumps its count.

`--baseline SRC` counts another source tree in the same run, for example the code before a
change (`git archive REV --prefix=old/ | tar -x -C /tmp`, then `--baseline /tmp/old/src`),
and prints the ratio of the least counts. Each side runs `--rounds` times; both sides run
at once, one a core.

Needs valgrind (`apt-get install valgrind`). A run of 40 requests of each kind takes about
a minute under valgrind.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from figures import Row, figure, write
from source_trees import missing, source_trees

SECRET = "bench-secret-key-0123456789"
API_KEY = "bench-api-key-0123456789"
PER_INVITATION = 10
WARM = 10  # requests of each kind before counting
KINDS = ("invitation", "unsubscribe")
_TRIGGER = re.compile(r"^desc: Trigger: dump (\w+)$", re.MULTILINE)
_TOTALS = re.compile(r"^totals: (\d+)$", re.MULTILINE)


class InProcess:
    """ASGI calls to one app, with no server: the request's bytes as uvicorn hands them."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def post(self, path: str, body: bytes, kind: str, key: str | None = None) -> bytes:
        headers = [
            (b"host", b"127.0.0.1"),
            (b"authorization", f"Bearer {API_KEY}".encode()),
            (b"content-type", kind.encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        if key is not None:
            headers.append((b"idempotency-key", key.encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "scheme": "http",
            "server": ("127.0.0.1", 8000),
            "client": ("127.0.0.1", 50000),
            "headers": headers,
        }
        given = False
        status: list[int] = []
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal given
            if not given:
                given = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # the client never disconnects
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        answer = b"".join(chunks)
        if not status or status[0] >= 300:
            raise SystemExit(f"POST {path} answered {status}: {answer[:300]!r}")
        return answer


def callgrind(command: str, hint: str = "") -> None:
    """Tell the callgrind running this process to `command` (on, off, dump)."""
    option = {"on": ["-i", "on"], "off": ["-i", "off"], "dump": [f"--dump={hint}"]}[command]
    told = subprocess.run(
        ["callgrind_control", *option, str(os.getpid())], capture_output=True, text=True
    )
    if told.returncode != 0:
        raise SystemExit(f"callgrind_control {' '.join(option)}: {told.stderr or told.stdout}")


def child_run(folder: Path, requests: int) -> None:
    """Register members, warm up, then each kind of request counted on its own."""
    os.environ.update(
        COURTOIS_DATABASE_URL=f"sqlite:///{folder / 'bench.db'}",
        COURTOIS_SECRET_KEY=SECRET,
        COURTOIS_API_KEY=API_KEY,
        COURTOIS_PLATFORM_NAME="Bench",
    )
    courtois = str(Path(sys.executable).parent / "courtois")
    subprocess.run([courtois, "migrate"], check=True, stdout=subprocess.DEVNULL)
    from sqlalchemy import select

    from courtois.store.tables import invitations
    from courtois.tokens import Scope, make_token
    from courtois.web.asgi import app_factory

    app = app_factory()
    client = InProcess(app)
    as_json = "application/json"
    as_form = "application/x-www-form-urlencoded"
    total = WARM + requests

    async def run() -> None:
        for member in range(total):
            body = {"id": f"m{member}", "email": f"m{member}@members.example", "name": "Member"}
            await client.post("/v1/members", json.dumps(body).encode(), as_json)
        probe = {"emails": [f"probe{i}@example.org" for i in range(PER_INVITATION)]}
        shown = json.loads(
            await client.post(
                "/v1/members/m0/invitations/preview", json.dumps(probe).encode(), as_json
            )
        )
        consent = {"text_shown": shown["consent_text"], "ip": "192.0.2.1", "user_agent": "bench"}

        async def invite(n: int) -> None:
            emails = [f"r{n}-{i}@example.org" for i in range(PER_INVITATION)]
            body = {"emails": emails, "preview_hash": shown["preview_hash"], "consent": consent}
            path = f"/v1/members/m{n}/invitations"
            await client.post(path, json.dumps(body).encode(), as_json, key=f"bench-{n}")

        for n in range(WARM):
            await invite(n)
        callgrind("on")
        for n in range(WARM, total):
            await invite(n)
        callgrind("off")
        callgrind("dump", "invitation")

        with app.state.ctx.engine.connect() as connection:
            # As bench/api.py clicks: every invitation of each call in turn, so most clicks
            # also rewrite a stored answer that quotes the address (`scrub_answers`).
            ids = connection.execute(
                select(invitations.c.id).order_by(invitations.c.member_id, invitations.c.id)
            ).scalars()
            chosen = list(ids)[:total]
        tokens = [make_token(SECRET.encode(), Scope.UNSUBSCRIBE, i) for i in chosen]
        one_click = b"List-Unsubscribe=One-Click"
        for token in tokens[:WARM]:
            await client.post(f"/u/{token}", one_click, as_form)
        callgrind("on")
        for token in tokens[WARM:]:
            await client.post(f"/u/{token}", one_click, as_form)
        callgrind("off")
        callgrind("dump", "unsubscribe")

    asyncio.run(run())
    app.state.ctx.engine.dispose()


def count(source: Path, requests: int) -> dict[str, int]:
    """Instructions of each kind of request, with `source` as the code."""
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        env = {**os.environ, "PYTHONPATH": str(source), "PYTHONHASHSEED": "0"}
        me = [sys.executable, str(Path(__file__).resolve())]
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={folder / 'callgrind.out'}",
                f"--log-file={folder / 'callgrind.log'}",
                *me,
                "--phase",
                "run",
                "--folder",
                str(folder),
                "--requests",
                str(requests),
            ],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        found: dict[str, int] = {}
        for dump in folder.glob("callgrind.out.*"):
            text = dump.read_text(errors="replace")
            kind, totals = _TRIGGER.search(text), _TOTALS.search(text)
            if kind is not None and totals is not None:
                found[kind.group(1)] = int(totals.group(1))
        if set(found) != set(KINDS):
            raise SystemExit(f"callgrind dumped {sorted(found)}, not {list(KINDS)}")
        return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40, help="counted, of each kind")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each source tree")
    parser.add_argument("--baseline", type=Path, help="another source tree (its src folder)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--phase", choices=["run"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase == "run":
        child_run(args.folder, args.requests)
        return 0
    if missing(("valgrind", "callgrind_control"), "valgrind"):
        return 2
    sources = source_trees(args.baseline)
    print(
        f"{args.requests} requests of each kind, one after another, in process, SQLite; "
        f"{args.rounds} round(s) of each source tree"
    )
    per_request: dict[tuple[str, str], list[float]] = {}
    jobs = [(label, src) for _ in range(args.rounds) for label, src in sources.items()]
    with ThreadPoolExecutor(max_workers=2) as pool:
        for label, counted in pool.map(lambda job: (job[0], count(job[1], args.requests)), jobs):
            for kind, instructions in counted.items():
                per_request.setdefault((label, kind), []).append(instructions / args.requests)
    rows: list[Row] = []
    for kind in KINDS:
        mine = min(per_request[("this tree", kind)])
        for label in sources:
            values = per_request[(label, kind)]
            spread = f" ({min(values):,.0f} to {max(values):,.0f})" if len(values) > 1 else ""
            print(f"{kind}, {label}: {min(values):,.0f} instructions a request{spread}")
        base = min(per_request[("baseline", kind)]) if args.baseline is not None else None
        if base is not None:
            print(f"{kind}, this tree / baseline: {mine / base:.3f}")
        rows.append(
            figure(
                f"API {kind} [sqlite, in process], instructions",
                mine,
                "instructions/request",
                baseline="baseline source tree" if base is not None else None,
                baseline_value=base,
            )
        )
    write(args.json, "api_instructions", rows, requests=args.requests, rounds=args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
