"""courtois.simulation is pure like the policy it replays: no database, web, SMTP or socket.

Checked in a fresh interpreter whose import system refuses those libraries, after which
every module of the package is imported and a whole comparison is run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
BLOCKED = ("sqlalchemy", "fastapi", "aiosmtplib", "psycopg", "socket", "alembic", "typer", "dns")

SCRIPT = r"""
import importlib
import importlib.abc
import json
import pkgutil
import sys

BLOCKED = frozenset(sys.argv[1].split(","))


class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ImportError(f"the simulation must not import {name}")
        return None


sys.meta_path.insert(0, Refuse())
try:
    import sqlalchemy  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("the import blocker does not work")

import courtois.simulation

imported = []
for info in pkgutil.walk_packages(courtois.simulation.__path__, "courtois.simulation."):
    importlib.import_module(info.name)
    imported.append(info.name)

from datetime import UTC, datetime, timedelta

from courtois.policy.config import PolicyConfig
from courtois.simulation import events as ev
from courtois.simulation.compare import compare

t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
history = [
    ev.Requested(t0, "i1", "c1", "ana", "d1", 1),
    ev.WorkerPass(t0 + timedelta(minutes=10)),
    ev.Unsubscribed(t0 + timedelta(days=30), "d2", None),
]
result = compare(history, PolicyConfig(), PolicyConfig(reminder_cap=0))
assert (result.current.reminders_sent, result.new.reminders_sent) == (1, 0), result
leaked = sorted(name for name in sys.modules if name.partition(".")[0] in BLOCKED)
if leaked:
    raise SystemExit(f"blocked modules were loaded: {leaked}")
print(json.dumps(imported))
"""


def test_the_simulation_imports_no_adapter_library() -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    env.pop("PYTHONSTARTUP", None)
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, ",".join(BLOCKED)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr or result.stdout
    imported = set(json.loads(result.stdout))
    on_disk = {
        f"courtois.simulation.{path.stem}"
        for path in (SRC / "courtois" / "simulation").glob("*.py")
        if path.stem != "__init__"
    }
    assert on_disk <= imported, sorted(on_disk - imported)
    assert "courtois.simulation.replay" in imported
