"""courtois.simulation is pure like the policy it replays: no database, web, SMTP or socket.

Checked in a fresh interpreter whose import system refuses those libraries, after which
every module of the package is imported and a whole comparison is run.
"""

from __future__ import annotations

from purity import SRC, imported_without_adapters

# Every module of the package, then a whole comparison.
SCRIPT = r"""
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
"""


def test_the_simulation_imports_no_adapter_library() -> None:
    imported = imported_without_adapters(SCRIPT, "the simulation")
    on_disk = {
        f"courtois.simulation.{path.stem}"
        for path in (SRC / "courtois" / "simulation").glob("*.py")
        if path.stem != "__init__"
    }
    assert on_disk <= imported, sorted(on_disk - imported)
    assert "courtois.simulation.replay" in imported
