"""Writers of one process take turns before SQLite's lock, and always give the turn back.

A turn kept by mistake would stall every later write of the process for the turn timeout,
so each way out of a unit of work is tried: commit, rollback, an error in the body, and
a database that cannot begin at all."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from courtois.services.unit_of_work import UnitOfWork
from courtois.store.engine import _TURNSTILES, make_engine
from courtois.store.migrate import migrate

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    made = make_engine(f"sqlite:///{tmp_path / 'turns.db'}")
    migrate(made)
    return made


def held(engine: Engine) -> bool:
    turnstile = _TURNSTILES.get(engine)
    return turnstile is not None and turnstile.locked()


def test_the_turn_is_held_for_the_transaction_and_given_back_every_way(engine: Engine) -> None:
    with UnitOfWork(engine, NOW) as uow:
        assert held(engine)
        uow.conn.execute(text("UPDATE ledger_head SET seq = seq"))
        uow.commit()
        assert not held(engine)  # given back with SQLite's lock, at COMMIT
        with UnitOfWork(engine, NOW) as after:  # a use case may write again from here
            assert held(engine)
            after.commit()
    assert not held(engine)

    with UnitOfWork(engine, NOW):
        assert held(engine)
    assert not held(engine)  # rolled back

    def fails_inside() -> None:
        with UnitOfWork(engine, NOW):
            assert held(engine)
            _ = 1 / 0

    with pytest.raises(ZeroDivisionError):
        fails_inside()
    assert not held(engine)


def test_a_database_that_cannot_begin_gives_the_turn_back(tmp_path: Path) -> None:
    path = tmp_path / "courtois.db"
    engine = make_engine(f"sqlite:///{path}")
    path.mkdir()  # a folder since the engine was made: SQLite cannot open it
    with pytest.raises(OperationalError, match="unable to open database file"):
        UnitOfWork(engine, NOW).__enter__()
    assert not held(engine)
    assert engine in _TURNSTILES  # the turn was taken, then given back


def test_writers_of_one_process_go_one_after_the_other(engine: Engine) -> None:
    inside = threading.Event()
    leave = threading.Event()
    order: list[str] = []

    def first() -> None:
        with UnitOfWork(engine, NOW) as uow:
            order.append("first in")
            inside.set()
            leave.wait(10)
            uow.conn.execute(text("UPDATE ledger_head SET seq = seq"))
            uow.commit()
            order.append("first out")

    def second() -> None:
        with UnitOfWork(engine, NOW) as uow:
            order.append("second in")
            uow.commit()

    one = threading.Thread(target=first)
    one.start()
    assert inside.wait(10)
    two = threading.Thread(target=second)
    two.start()
    time.sleep(0.2)
    assert order == ["first in"]  # the second waits for its turn
    leave.set()
    one.join(10)
    two.join(10)
    assert order == ["first in", "first out", "second in"]
    assert not held(engine)
