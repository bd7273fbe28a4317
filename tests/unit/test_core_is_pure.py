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

from purity import SRC, imported_without_adapters

# Every module of the core, then the paths that could import lazily.
SCRIPT = r"""
import courtois.domain
import courtois.policy

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
    imported = imported_without_adapters(SCRIPT, "the pure core")
    expected = _core_modules_on_disk()
    # Not vacuous: every module file of the core was found and imported.
    assert expected <= imported, sorted(expected - imported)
    assert "courtois.policy.rules.sender_quota" in imported
    assert "courtois.domain.addresses" in imported
