"""bench/imports.py runs end to end on small files and prints every figure it promises.

It asserts no speed, which depends on the machine; it proves that the benchmark's files are
read in full by every contender (the bench itself stops if a count differs).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "imports.py"


def test_bench_imports_quick_run_prints_every_figure() -> None:
    env = {**os.environ}
    env.pop("PYTHONSTARTUP", None)
    result = subprocess.run(
        [sys.executable, str(BENCH), "--rows", "1500", "--cards", "200"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
        check=False,
    )
    output = result.stdout
    assert result.returncode == 0, result.stderr or output
    figure = (
        r"\s+[\d.]+ s cpu \(\s*[\d.]+ s wall\)\s+[\d,]+ (contacts|rows|cards)/s"
        r"  peak RSS\s+[\d.]+ MB$"
    )
    expected = [
        r"^courtois import bench: 1,500 CSV rows, 200 vCards; cpu .+; cores \d+; python 3\.",
        r"^csv: courtois reader \+ parse_address" + figure,
        r"^csv: courtois reader alone" + figure,
        r"^csv: csv module alone" + figure,
        r"^csv: csv module \+ parse_address \(floor\)" + figure,
        r"^csv ratio: courtois\+normalisation / bare csv = [\d.]+x \(target <= 3x: (met|MISSED)\)",
        r"^vcard: courtois reader \+ parse_address" + figure,
        r"^vcard: vobject.readComponents alone" + figure,
        r"^vcard ratio: vobject / \(courtois\+normalisation\) = [\d.]+x faster",
        r"^memory: courtois peak RSS csv [\d.]+ MB, vcard [\d.]+ MB \(target < 200 MB: met\)",
    ]
    for pattern in expected:
        assert re.search(pattern, output, re.MULTILINE), f"{pattern!r} not in:\n{output}"
