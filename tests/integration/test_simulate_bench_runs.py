"""bench/simulate.py runs end to end (`--quick`, both engines, with `--since-days`) and
prints every figure it promises. It asserts no speed, which depends on the machine."""

from __future__ import annotations

import re

import pytest
from bench_runs import run_bench


@pytest.mark.postgres
def test_bench_simulate_quick_prints_every_figure() -> None:
    output = run_bench("simulate.py", "--quick", "--postgres", "--since-days", "90")
    found = re.search(r"^generated \[sqlite\]: ([\d,]+) ledger entries in ", output, re.M)
    assert found is not None, output
    entries = int(found.group(1).replace(",", ""))
    assert 15_000 <= entries <= 25_000
    expected = [r"^machine: cpu .+; cores \d+; python 3\.\d+\.\d+; sqlite 3\.\d+\.\d+$"]
    for engine in ("sqlite", "postgresql"):
        expected += [
            rf"^replay \[{engine}\]: [\d.]+ s for {found.group(1)} ledger entries "
            r"\([\d,]+ entries/s; [\d,]+ replay events, [\d,]+ events/s\); "
            r"peak memory [\d,]+ MiB \(-?[\d,]+ MiB above the process before the replay\)$",
            rf"^  \[{engine}\] decisions history/current/new [\d,]+/[\d,]+/[\d,]+; "
            r"emails [\d,]+/[\d,]+/[\d,]+; replay gap [\d.]+%$",
            rf"^replay \[{engine}, since the last 90 days\]: [\d.]+ s for the span and its "
            r"warm-up \([\d,]+ replay events",
        ]
    for pattern in expected:
        assert re.search(pattern, output, re.MULTILINE), f"{pattern!r} not in:\n{output}"
    # Both engines read the same generated history, so both replays agree to the unit.
    lines = re.findall(r"^  \[(sqlite|postgresql)\] (decisions .+)$", output, re.MULTILINE)
    assert dict(lines)["sqlite"] == dict(lines)["postgresql"]
