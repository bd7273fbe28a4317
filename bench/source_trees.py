"""What the instruction counters (`delivery_instructions.py`, `api_instructions.py`) share:
the source trees they count, and the tools they need before counting anything."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

SOURCE = Path(__file__).resolve().parent.parent / "src"


def missing(tools: tuple[str, ...], packages: str) -> bool:
    """Whether a tool is missing; says which, and the Debian packages that bring them."""
    absent = [tool for tool in tools if shutil.which(tool) is None]
    if absent:
        print(f"not found: {', '.join(absent)} (apt-get install {packages})", file=sys.stderr)
    return bool(absent)


def source_trees(baseline: Path | None) -> dict[str, Path]:
    """This tree's source folder, and the baseline's when one is given, by label."""
    trees = {"this tree": SOURCE}
    if baseline is not None:
        trees["baseline"] = baseline.resolve()
    return trees
