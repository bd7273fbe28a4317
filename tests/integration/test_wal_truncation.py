"""Callers of `truncate_wal` share checkpoints, and none returns before a checkpoint that
began after its own call has truncated the log: the promise behind "an unsubscribed
address is gone from the files" holds for every caller, however many arrive together."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, text

from courtois.services.unit_of_work import UnitOfWork
from courtois.store import wal
from courtois.store.engine import make_engine

WAIT = 10.0  # seconds; a correct run takes milliseconds


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    made = make_engine(f"sqlite:///{tmp_path / 'wal.db'}")
    with made.begin() as connection:
        connection.execute(text("CREATE TABLE notes (body TEXT)"))
    yield made
    made.dispose()


def wal_size(engine: Engine) -> int:
    log = Path(f"{engine.url.database}-wal")
    return log.stat().st_size if log.exists() else 0


def write(engine: Engine, body: str) -> None:
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO notes VALUES (:body)"), {"body": body})


class Recorded:
    """The real checkpoint, with the order in which each began and ended, and a gate that
    can hold the first one inside until the test lets it go."""

    def __init__(self, real: Callable[[Engine], bool]) -> None:
        self.real = real
        self.events: list[str] = []
        self.lock = threading.Lock()
        self.first_inside = threading.Event()
        self.release_first = threading.Event()
        self.fail_first = False
        self.calls = 0

    def note(self, event: str) -> None:
        with self.lock:
            self.events.append(event)

    def __call__(self, engine: Engine) -> bool:
        with self.lock:
            self.calls += 1
            number = self.calls
        self.note(f"begin {number}")
        if number == 1:
            self.first_inside.set()
            assert self.release_first.wait(WAIT)
            if self.fail_first:
                self.note(f"failed {number}")
                raise OSError("disk went away")
        truncated = self.real(engine)
        self.note(f"end {number}")
        return truncated


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Recorded:
    recorder = Recorded(wal._checkpoint)
    monkeypatch.setattr(wal, "_checkpoint", recorder)
    return recorder


def waiting(engine: Engine) -> int:
    """Callers asleep on the engine's checkpoint condition."""
    return len(wal._STATES[engine].changed._waiters)  # type: ignore[attr-defined]


def until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_the_log_is_empty_when_the_call_returns(engine: Engine) -> None:
    write(engine, "x" * 5000)
    assert wal_size(engine) > 0
    wal.truncate_wal(engine)
    assert wal_size(engine) == 0
    with engine.connect() as connection:  # the write itself is in the database file
        assert connection.execute(text("SELECT count(*) FROM notes")).scalar_one() == 1


def test_callers_arriving_during_a_checkpoint_share_the_next_one(
    engine: Engine, recorded: Recorded
) -> None:
    returned: list[str] = []

    def caller(name: str) -> None:
        write(engine, name)
        wal.truncate_wal(engine)
        recorded.note(f"returned {name}")
        returned.append(name)

    first = threading.Thread(target=caller, args=("first",))
    first.start()
    assert recorded.first_inside.wait(WAIT)
    # Three more commit while the first checkpoint runs: it began before their commits.
    late = [threading.Thread(target=caller, args=(f"late{i}",)) for i in range(3)]
    for thread in late:
        thread.start()
    until(lambda: waiting(engine) == 3)
    assert returned == []
    recorded.release_first.set()
    for thread in [first, *late]:
        thread.join(WAIT)
    assert sorted(returned) == ["first", "late0", "late1", "late2"]
    # One more checkpoint served all three, and none of them returned before it ended.
    assert recorded.calls == 2
    second_end = recorded.events.index("end 2")
    for name in ("late0", "late1", "late2"):
        assert recorded.events.index(f"returned {name}") > second_end
    assert recorded.events.index("returned first") > recorded.events.index("end 1")
    assert wal_size(engine) == 0


def test_a_failed_checkpoint_is_not_counted_as_done(engine: Engine, recorded: Recorded) -> None:
    recorded.fail_first = True
    errors: list[BaseException] = []

    def failing() -> None:
        write(engine, "first")
        try:
            wal.truncate_wal(engine)
        except OSError as error:
            errors.append(error)

    first = threading.Thread(target=failing)
    first.start()
    assert recorded.first_inside.wait(WAIT)
    # A caller that arrived meanwhile waits, sees the failure and runs its own.
    write(engine, "second")
    second = threading.Thread(target=wal.truncate_wal, args=(engine,))
    second.start()
    until(lambda: waiting(engine) == 1)
    recorded.release_first.set()
    first.join(WAIT)
    second.join(WAIT)
    assert [str(error) for error in errors] == ["disk went away"]
    assert recorded.events == ["begin 1", "failed 1", "begin 2", "end 2"]
    assert wal_size(engine) == 0
    # And a later caller is not told "done" by the failed one: it runs a third.
    write(engine, "third")
    wal.truncate_wal(engine)
    assert recorded.calls == 3
    assert wal_size(engine) == 0


def test_the_checkpoint_waits_for_the_writer_of_this_process(engine: Engine) -> None:
    """Taken in the writer's turn, the checkpoint queues behind a transaction in progress
    (instead of sleeping in SQLite's busy handler) and truncates once it has committed."""
    inside = threading.Event()
    leave = threading.Event()
    order: list[str] = []

    def writer() -> None:
        with UnitOfWork(engine, datetime.now(UTC)) as uow:
            uow.conn.execute(text("INSERT INTO notes VALUES ('w')"))
            inside.set()
            assert leave.wait(WAIT)
            order.append("writer commits")
            uow.commit()  # nothing for the ledger: a plain COMMIT, and the turn given back

    thread = threading.Thread(target=writer)
    thread.start()
    assert inside.wait(WAIT)

    def checkpoint() -> None:
        wal.truncate_wal(engine)
        order.append("checkpoint done")

    checkpointer = threading.Thread(target=checkpoint)
    checkpointer.start()
    time.sleep(0.05)
    assert order == []  # still queued behind the writer
    leave.set()
    thread.join(WAIT)
    checkpointer.join(WAIT)
    assert order == ["writer commits", "checkpoint done"]
    assert wal_size(engine) == 0


def test_a_log_held_by_a_reader_is_said_and_truncated_later(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """A reader's open snapshot pins the log past the busy timeout (a short one here): the
    checkpoint says so and is not counted as done, and the next one truncates."""

    @event.listens_for(engine, "connect")
    def short_wait(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.execute("PRAGMA busy_timeout=200")

    engine.dispose()
    write(engine, "kept")
    with engine.connect() as reader:
        reader.begin()
        assert reader.execute(text("SELECT count(*) FROM notes")).scalar_one() == 1
        write(engine, "an address")
        with caplog.at_level(logging.WARNING, logger="courtois.store"):
            wal.truncate_wal(engine)
        assert wal_size(engine) > 0
        assert "not truncated: a reader holds it" in caplog.text
        assert wal._STATES[engine].finished == 0
    wal.truncate_wal(engine)
    assert wal_size(engine) == 0
