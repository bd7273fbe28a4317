"""Database errors that are the environment's fault, not a bug: the database is out of
reach (stopped, restarting, locked) or out of room. Callers answer these with "try again"
(HTTP 503, 507; the worker's next pass) instead of a crash, and never quote the driver's
message, which may hold the statement's parameters (addresses).

Told apart by the driver's own codes: SQLite's result code, PostgreSQL's SQLSTATE, and a
connection the pool had to drop.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy.exc import DBAPIError, OperationalError

# SQLite's primary result codes (sqlite3.SQLITE_*; the low byte of an extended code).
_SQLITE_FULL = 13
_SQLITE_UNREACHABLE = frozenset({5, 6, 10, 14})  # BUSY, LOCKED, IOERR, CANTOPEN
_SQLITE_READONLY = 8
_SQLITE_NOTADB = 26
# PostgreSQL's SQLSTATE: disk full, and the classes meaning "not now" (connection
# exception, insufficient resources, operator intervention such as a shutdown).
_PG_DISK_FULL = "53100"
_PG_UNREACHABLE_CLASSES = ("08", "53", "57P")
_PG_READ_ONLY = "25006"


class DatabaseFault(StrEnum):
    """What is wrong with the database, as a stable code (the problem type's last part)."""

    UNAVAILABLE = "database-unavailable"
    FULL = "storage-full"

    @property
    def sentence(self) -> str:
        """For people: what happened, and that nothing changed."""
        if self is DatabaseFault.FULL:
            return "The database has no room left for this change; nothing was changed."
        return "The database cannot be reached right now; nothing was changed. Try again."


def database_fault(error: BaseException) -> DatabaseFault | None:
    """The fault behind a database error, or None when it is not the environment's."""
    if not isinstance(error, DBAPIError):
        return None
    original = error.orig
    sqlite_code = getattr(original, "sqlite_errorcode", None)
    if isinstance(sqlite_code, int):
        primary = sqlite_code & 0xFF
        if primary == _SQLITE_FULL:
            return DatabaseFault.FULL
        return DatabaseFault.UNAVAILABLE if primary in _SQLITE_UNREACHABLE else None
    sqlstate = getattr(original, "sqlstate", None)
    if sqlstate == _PG_DISK_FULL:
        return DatabaseFault.FULL
    if error.connection_invalidated:
        return DatabaseFault.UNAVAILABLE
    if isinstance(sqlstate, str):
        return DatabaseFault.UNAVAILABLE if sqlstate.startswith(_PG_UNREACHABLE_CLASSES) else None
    # A driver error without a SQLSTATE never reached the server (refused, reset).
    return DatabaseFault.UNAVAILABLE if isinstance(error, OperationalError) else None


def database_problem(error: DBAPIError) -> str:
    """One line for a database error that is not a fault: what is wrong when the driver's
    code says it (read-only, not a database), else the error's type. Never the driver's
    message, which quotes the statement and its parameters (addresses)."""
    original = error.orig
    sqlite_code = getattr(original, "sqlite_errorcode", None)
    primary = sqlite_code & 0xFF if isinstance(sqlite_code, int) else None
    if primary == _SQLITE_READONLY or getattr(original, "sqlstate", None) == _PG_READ_ONLY:
        return "the database is read-only; nothing was changed"
    if primary == _SQLITE_NOTADB:
        return "the database file is not a SQLite database"
    return f"the database refused the command ({type(original).__name__})"
