"""On PostgreSQL the ledger is chained inside COMMIT by a trigger (migration 0009): the
rows it writes are the ones the client would have written, byte for byte; nothing is left
pending; a rollback leaves nothing; the head is not locked before COMMIT; and entries
chained by the client (code of an earlier revision, during a rolling upgrade) and by the
trigger make one valid chain."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, func, select, text
from support import T0

from conftest import POSTGRES_URL, _postgres_engine
from courtois.config import Settings
from courtois.domain.ledger import GENESIS_HASH, canonical_payload, hash_canonical
from courtois.services.audit import verify_ledger
from courtois.services.context import Context
from courtois.services.unit_of_work import UnitOfWork
from courtois.store.migrate import migrate
from courtois.store.tables import ledger, ledger_pending

# Payloads a canonical text must carry through JSON on both sides unchanged: quotes,
# backslashes, line breaks, non-ASCII letters, an astral emoji, a JSON-looking string.
AWKWARD: list[dict[str, Any]] = [
    {"reason": 'she said "no"\\ twice\nand left', "n": 1},
    {"name": "Zoë Ørsted 李雷 🎉", "nested": {"b": [1, 2.5, None, True], "a": "x"}},
    {"json": '{"seq":1}', "empty": "", "tab": "\t"},
]


@pytest.fixture
def pg_ctx(postgres_admin: Engine, settings: Settings) -> Iterator[Context]:
    """PostgreSQL only: the tests of the trigger itself."""
    for engine in _postgres_engine(postgres_admin):
        migrate(engine)
        yield Context(engine=engine, settings=settings)


def write(engine: Engine, payloads: list[dict[str, Any]], minutes: int = 0) -> None:
    with UnitOfWork(engine, T0 + timedelta(minutes=minutes)) as uow:
        for number, payload in enumerate(payloads):
            uow.record(f"test.event{number}", payload)
        uow.commit()


def entries(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(select(ledger).order_by(ledger.c.seq)))


def pending(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(select(func.count()).select_from(ledger_pending)).scalar_one()
        )


def test_the_chain_holds_what_the_client_would_have_written(ctx: Context) -> None:
    write(ctx.engine, AWKWARD)
    write(ctx.engine, AWKWARD[:1], minutes=1)
    rows = entries(ctx.engine)
    assert [row.seq for row in rows] == [1, 2, 3, 4]
    prev = GENESIS_HASH
    for row, payload in zip(rows, [*AWKWARD, AWKWARD[0]], strict=True):
        assert row.prev_hash == prev
        expected = hash_canonical(prev, row.seq, row.at, row.event, canonical_payload(payload))
        assert row.hash == expected
        assert row.payload == payload
        prev = row.hash
    assert verify_ledger(ctx.engine).ok
    assert pending(ctx.engine) == 0


def test_a_rollback_leaves_nothing(ctx: Context) -> None:
    with UnitOfWork(ctx.engine, T0) as uow:
        uow.record("test.event", {"n": 1})
        # Not committed: the unit of work rolls back on the way out.
    assert entries(ctx.engine) == []
    assert pending(ctx.engine) == 0


@pytest.mark.postgres
def test_the_head_is_free_until_commit_on_postgresql(pg_ctx: Context) -> None:
    ctx = pg_ctx
    schema = _schema(ctx.engine)
    other = create_engine(POSTGRES_URL, connect_args={"options": f"-c search_path={schema}"})
    try:
        with UnitOfWork(ctx.engine, T0) as uow:
            uow.record("test.event", {"n": 1})
            uow._chain_at_commit()  # what commit() sends before COMMIT
            with other.connect() as probe:
                # Another transaction can lock the head now: this one has not touched it.
                locked = probe.execute(
                    text("SELECT seq FROM ledger_head WHERE id = 1 FOR UPDATE NOWAIT")
                ).scalar_one()
                assert locked == 0
                probe.rollback()
            uow.commit()
        assert [row.seq for row in entries(ctx.engine)] == [1]
    finally:
        other.dispose()


@pytest.mark.postgres
def test_client_and_trigger_chaining_make_one_chain(pg_ctx: Context) -> None:
    """A rolling upgrade: code of revision 0008 appends from the client, under the same
    head lock, between transactions of this revision."""
    ctx = pg_ctx
    write(ctx.engine, AWKWARD[:2])
    with UnitOfWork(ctx.engine, T0 + timedelta(minutes=1)) as old:
        old.record("test.old", AWKWARD[2])
        old._append_ledger()  # the client-side chaining of revision 0008
        old.commit()
    write(ctx.engine, AWKWARD[:1], minutes=2)
    assert [row.seq for row in entries(ctx.engine)] == [1, 2, 3, 4]
    report = verify_ledger(ctx.engine)
    assert report.ok, report
    assert report.entries == 4


def _schema(engine: Engine) -> str:
    with engine.connect() as connection:
        return str(connection.execute(text("SELECT current_schema()")).scalar_one())
