"""Seeding a libFuzzer corpus folder with the project's own samples."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def seed(argv: list[str], *folders: str) -> None:
    """Copy the samples of `folders` (under the repository) into the first corpus folder
    named on the command line, if it is empty, so that fuzzing starts from real files (a
    file named instead is an input to run once, as libFuzzer does)."""
    corpus = next((Path(a) for a in argv[1:] if not a.startswith("-")), None)
    if corpus is None or corpus.is_file() or (corpus.is_dir() and any(corpus.iterdir())):
        return
    corpus.mkdir(parents=True, exist_ok=True)
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix not in (".json", ".md"):
                shutil.copy(path, corpus / f"{path.parent.name}-{path.name}")
