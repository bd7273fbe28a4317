"""Damaged bounces and complaints applied to a real SQLite store: whatever the classifier
makes of them, applying one suppresses only the addresses it names as dead (a hard bounce)
or as complaining (a complaint), nothing for any other kind, and the ledger still verifies."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fuzz_support import Edit, budget, edits, mutate, samples, time_limit
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from courtois.config import Settings
from courtois.delivery.bounces import classify
from courtois.domain.errors import InvalidAddress
from courtois.services.audit import verify_ledger
from courtois.services.bounces import apply_bounce
from courtois.services.context import Context
from courtois.store.engine import make_engine
from courtois.store.migrate import migrate
from courtois.store.tables import recipients

BOUNCES = samples("bounces/bounces")
DONORS = [path.read_bytes() for path in BOUNCES]
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
COUNTS = ("suppressed", "already_suppressed", "blocked", "bounced", "cancelled", "complaints")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Context]:
    """One SQLite store for every example: suppressions accumulate, as they do in life."""
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('bounces') / 'fuzz.db'}")
    migrate(engine)
    yield Context(engine, Settings(secret_key="fuzz-secret-key-0123456789", platform_name="A"))
    engine.dispose()


def _suppressed(ctx: Context) -> set[str]:
    with ctx.engine.connect() as connection:
        return set(
            connection.execute(
                select(recipients.c.digest).where(recipients.c.suppressed_reason.is_not(None))
            ).scalars()
        )


def _digests(ctx: Context, addresses: list[str]) -> set[str]:
    found = set()
    for address in addresses:
        try:
            found.add(ctx.digest_email(address))
        except InvalidAddress:
            continue
    return found


@budget(60)
@given(st.sampled_from(BOUNCES), st.lists(edits, min_size=0, max_size=6))
def test_a_damaged_bounce_suppresses_only_whom_it_names(
    store: Context, sample: Path, changes: list[Edit]
) -> None:
    raw = mutate(sample.read_bytes(), changes, DONORS)
    with time_limit(f"classifying {sample.name}", len(raw)):
        report = classify(raw, sample.name)
    before = _suppressed(store)
    result = apply_bounce(store, report, NOW)
    added = _suppressed(store) - before
    assert all(result[name] >= 0 for name in COUNTS)
    if report.kind == "hard_bounce":
        assert added <= _digests(store, [r.address for r in report.hard_recipients])
    elif report.kind == "complaint":
        assert added <= _digests(store, [r.address for r in report.recipients])
        assert result["complaints"] <= len(report.recipients)
    else:
        assert added == set()
        assert all(result[name] == 0 for name in COUNTS)
    assert result["suppressed"] == len(added)
    assert verify_ledger(store.engine).ok
