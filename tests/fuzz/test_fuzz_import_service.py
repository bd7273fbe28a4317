"""Damaged address books through the import use case, into a real SQLite store: every
record is accounted for (records = imported + duplicates + flagged + rejected), exactly the
imported ones are stored, each stored address is valid and keyed by its digest, and a file
refused as a whole stores nothing."""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fuzz_support import Edit, budget, edits, mutate, samples, time_limit
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from courtois.config import Settings
from courtois.domain.addresses import parse_address
from courtois.domain.errors import InvalidInput
from courtois.services.context import Context
from courtois.services.imports import import_file
from courtois.services.members import register_member
from courtois.store.engine import make_engine
from courtois.store.migrate import migrate
from courtois.store.tables import contacts

SAMPLES = samples("imports")
DONORS = [path.read_bytes() for path in SAMPLES]
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
# One new member per example: each import starts from an empty address book.
_MEMBERS = itertools.count()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Context]:
    """One SQLite store for every example (a fresh member each)."""
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}")
    migrate(engine)
    yield Context(engine, Settings(secret_key="fuzz-secret-key-0123456789", platform_name="A"))
    engine.dispose()


def _stored(ctx: Context, member: str) -> list[tuple[str, str]]:
    with ctx.engine.connect() as connection:
        return [
            (row.address, row.recipient_digest)
            for row in connection.execute(
                select(contacts.c.address, contacts.c.recipient_digest).where(
                    contacts.c.member_id == member
                )
            )
        ]


@budget(60)
@given(st.sampled_from(SAMPLES), st.lists(edits, min_size=0, max_size=6))
def test_a_damaged_address_book_is_accounted_for_record_by_record(
    store: Context, sample: Path, changes: list[Edit]
) -> None:
    data = mutate(sample.read_bytes(), changes, DONORS)
    member = f"m{next(_MEMBERS)}"
    register_member(store, member, f"{member}@members.example", "Member", "en", NOW)
    try:
        with time_limit(f"import of {sample.name}", len(data)):
            report = import_file(store, member, io.BytesIO(data), NOW, size=len(data))
    except InvalidInput:
        assert _stored(store, member) == []
        return
    kept = len(report.duplicates) + len(report.flagged) + len(report.rejected)
    assert report.records == report.imported + kept
    stored = _stored(store, member)
    assert len(stored) == report.imported
    for address, digest in stored:
        assert store.digest(parse_address(address)) == digest
