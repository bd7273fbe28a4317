"""The pure core (courtois.domain, courtois.policy) imports no adapter library.

Checked in a fresh interpreter, so that modules other tests imported cannot hide an import:
a meta-path finder refuses the web framework, SMTP, the database drivers, Alembic, the CLI
toolkit, sockets and DNS; then every module of the core is imported and exercised.

About `socket`: the core uses email-validator for address syntax. email-validator 2.x
imports its DNS/deliverability code (dnspython, which needs sockets) only when
deliverability checks are asked for, which `parse_address` never does. So `socket` (and
`dns`) are blocked for everyone, not only for courtois modules: if a future email-validator
imported sockets at import time, or `parse_address` started checking deliverability, this
test would fail, and it should, because the core would then touch the network.
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
            raise ImportError(f"the pure core must not import {name}")
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

import courtois.domain
import courtois.policy

imported = []
for package in (courtois.domain, courtois.policy):
    imported.append(package.__name__)
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(info.name)
        imported.append(info.name)

# Exercise the paths that could import lazily: address parsing and a whole policy decision.
from datetime import UTC, datetime

from courtois.domain.addresses import digest_of
from courtois.policy.chain import evaluate
from courtois.policy.facts import Candidate, Facts, Stage
from courtois.domain.messages import MessageKind

digest = digest_of("Ana@Exämple.org", b"secret")
evaluate(
    Candidate("m1", digest, MessageKind.INVITATION, Stage.QUEUE),
    Facts(),
    datetime(2025, 3, 3, 9, 0, tzinfo=UTC),
)

leaked = sorted(name for name in sys.modules if name.partition(".")[0] in BLOCKED)
if leaked:
    raise SystemExit(f"blocked modules were loaded: {leaked}")
print(json.dumps(imported))
"""


def _core_modules_on_disk() -> set[str]:
    names = set()
    for package in ("domain", "policy"):
        root = SRC / "courtois" / package
        for path in root.rglob("*.py"):
            parts = path.relative_to(SRC).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            names.add(".".join(parts))
    return names


def test_core_imports_no_adapter_library() -> None:
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
    expected = _core_modules_on_disk()
    # Not vacuous: every module file of the core was found and imported.
    assert expected <= imported, sorted(expected - imported)
    assert "courtois.policy.rules.sender_quota" in imported
    assert "courtois.domain.addresses" in imported
