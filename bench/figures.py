"""The figures a bench script prints, also written as JSON (`--json FILE`) for
bench/report.py, which puts every benchmark's latest figures into one table.

One row per figure: its value and unit, and, where the script measures or states one, the
baseline it is read against (a plain-library reference measured in the same run, or a
stated target), with what counts as good.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

Row = dict[str, Any]


def figure(
    name: str,
    value: float,
    unit: str,
    *,
    baseline: str | None = None,
    baseline_value: float | None = None,
    goal: str | None = None,
    met: bool | None = None,
    note: str | None = None,
) -> Row:
    """One row: `value / baseline_value` is the ratio the table shows."""
    return {
        "figure": name,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "baseline_value": baseline_value,
        "goal": goal,
        "met": met,
        "note": note,
    }


def write(path: Path | None, bench: str, rows: list[Row], **extra: Any) -> None:
    """Write the rows, with when and under what load they were measured; nothing if no path."""
    if path is None:
        return
    data = {
        "bench": bench,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "load_average_at_end": os.getloadavg()[0],
        **extra,
        "figures": rows,
    }
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def cpu_model() -> str:
    """The processor's name, for the machine line every bench prints."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
