"""Running a script of bench/ as an operator would, for the tests that keep them working:
its own process, from the repository's root, its output kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_bench(script: str, *args: str) -> str:
    """What `python bench/<script> <args>` prints; fails the test when it exits non-zero."""
    env = {**os.environ}
    env.pop("PYTHONSTARTUP", None)
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr or result.stdout
    return result.stdout
