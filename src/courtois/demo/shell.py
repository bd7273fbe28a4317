"""How the demo's printed commands name `courtois`, so they run as printed.

`make demo` installs courtois into `.venv/bin`, which is on nobody's PATH unless the venv
is activated: a printed `courtois invite ...` would then fail with "command not found".
The commands name the running executable by its path instead, unless `courtois` on PATH
is that very executable.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

NAME = "courtois"


def courtois_command(search_path: str | None = None) -> str:
    """`courtois` when that name, looked up on `search_path` (PATH by default), finds the
    running executable; otherwise that executable's absolute path, quoted for a shell."""
    running = running_executable()
    if running is None:
        return NAME
    found = shutil.which(NAME, path=search_path)
    if found is not None and _same_file(Path(found), running):
        return NAME
    return shlex.quote(str(running))


def running_executable() -> Path | None:
    """The `courtois` script this process runs from (its `argv[0]`), or the one installed
    beside its Python (the demo started otherwise, as tests do); None when neither is."""
    for candidate in (Path(sys.argv[0]), Path(sys.executable).parent / NAME):
        if candidate.name == NAME and candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate.absolute()
    return None


def _same_file(one: Path, other: Path) -> bool:
    try:
        return one.samefile(other)
    except OSError:
        return False
