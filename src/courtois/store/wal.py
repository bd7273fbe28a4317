"""Truncating SQLite's write-ahead log after a write that removed an address.

The old page that held the address stays in the log until a checkpoint copies the log
into the database file (where `secure_delete` has already overwritten it) and truncates
it. A caller returns only once a checkpoint that began after its commit has finished, so
"unsubscribed" still means "gone from the files" when the answer leaves the server.

One checkpoint costs about 1 ms of CPU and an fsync, as much as the rest of a one-click
unsubscribe. Callers that arrive while one runs have committed after it began, so one
more, started when it ends, serves them all (group commit, applied to checkpoints): under
sixteen concurrent clicks, a few checkpoints a batch instead of one each.
"""

from __future__ import annotations

import logging
import threading
import weakref

from sqlalchemy import Engine

from courtois.store.engine import writer_turn


class _Checkpoints:
    """Checkpoints of one engine in this process, numbered in the order they begin."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.started = 0  # the number of the latest checkpoint begun
        self.finished = 0  # the number of the latest checkpoint that completed
        self.running = False


log = logging.getLogger("courtois.store")

_STATES: weakref.WeakKeyDictionary[Engine, _Checkpoints] = weakref.WeakKeyDictionary()
_STATES_MADE = threading.Lock()


def truncate_wal(engine: Engine) -> None:
    """Return once a checkpoint begun after this call has truncated the log (or found it
    held by a reader past the busy timeout: logged, and left to the worker's next pass); on
    PostgreSQL, at once (its log is not ours to manage). Call it after the commit, never
    inside a unit of work: the checkpoint takes the writer's turn."""
    if engine.dialect.name != "sqlite":
        return
    with _STATES_MADE:
        state = _STATES.setdefault(engine, _Checkpoints())
    with state.changed:
        # One running now began before this caller committed: the next one is needed.
        wanted = state.started + 1
        while state.finished < wanted:
            if state.running:
                state.changed.wait()
                continue
            state.running = True
            state.started += 1
            number = state.started
            state.changed.release()
            completed = truncated = False
            try:
                truncated = _checkpoint(engine)
                completed = True
            finally:
                state.changed.acquire()
                state.running = False
                if truncated:  # after a failure the waiters try again themselves
                    state.finished = number
                state.changed.notify_all()
            if completed and not truncated:
                # A reader's snapshot pins the log (past the busy timeout): the pages stay
                # in it until a later checkpoint, which every erasure and every purge of
                # the worker's passes asks for. Said, never silently counted as done.
                log.warning("the SQLite log was not truncated: a reader holds it; retried later")
                return


def _checkpoint(engine: Engine) -> bool:
    """PRAGMA wal_checkpoint(TRUNCATE) in the writer's turn: this process's writers wait
    for it on their lock, not in SQLite's busy handler, which sleeps between tries."""
    with writer_turn(engine):
        # A raw connection: the driver is in autocommit mode there, and a checkpoint
        # cannot truncate the log from inside a transaction.
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            # (busy, frames in the log, frames checkpointed): busy means it gave up.
            row = cursor.fetchone()
        finally:
            raw.close()
        return row is not None and not row[0]
