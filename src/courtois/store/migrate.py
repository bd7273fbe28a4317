"""Bring a database to the newest schema with Alembic (`courtois migrate`), and tell whether
this code may run against the database it finds.

A database at this code's newest revision is its own; one at an older revision is not
migrated yet. One at a revision this code does not know was migrated by a later release:
this code may still run against it when every migration applied allows code as old as
this (a rolling upgrade, processes replaced one by one). Each migration module declares
`oldest_reader`, the oldest revision whose code still runs correctly against the schema it
leaves, and `migrate` stores the latest of those in the `schema_readers` row, which code
of every release from 0016 on reads before refusing a newer schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, insert, inspect, select, update

from courtois.domain.errors import DomainError

# Said here by the schema check, and by the engine of a SQLite file that does not exist.
from courtois.store.engine import NOT_MIGRATED as NOT_MIGRATED
from courtois.store.engine import WRITE_OPTION
from courtois.store.tables import schema_readers

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    """An Alembic config pointing at the packaged migrations, no ini file needed."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


NEWER_SCHEMA = "the database is at a newer schema than this courtois"


class SchemaMismatch(DomainError):
    """The database's schema is not one this code can run against: every statement would
    fail (a missing table) or might misread the data (a newer one that does not allow it)."""


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    """What the database's revision means for this code: `problem` is None when it may run
    (at its own revision, or at a later release's that allows it), else why not."""

    revision: str | None
    problem: str | None

    @property
    def newer(self) -> bool:
        """Migrated by a later release (whether or not it allows this code)."""
        return self.revision is not None and self.revision not in known_revisions()


@lru_cache(maxsize=1)
def newest_revision() -> str | None:
    """The schema revision this code expects (the migrations' head)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@lru_cache(maxsize=1)
def revision_chain() -> tuple[str, ...]:
    """Every revision the packaged migrations know, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return tuple(reversed([revision.revision for revision in script.walk_revisions()]))


@lru_cache(maxsize=1)
def known_revisions() -> frozenset[str]:
    """Every revision the packaged migrations know; any other was made by newer code."""
    return frozenset(revision_chain())


def position(revision: str) -> int:
    """Where a revision stands in the chain. Revisions are compared by it, never by their
    spelling; one this code does not know was made by a later release, so it comes after
    every known one."""
    chain = revision_chain()
    return chain.index(revision) if revision in chain else len(chain)


@lru_cache(maxsize=1)
def declared_readers() -> dict[str, str]:
    """Each migration's `oldest_reader`, checked: a known revision, no later than the
    migration's own. A migration that declares none, or a wrong one, is a packaging
    mistake that would let older code misread the data: refused loudly."""
    from alembic.script import ScriptDirectory

    declared: dict[str, str] = {}
    for script in ScriptDirectory.from_config(alembic_config()).walk_revisions():
        reader = getattr(script.module, "oldest_reader", None)
        if (
            not isinstance(reader, str)
            or reader not in known_revisions()
            or position(reader) > position(script.revision)
        ):
            raise RuntimeError(f"migration {script.revision} declares no valid oldest_reader")
        declared[script.revision] = reader
    return declared


def oldest_reader_allowed(revision: str) -> str:
    """The oldest revision whose code may run against a database migrated up to `revision`:
    the latest of the oldest readers its migrations declare, each having applied."""
    applied = revision_chain()[: position(revision) + 1]
    return max((declared_readers()[name] for name in applied), key=position)


def schema_status(engine: Engine) -> SchemaStatus:
    """Whether this code may run against the database, read in one connection; the
    `schema_readers` row is read only when the revision is a later release's."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        revision = MigrationContext.configure(connection).get_current_revision()
        if revision == newest_revision():
            return SchemaStatus(revision, None)
        if revision is None or revision in known_revisions():
            return SchemaStatus(revision, NOT_MIGRATED)
        oldest = stored_oldest_reader(connection)
    # The head is the last known revision: any known reader is at or before it, and an
    # unknown one (a later release's) after it.
    allowed = oldest in known_revisions()
    return SchemaStatus(revision, None if allowed else NEWER_SCHEMA)


def stored_oldest_reader(connection: Connection) -> str | None:
    """The oldest revision the database allows to run against it, or None when it says
    nothing (made by a release before 0016, which allowed no older code)."""
    if not inspect(connection).has_table(schema_readers.name):
        return None
    stored = connection.execute(
        select(schema_readers.c.oldest_reader).where(schema_readers.c.id == 1)
    ).scalar_one_or_none()
    return None if stored is None else str(stored)


def check_schema(engine: Engine) -> SchemaStatus:
    """Refuse a database this code cannot run against, saying which way it is off, before a
    command reads or writes it (the check `/healthz` makes); a later release's schema that
    allows this code is accepted."""
    status = schema_status(engine)
    if status.problem is not None:
        raise SchemaMismatch(status.problem)
    return status


def migrate(engine: Engine) -> None:
    """Upgrade to head inside one transaction (PostgreSQL DDL is transactional) and record,
    in it, the oldest code that may still run against the result; a database already past
    this code's newest revision is refused, not downgraded or guessed at."""
    revision = current_revision(engine)
    if revision is not None and revision not in known_revisions():
        raise SchemaMismatch(NEWER_SCHEMA)
    head = newest_revision()
    oldest = None if head is None else oldest_reader_allowed(head)
    config = alembic_config()
    try:
        with engine.execution_options(**{WRITE_OPTION: True}).begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            if oldest is not None:
                record_oldest_reader(connection, oldest)
    except CommandError as error:  # Alembic's own refusal, e.g. a branch it cannot follow
        raise SchemaMismatch(f"the migration was refused ({type(error).__name__})") from None


def record_oldest_reader(connection: Connection, oldest: str) -> None:
    """Keep the one `schema_readers` row at `oldest`."""
    moved = connection.execute(
        update(schema_readers).where(schema_readers.c.id == 1).values(oldest_reader=oldest)
    )
    if moved.rowcount == 0:
        connection.execute(insert(schema_readers).values(id=1, oldest_reader=oldest))


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
