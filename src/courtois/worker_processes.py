"""`courtois worker --processes N`: worker passes in N processes, one per core.

Composing and DKIM-signing are CPU work under Python's global lock, so one process uses one
core. Each process takes its own share of the recipients (a shard, by their digest): two
processes never decide for the same inbox nor claim the same message, on SQLite (one
writer at a time) as on PostgreSQL, and each still commits its claims before anything
leaves. The first shard also does what every pass does once (leases, expiries, purges,
webhooks).

Processes are started with `spawn`, so none inherits another's database connections; each
reads the configuration as the parent did. Each asks first to stop with its parent
(`parent_death.die_with_parent`): a parent killed outright (SIGKILL, the OOM killer) can
tell them nothing, and they went on passing, or waited for work forever. On that SIGTERM
a process of `worker --processes N` finishes its pass, as when told to stop; one of
`worker --once --processes N` stops at once, as a killed worker does (what it had claimed
turns `unknown` when its lease runs out, never sent twice).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from multiprocessing import get_context
from multiprocessing.connection import wait
from types import FrameType
from typing import Any

from courtois.bootstrap import bootstrap, make_transport
from courtois.parent_death import die_with_parent
from courtois.services.worker import PassReport, Shard, run_pass

MAX_PROCESSES = 64


def check_processes(count: int) -> None:
    """Refuse a count that cannot be split into shards."""
    if not 1 <= count <= MAX_PROCESSES:
        raise ValueError(f"--processes must be between 1 and {MAX_PROCESSES}")


def one_pass_in_processes(count: int, now: datetime) -> dict[str, Any]:
    """One pass of every shard, each in its own process; the reports added up."""
    check_processes(count)
    with worker_pool(count) as pool:
        futures = [pool.submit(_one_pass, Shard(i, count), now) for i in range(count)]
        reports = [future.result() for future in futures]
    return added(reports)


def worker_pool(count: int) -> ProcessPoolExecutor:
    """`count` processes, started with `spawn`, each stopping with this one."""
    return ProcessPoolExecutor(
        max_workers=count,
        mp_context=get_context("spawn"),
        initializer=stop_with_parent,
        initargs=(os.getpid(),),
    )


def stop_with_parent(parent_pid: int) -> None:
    """A child's first act: ask to stop with its parent. A kernel that refuses is told on
    stderr, not fatal: the process still works, and stopping its whole process group
    stops it."""
    try:
        die_with_parent(parent_pid)
    except OSError as error:
        sys.stderr.write(
            f"courtois: worker process {os.getpid()} could not ask to stop with its parent "
            f"(prctl: {error.strerror}); stop the whole process group to stop it\n"
        )
        sys.stderr.flush()


def _shard_process(parent_pid: int, serve: Callable[[Shard], None], shard: Shard) -> None:
    """One process of `serve_in_processes`: stop with the parent, then serve the shard."""
    stop_with_parent(parent_pid)
    serve(shard)


def added(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts summed over shards, and so are counts by kind (problems; purges, which only
    the first shard does)."""
    total = PassReport().as_dict()
    for report in reports:
        for key, value in report.items():
            if isinstance(value, int):
                total[key] += value
            elif isinstance(value, dict):
                for kind, count in value.items():
                    total[key][kind] = total[key].get(kind, 0) + count
            elif value:
                total[key] = value
    return total


def serve_in_processes(count: int, serve: Callable[[Shard], None]) -> int:
    """Run `serve(shard)` in `count` processes until a signal stops them (each finishes
    its pass first) or one of them ends; returns the exit code (non-zero if any failed).
    `serve` must be importable by name, as `spawn` requires."""
    check_processes(count)
    spawn = get_context("spawn")
    parent = os.getpid()
    children = [
        spawn.Process(
            target=_shard_process,
            args=(parent, serve, Shard(i, count)),
            name=f"courtois-worker-{i}",
        )
        for i in range(count)
    ]
    signalled: set[int] = set()
    stopping: list[int] = []

    def stop(number: int, _frame: FrameType | None) -> None:
        stopping.append(number)
        for child in children:
            if child.pid is not None and child.pid not in signalled and child.is_alive():
                signalled.add(child.pid)
                os.kill(child.pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for child in children:
            if not stopping:
                child.start()
        started = [child for child in children if child.pid is not None]
        # When one ends (stopped, or failed), the others are told to stop too.
        if started:
            wait([child.sentinel for child in started])
        stop(signal.SIGTERM, None)
        for child in started:
            child.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    # A child told to stop before it could listen for the signal (still starting, so
    # holding no claim) ends by it: that is a stop, not a failure.
    codes = [
        0 if child.exitcode == -signal.SIGTERM and child.pid in signalled else child.exitcode
        for child in started
    ]
    return max((abs(code or 0) for code in codes), default=0)


def _one_pass(shard: Shard, now: datetime) -> dict[str, Any]:
    ctx = bootstrap()
    try:
        return run_pass(ctx, now, make_transport(ctx.settings), shard=shard).as_dict()
    finally:
        ctx.engine.dispose()
