"""The atheris harnesses of fuzz/ run for a bounded time and find nothing.

Both run at once, each for COURTOIS_FUZZ_SECONDS (default 10), from a fresh corpus seeded
with the project's samples; an input that raises, breaks a property or takes more than
10 seconds makes libFuzzer stop with a crash file and a non-zero exit.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fuzz_support import FUZZ_SECONDS

ROOT = Path(__file__).resolve().parents[2]
HARNESSES = ("importers", "bounces")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, subprocess.Popen[str]]]:
    started = {}
    for name in HARNESSES:
        folder = tmp_path_factory.mktemp(f"fuzz-{name}")
        started[name] = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "fuzz" / f"{name}.py"),
                f"-max_total_time={FUZZ_SECONDS:g}",
                "-timeout=10",
                "-rss_limit_mb=2048",
                f"-artifact_prefix={folder}/",
                str(folder / "corpus"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    yield started
    for process in started.values():
        if process.poll() is None:
            process.kill()
        process.communicate()


@pytest.mark.parametrize("name", HARNESSES)
def test_harness_finds_no_crash(runs: dict[str, subprocess.Popen[str]], name: str) -> None:
    output, _ = runs[name].communicate(timeout=FUZZ_SECONDS * 4 + 120)
    assert runs[name].returncode == 0, output[-4000:]
    assert "Done " in output  # libFuzzer ran and ended by its time limit
