"""Instructions a message costs the delivery worker, counted by valgrind's callgrind.

`bench/delivery.py` gives the throughput, but on a shared machine of two cores its figures
move by up to 20% from one minute to the next, so a change worth 2% of the worker's CPU
cannot be told from the noise without dozens of interleaved runs. An instruction count
does not move with the machine's load: single runs of one tree differ by up to 2.6% (the
SMTP replies' timing changes what the event loop does), the least of three by up to 1.3%,
whatever else the machine runs. It is not time (an instruction of SQLite's C weighs as
much as one of the interpreter's, a cache miss nothing), so it ranks changes to the
worker's own work; the throughput is still bench/delivery.py's to say.

What is counted: the passes of one worker process (claim, policy re-check, composition,
DKIM signing with Ed25519, SMTP to Postfix's `smtp-sink`, state writes) until nothing is
due, over a SQLite outbox of `--messages` invitations, `--per-member` from each member, as
bench/delivery.py prepares it. Not counted: start-up, imports, the outbox's preparation,
or the sink. The passes run inside a call of `functools.reduce`, a C function, and
callgrind is told to count only within that function (`--toggle-collect`).

`--baseline SRC` counts another source tree in the same run, for example the code before a
change (`git archive REV --prefix=old/ | tar -x -C /tmp`, then `--baseline /tmp/old/src`),
and prints the ratio of the least counts. Each side runs `--rounds` times; both sides run
at once, one a core.

Needs valgrind (`apt-get install valgrind`) and Debian's postfix package for smtp-sink.
A run of 400 messages takes about a minute and a half under valgrind.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from delivery import bench_settings, dkim_key, prepare, smtp_sink, warm_up
from figures import Row, figure, write
from source_trees import missing, source_trees

# The C function the passes run inside, and the only one callgrind counts within.
TOGGLE = "functools_reduce"
_COLLECTED = re.compile(r"Collected : (\d+)")


def child_prepare(folder: Path, messages: int, per_member: int) -> None:
    """The outbox, made by the source tree under test (its own migrations and previews)."""
    key = (folder / "dkim-ed25519.pem",)
    ctx, _ = prepare(f"sqlite:///{folder / 'bench.db'}", messages, key, per_member)
    ctx.engine.dispose()


def child_run(folder: Path, port: int, messages: int) -> None:
    """One worker's passes until nothing is due, inside `functools.reduce` (counted)."""
    from courtois.delivery.smtp import SmtpTransport, parse_smtp_url
    from courtois.services.context import Context
    from courtois.services.worker import run_pass
    from courtois.store.engine import make_engine

    settings = bench_settings(f"sqlite:///{folder / 'bench.db'}", (folder / "dkim-ed25519.pem",))
    ctx = Context(make_engine(settings.database_url), settings)
    smtp = replace(
        parse_smtp_url(f"smtp://127.0.0.1:{port}"), connections=8, per_domain_per_second=10_000
    )
    transport = SmtpTransport(smtp)
    warm_up(settings)

    def passes(total: int, _: object) -> int:
        while True:
            sent = run_pass(ctx, datetime.now(UTC), transport).sent
            total += sent
            if sent == 0:
                return total

    total = functools.reduce(passes, [None], 0)
    ctx.engine.dispose()
    if total != messages:
        raise SystemExit(f"the worker sent {total} of {messages} messages")


def count(source: Path, messages: int, per_member: int, port: int, key: Path) -> int:
    """Instructions of one worker's passes over a fresh outbox, with `source` as the code."""
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        shutil.copy(key, folder / "dkim-ed25519.pem")
        env = {**os.environ, "PYTHONPATH": str(source), "PYTHONHASHSEED": "0"}
        me = [sys.executable, str(Path(__file__).resolve())]
        common = ["--folder", str(folder), "--messages", str(messages)]
        subprocess.run(
            [*me, "--phase", "prepare", *common, "--per-member", str(per_member)],
            env=env,
            check=True,
        )
        log = folder / "callgrind.log"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--toggle-collect={TOGGLE}",
                f"--callgrind-out-file={folder / 'callgrind.out'}",
                f"--log-file={log}",
                *me,
                "--phase",
                "run",
                *common,
                "--port",
                str(port),
            ],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        found = _COLLECTED.search(log.read_text())
        if found is None:
            raise SystemExit(f"callgrind printed no count: {log.read_text()[-500:]}")
        return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--per-member", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=1, help="runs of each source tree")
    parser.add_argument("--baseline", type=Path, help="another source tree (its src folder)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--phase", choices=["prepare", "run"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase == "prepare":
        child_prepare(args.folder, args.messages, args.per_member)
        return 0
    if args.phase == "run":
        child_run(args.folder, args.port, args.messages)
        return 0
    if missing(("valgrind", "smtp-sink"), "valgrind postfix"):
        return 2
    sources = source_trees(args.baseline)
    print(
        f"{args.messages} messages, {args.per_member} invitations a member, one worker process, "
        f"Ed25519, SQLite; {args.rounds} round(s) of each source tree"
    )
    per_message: dict[str, list[float]] = {name: [] for name in sources}
    with tempfile.TemporaryDirectory() as name, smtp_sink() as port:
        keys = dkim_key(Path(name), "ed25519")
        if keys is None:
            raise SystemExit("openssl is needed to make the DKIM key")
        jobs = [(label, src) for _ in range(args.rounds) for label, src in sources.items()]
        with ThreadPoolExecutor(max_workers=2) as pool:
            counts = pool.map(
                lambda job: (
                    job[0],
                    count(job[1], args.messages, args.per_member, port, keys[0]),
                ),
                jobs,
            )
            for label, instructions in counts:
                per_message[label].append(instructions / args.messages)
    rows: list[Row] = []
    for label, values in per_message.items():
        spread = f"{min(values):,.0f} to {max(values):,.0f}" if len(values) > 1 else ""
        print(f"{label}: {min(values):,.0f} instructions a message {spread}".rstrip())
    mine = min(per_message["this tree"])
    base = min(per_message["baseline"]) if "baseline" in per_message else None
    if base is not None:
        print(f"this tree / baseline: {mine / base:.3f}")
    rows.append(
        figure(
            f"delivery worker [sqlite, {args.per_member} a member], instructions",
            mine,
            "instructions/message",
            baseline="baseline source tree" if base is not None else None,
            baseline_value=base,
        )
    )
    write(
        args.json,
        "delivery_instructions",
        rows,
        messages=args.messages,
        per_member=args.per_member,
        rounds=args.rounds,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
