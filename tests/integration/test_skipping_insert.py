"""`insert_new`, the reservation under every Idempotency-Key, sign-in link and admin session,
on both engines: which caller won the row, what the loser sees, and that losing is no
error, so the transaction it happened in goes on (on PostgreSQL a failed INSERT would have
aborted it: "current transaction is aborted, commands ignored until end of transaction").
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError

from conftest import T0
from courtois.store.sql import insert_new
from courtois.store.tables import idempotency_keys

KEYS = ("scope", "key")


def reservation(key: str, request_hash: str, *, scope: str = "invite:m1") -> dict[str, Any]:
    return {
        "scope": scope,
        "key": key,
        "request_hash": request_hash,
        "response": {"pending": True},
        "created_at": T0,
    }


def stored(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as connection:
        found = connection.execute(
            select(
                idempotency_keys.c.scope, idempotency_keys.c.key, idempotency_keys.c.request_hash
            ).order_by(idempotency_keys.c.scope, idempotency_keys.c.key)
        )
        return [tuple(row) for row in found]


def test_first_insert_wins_and_the_second_learns_it_lost_without_ending_the_transaction(
    engine: Engine,
) -> None:
    with engine.begin() as connection:
        assert insert_new(connection, idempotency_keys, reservation("k1", "first"), *KEYS)
        assert not insert_new(connection, idempotency_keys, reservation("k1", "second"), *KEYS)
        # The same key in another scope is another row.
        assert insert_new(
            connection, idempotency_keys, reservation("k1", "other", scope="invite:m2"), *KEYS
        )
        # The transaction goes on after the lost insert, and keeps what it writes.
        connection.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.scope == "invite:m2")
            .values(response={"status": 201})
        )
        assert insert_new(connection, idempotency_keys, reservation("k2", "third"), *KEYS)
    assert stored(engine) == [
        ("invite:m1", "k1", "first"),  # not overwritten by the loser
        ("invite:m1", "k2", "third"),
        ("invite:m2", "k1", "other"),
    ]


def test_a_lost_insert_reports_false_after_a_statement_that_changed_rows(engine: Engine) -> None:
    """Whether the row went in is this statement's answer, not the last change counted on
    the connection (SQLite's sqlite3_changes outlives the statement; psycopg's row count is
    -1 once SQLAlchemy closed the cursor of an INSERT without RETURNING)."""
    with engine.begin() as connection:
        for key in ("a", "b", "c"):
            assert insert_new(connection, idempotency_keys, reservation(key, key), *KEYS)
        changed = connection.execute(
            update(idempotency_keys).values(created_at=T0 + timedelta(seconds=1))
        )
        assert changed.rowcount == 3
        assert not insert_new(connection, idempotency_keys, reservation("b", "again"), *KEYS)
        assert not insert_new(connection, idempotency_keys, reservation("b", "again"), *KEYS)
    assert [row[2] for row in stored(engine)] == ["a", "b", "c"]


def test_only_a_conflict_on_the_keys_is_skipped(engine: Engine) -> None:
    """A row breaking another constraint is refused as an error, not reported as taken (as
    SQLite's INSERT OR IGNORE would, which also skips NOT NULL violations)."""
    incomplete = {**reservation("k1", "first"), "request_hash": None}
    with pytest.raises(IntegrityError), engine.begin() as connection:
        insert_new(connection, idempotency_keys, incomplete, *KEYS)
    assert stored(engine) == []


@pytest.mark.parametrize("first_commits", [True, False], ids=["committed", "rolled-back"])
def test_of_two_racing_inserts_the_later_waits_for_the_first_and_learns_whether_it_lost(
    engine: Engine, first_commits: bool
) -> None:
    """Two transactions reserving one key: the second waits for the first to end (on the
    row's unique index on PostgreSQL, on the database lock taken at BEGIN on SQLite), then
    learns it lost when the first committed, or wins when the first rolled back."""
    answers: list[bool] = []

    def second() -> None:
        with engine.begin() as connection:
            answers.append(insert_new(connection, idempotency_keys, reservation("k", "2"), *KEYS))

    with engine.connect() as first:
        first.begin()
        assert insert_new(first, idempotency_keys, reservation("k", "1"), *KEYS)
        racer = threading.Thread(target=second)
        racer.start()
        time.sleep(0.5)
        assert answers == [], "the second insert did not wait for the first transaction"
        if first_commits:
            first.commit()
        else:
            first.rollback()
    racer.join(timeout=30)
    assert answers == [not first_commits]
    assert [row[2] for row in stored(engine)] == (["1"] if first_commits else ["2"])
