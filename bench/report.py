"""Run every benchmark and regenerate bench/README.md: one table of their latest figures,
each against its baseline, with the machine, its load, the date and the exact command.

    .venv/bin/python bench/report.py [--quick] [--only NAME ...] [--output FILE]

Each bench runs in its own process with `--json`, one after the other, at its default size
(or the smaller one `--quick` states); what it prints goes to this script's output as it
comes. A bench that cannot run here (delivery without Postfix's smtp-sink and smtp-source)
or that fails is named in the table with the reason, and the others still run. Figures
from a busy machine are slower than the code: the load average is given at the start and
after each bench.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from figures import cpu_model

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
PYTHON = (
    os.path.relpath(sys.executable, ROOT)
    if Path(sys.executable).is_relative_to(ROOT)
    else sys.executable
)


@dataclass(frozen=True)
class Bench:
    name: str
    script: str
    args: tuple[str, ...]
    quick: tuple[str, ...]
    what: str
    needs: tuple[str, ...] = ()


SUITE = (
    Bench("policy", "policy.py", (), ("--quick",), "policy decisions: pure chain, stored invite"),
    Bench(
        "imports",
        "imports.py",
        (),
        ("--rows", "20000", "--cards", "2000"),
        "address-book readers against the csv module and vobject",
    ),
    Bench("bounces", "bounces.py", (), (), "bounce classifier on the 557-message corpus"),
    Bench(
        "delivery",
        "delivery.py",
        (),
        ("--quick",),
        "worker pipeline into Postfix's smtp-sink",
        needs=("smtp-sink", "smtp-source"),
    ),
    Bench("api", "api.py", (), ("--quick",), "host API under 16 clients, against bare FastAPI"),
    Bench(
        "simulate",
        "simulate.py",
        ("--postgres",),
        ("--quick", "--postgres"),
        "`courtois simulate` replaying a year of ledger",
    ),
    Bench(
        "load",
        "load.py",
        (),
        ("--seconds", "10"),
        "mixed load on `serve --processes 2` + worker, then every invariant",
    ),
)


@dataclass
class Outcome:
    bench: Bench
    command: str
    seconds: float = 0.0
    code: int | None = None
    problem: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


def run(bench: Bench, quick: bool, folder: Path) -> Outcome:
    """One bench in its own process; its output passes through, its figures are read back."""
    args = bench.quick if quick else bench.args
    shown = [PYTHON, f"bench/{bench.script}", *args]
    outcome = Outcome(bench, shlex.join(shown))
    missing = [tool for tool in bench.needs if shutil.which(tool) is None]
    if missing:
        tools = " and ".join(missing)
        outcome.problem = f"not run: {tools} not installed (apt-get install postfix)"
        print(f"== {bench.name}: {outcome.problem}", flush=True)
        return outcome
    figures = folder / f"{bench.name}.json"
    print(f"== {bench.name}: {outcome.command}", flush=True)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(HERE / bench.script), *args, "--json", str(figures)],
        cwd=ROOT,
        check=False,
        stderr=subprocess.PIPE,
        text=True,
    )
    outcome.seconds = time.perf_counter() - started
    outcome.code = done.returncode
    sys.stderr.write(done.stderr)
    if figures.exists():
        outcome.data = json.loads(figures.read_text(encoding="utf-8"))
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        outcome.problem = f"exit {done.returncode}: {last}"
    return outcome


def number(value: float | None, unit: str = "") -> str:
    if value is None:
        return ""
    if unit == "%":
        return f"{value:.1f}%"
    if float(value).is_integer():
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def cell(text: Any) -> str:
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")


def table_rows(outcome: Outcome) -> list[str]:
    name = outcome.bench.name
    figures = outcome.data.get("figures", [])
    if not figures:
        return [f"| {name} | {cell(outcome.problem or 'no figures')} | | | | | |"]
    lines = []
    for row in figures:
        base, ratio = row.get("baseline_value"), ""
        if base:
            ratio = f"{row['value'] / base:.2f}x"
        met = {True: "met", False: "**missed**", None: ""}[row.get("met")]
        unit = "" if row["unit"] == "%" else f" {row['unit']}"
        value = number(row["value"], row["unit"]) + unit
        baseline = f"{cell(row.get('baseline'))} {number(base, row['unit'])}".strip()
        goal = " ".join(filter(None, [cell(row.get("goal")), met]))
        lines.append(
            f"| {name} | {cell(row['figure'])} | {value} | {baseline} | {ratio} | {goal} | "
            f"{cell(row.get('note'))} |"
        )
    if outcome.problem:
        lines.append(f"| {name} | {cell(outcome.problem)} | | | | | |")
    return lines


def readme(outcomes: list[Outcome], machine: str, started: str, command: str) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Generated by `bench/report.py` (`make bench-report`): every benchmark's latest "
        "figures, each against its baseline (a plain-library reference measured in the same "
        "run, or the stated target). Ratio = value / baseline. Do not edit by hand: run the "
        "command below again.",
        "",
        f"- **Started**: {started}",
        f"- **Machine**: {machine}",
        f"- **Command**: `{command}`",
        "",
        "Figures from a shared or busy machine are lower than the code allows: compare the "
        "load average with the core count before comparing runs.",
        "",
        "| Bench | Figure | Value | Baseline | Ratio | Goal | Note |",
        "|---|---|---|---|---|---|---|",
    ]
    for outcome in outcomes:
        lines += table_rows(outcome)
    lines += [
        "",
        "## Runs",
        "",
        "| Bench | What | Command | Took | Load average after |",
        "|---|---|---|---|---|",
    ]
    for outcome in outcomes:
        load = outcome.data.get("load_average_at_end")
        took = f"{outcome.seconds:.0f} s" if outcome.code is not None else "not run"
        lines.append(
            f"| {outcome.bench.name} | {cell(outcome.bench.what)} | `{outcome.command}` | "
            f"{took} | {'' if load is None else f'{load:.2f}'} |"
        )
    lines += [
        "",
        "Each script prints more than the table holds (per-rule shares, memory, statuses, "
        "every invariant checked); run it alone to see it. Each also takes `--json FILE`.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="the smaller sizes, for a smoke run")
    parser.add_argument("--only", nargs="+", choices=[b.name for b in SUITE], help="these benches")
    parser.add_argument("--output", type=Path, default=HERE / "README.md")
    args = parser.parse_args(argv)
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    load = os.getloadavg()
    machine = (
        f"{cpu_model()}; {cores} cores ({usable} usable); load average at start "
        f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1 / 5 / 15 min); "
        f"Python {platform.python_version()}; {platform.system()} {platform.release()}"
    )
    started = time.strftime("%Y-%m-%d %H:%M %Z")
    given = argv if argv is not None else sys.argv[1:]
    command = shlex.join([PYTHON, "bench/report.py", *given])
    print(f"machine: {machine}", flush=True)
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="courtois-bench-report-") as folder:
        for bench in SUITE:
            if args.only and bench.name not in args.only:
                continue
            outcomes.append(run(bench, args.quick, Path(folder)))
    args.output.write_text(readme(outcomes, machine, started, command), encoding="utf-8")
    print(f"written: {args.output}")
    failed = [o.bench.name for o in outcomes if o.problem and o.code is not None]
    if failed:
        print(f"benches that failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
