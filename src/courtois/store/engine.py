"""Engines: SQLite in WAL mode with immediate write transactions, or PostgreSQL."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.pool import QueuePool
from sqlalchemy.util import asbool

from courtois.domain.errors import InvalidInput

WRITE_OPTION = "courtois_write"
# A transaction whose commit must survive a power cut, not only a crash of the process: the
# worker's claim (`sending` is committed before the SMTP transaction, invariant 8).
DURABLE_OPTION = "courtois_durable"
# A pooled PostgreSQL connection left unused this long is pinged before it is handed out.
IDLE_BEFORE_PING = 1.0  # seconds
# How long a new PostgreSQL connection may take to open, unless the URL says otherwise
# (libpq's `connect_timeout`). Without it, a server that accepts the TCP connection and
# then answers nothing (hung, or a partition behind a proxy) holds the caller forever.
CONNECT_TIMEOUT_SECONDS = 5
# SQLite's page cache per connection, in KiB (the default is 2 MiB).
SQLITE_CACHE_KIB = 16 * 1024
# What a command says of a database it cannot run against for want of `migrate`.
NOT_MIGRATED = "the database is not migrated: run `courtois migrate`"


def make_engine(url: str, pool_size: int = 5, create: bool = True) -> Engine:
    """Create an engine for `url`. A SQLite file and its folder are made when missing only
    if `create` (migrate, the demo, tests): any other command refuses a missing file as
    the unmigrated database it is, rather than leave an empty one at a mistyped path."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, _sqlite_file(parsed), create)
    if parsed.drivername == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    # psycopg reads the URL's own connect_timeout; connect_args would override it.
    bounded = (
        {} if "connect_timeout" in parsed.query else {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    )
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_use_lifo=True,
        connect_args=bounded,
    )
    _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before use only when it sat unused past IDLE_BEFORE_PING.

    SQLAlchemy's `pool_pre_ping` pings on every checkout, a round trip and about 60 us of
    CPU each, and a request checks a connection out two to four times. A connection in
    steady use is not pinged: if the server went away under it, its first statement fails
    as a disconnect, which invalidates the whole pool (the request gets a 503 problem with
    Retry-After, as during any outage) and the next checkout connects afresh. The pool is
    last in, first out, so the connections in use stay the recent ones and the spare ones
    are the idle ones, pinged when next needed.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")  # none on a fresh connection: not pinged
        if since is None or time.monotonic() - since < IDLE_BEFORE_PING:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            # As pool_pre_ping: drop every pooled connection; the pool connects again.
            raise InvalidatePoolError() from error


def _check_sqlite_file(path: Path, create: bool) -> None:
    """Refuse a folder at the SQLite file's path, or a file this process may not read: SQLite
    says only "unable to open database file", which is also what a passing outage looks
    like, and would have them reported as "try again later" when nothing but a change of
    configuration helps. A missing file is fine when it is to be created (SQLite does), and
    otherwise the database that was never migrated."""
    if path.is_dir():
        raise InvalidInput(
            f"database_url: the SQLite file {path} is a folder.", {"database_url": "a folder"}
        )
    try:
        with path.open("rb"):
            pass
    except FileNotFoundError:
        if create:
            return
        raise InvalidInput(
            f"{NOT_MIGRATED} (no SQLite file at {path})", {"database_url": "no such file"}
        ) from None
    except OSError as error:
        raise InvalidInput(
            f"database_url: the SQLite file {path} cannot be read "
            f"({error.strerror or type(error).__name__}).",
            {"database_url": "unreadable"},
        ) from None


def _sqlite_file(url: URL) -> Path | None:
    """The file a SQLite URL opens, None for a database in memory. With `?uri=true` the
    database is a URI filename (`file:PATH?mode=ro`), whose path is the file's."""
    database = url.database
    if not database or database == ":memory:":
        return None
    uri = urlsplit(database)
    if not asbool(url.query.get("uri", False)) or uri.scheme != "file":
        return Path(database)
    path = unquote(uri.path)
    if url.query.get("mode") == "memory" or path in ("", ":memory:"):
        return None
    return Path(path)


def _sqlite_engine(url: str, database: Path | None, create: bool) -> Engine:
    """SQLite with WAL (readers never block the writer) and BEGIN IMMEDIATE, so two writers
    queue for the lock at the start instead of failing to upgrade it halfway through.
    A connection opened with the `courtois_write` execution option is a writer."""
    if database is not None:
        try:
            if create:
                database.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InvalidInput(
                f"database_url: the SQLite file's folder cannot be made "
                f"({error.strerror or type(error).__name__}).",
                {"database_url": "unusable folder"},
            ) from None
        # Checked before any connection: SQLite would create a missing file on connecting.
        _check_sqlite_file(database, create)
    parsed = make_url(url)
    dialect: Any = parsed.get_dialect()  # the pool class it picks is not in the type stubs
    queued = issubclass(dialect.get_pool_class(parsed), QueuePool)
    # Last in, first out: a connection's page cache survives only while no other connection
    # wrote since its last transaction, so the one that just worked is the best to reuse.
    # (An in-memory database has one connection per thread, no queue to order.)
    pooling: dict[str, Any] = {"pool_use_lifo": True} if queued else {}
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **pooling)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")  # per transaction: see _on_begin
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # Freed pages are overwritten, so a forgotten address leaves no residue in the file.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        options = connection.get_execution_options()
        # WAL with synchronous=NORMAL commits without an fsync: a power cut may undo the last
        # commits, though never corrupt the file. Fine for most writes; not for a claim,
        # whose undoing would let a sent message be sent again. The level can only change
        # between transactions, so it is set here, before BEGIN, when it differs.
        level = "FULL" if options.get(DURABLE_OPTION, False) else "NORMAL"
        if connection.info.get("synchronous") != level:
            connection.exec_driver_sql(f"PRAGMA synchronous={level}")
            connection.info["synchronous"] = level
        # Writers take the lock up front; readers begin deferred and never wait on it.
        write = options.get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


# One lock per SQLite engine for the writers of this process (see writer_turn).
_TURNSTILES: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
_TURNSTILES_MADE = threading.Lock()
# How long a writer waits for its turn before going to SQLite's lock anyway: the busy
# timeout, so that a turn never held back forever by a bug becomes a slow write, not a hang.
TURN_TIMEOUT = 30.0  # seconds


@contextmanager
def writer_turn(engine: Engine) -> Iterator[None]:
    """Around a write transaction on SQLite: this process's writers queue on a lock of
    their own before BEGIN IMMEDIATE, and each goes as soon as the previous one ends.

    Without it they queue through SQLite's busy handler, which sleeps and tries again (1,
    2, 5, 10 ... 100 ms a try), so under sixteen concurrent requests the unlucky ones kept
    losing for seconds (bench/api.py: p99 2.5-4 s at 50-70 requests a second). Writers of
    other processes still meet at SQLite's own lock. PostgreSQL locks rows: no turn."""
    if engine.dialect.name != "sqlite":
        yield
        return
    with _TURNSTILES_MADE:
        turnstile = _TURNSTILES.setdefault(engine, threading.Lock())
    holds = turnstile.acquire(timeout=TURN_TIMEOUT)
    try:
        yield
    finally:
        if holds:
            turnstile.release()


def is_postgres(engine: Engine) -> bool:
    """Whether row locks (FOR UPDATE, SKIP LOCKED) are real on this engine."""
    return engine.dialect.name == "postgresql"
