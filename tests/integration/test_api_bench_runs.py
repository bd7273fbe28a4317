"""bench/api.py runs end to end (`--quick`, one server process) against `courtois serve`
on both engines, and every one of its concurrent requests succeeds.

It asserts no speed, which depends on the machine.
"""

from __future__ import annotations

import re

import pytest
from bench_runs import run_bench


@pytest.mark.postgres
def test_bench_api_quick_prints_every_figure_and_nothing_fails() -> None:
    output = run_bench("api.py", "--quick", "--processes", "1")
    number = r"[\d.]+ req/s  p50 +[\d.]+ ms  p99 +[\d.]+ ms"
    assert re.search(
        rf"^  bare FastAPI endpoint .+ {number}  statuses \{{200: 256\}}$", output, re.M
    )
    for engine in ("sqlite", "postgresql"):
        for what, status, count in (("POST invitations", 201, 64), ("POST /u/TOKEN", 200, 64)):
            pattern = (
                rf"^  {engine}, 1 process: {re.escape(what)}.+ {number}  "
                rf"statuses \{{{status}: {count}\}}  [\d.]+% of bare, target >= 25%: "
                r"(met|BELOW target)$"
            )
            assert re.search(pattern, output, re.M), f"{pattern!r} not in:\n{output}"
