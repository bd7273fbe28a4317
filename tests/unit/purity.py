"""Running code in a fresh interpreter whose import system refuses the adapter libraries:
how the pure parts (domain, policy, simulation) prove they import no framework, driver or
socket. A fresh interpreter, so that modules other tests imported cannot hide an import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
BLOCKED = ("sqlalchemy", "fastapi", "aiosmtplib", "psycopg", "socket", "alembic", "typer", "dns")

_BEFORE = r"""
import importlib
import importlib.abc
import json
import pkgutil
import sys

BLOCKED = frozenset(sys.argv[1].split(","))
WHAT = sys.argv[2]


class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ImportError(f"{WHAT} must not import {name}")
        return None


already = sorted(name for name in sys.modules if name.partition(".")[0] in BLOCKED)
if already:
    raise SystemExit(f"blocked modules loaded before the test started: {already}")
sys.meta_path.insert(0, Refuse())

# The blocker works: this must fail.
try:
    import sqlalchemy  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("the import blocker does not work")

imported = []
"""

_AFTER = r"""
leaked = sorted(name for name in sys.modules if name.partition(".")[0] in BLOCKED)
if leaked:
    raise SystemExit(f"blocked modules were loaded: {leaked}")
print(json.dumps(imported))
"""


def imported_without_adapters(body: str, what: str) -> set[str]:
    """Run `body` (which appends each module it imports to `imported`) with the adapter
    libraries refused; the modules it imported. Fails the test if anything was refused."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    env.pop("PYTHONSTARTUP", None)
    result = subprocess.run(
        [sys.executable, "-c", _BEFORE + body + _AFTER, ",".join(BLOCKED), what],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr or result.stdout
    return set(json.loads(result.stdout))
