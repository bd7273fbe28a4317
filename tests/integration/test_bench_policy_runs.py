"""bench/policy.py runs end to end (`--quick`) and prints every figure it promises.

This proves the benchmark works on both engines; it asserts no speed, which depends on the
machine.
"""

from __future__ import annotations

import re

import pytest
from bench_runs import run_bench

RECIPIENTS = 200  # what --quick invites in each run


@pytest.mark.postgres
def test_bench_policy_quick_prints_every_figure() -> None:
    output = run_bench("policy.py", "--quick")

    expected = [
        r"^machine: cpu .+; cores \d+ .*; python 3\.\d+\.\d+ .*; sqlite 3\.\d+\.\d+; "
        r"postgresql \d+",
        r"^pure set: 200 distinct \(candidate, facts\) pairs",
        r"^pure chain: [\d,]+ evaluations/s .* target >= 50,000/s: (met|BELOW target)$",
        r"^  sender-quota +[\d.]+ us +[\d.]+%$",
        r"^pure chain by sender's messages in the last 7 days: ",
    ]
    for engine in ("sqlite", "postgresql"):
        expected += [
            rf"^stored invite \[{engine}\]: best [\d,]+ decisions/s, median [\d,]+ decisions/s "
            rf"over 3 runs of {RECIPIENTS} recipients .* target >= 5,000/s: (met|BELOW target)$",
            rf"^  outcomes \[{engine}\]: allow \d+, defer \d+, deny \d+; "
            r"deny verdicts by rule: .+; defer verdicts by rule: .+$",
            rf"^  stored \[{engine}\]: {RECIPIENTS} decision rows with 2,000 verdicts; ",
        ]
    for pattern in expected:
        assert re.search(pattern, output, re.MULTILINE), f"{pattern!r} not in:\n{output}"

    # Every recipient got exactly one decision on each engine.
    for engine in ("sqlite", "postgresql"):
        found = re.search(
            rf"^  outcomes \[{engine}\]: allow (\d+), defer (\d+), deny (\d+);",
            output,
            re.MULTILINE,
        )
        assert found is not None
        assert sum(int(n) for n in found.groups()) == RECIPIENTS
