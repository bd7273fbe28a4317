"""Bring a database to the newest schema with Alembic (`courtois migrate`)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy import Engine

from courtois.domain.errors import DomainError
from courtois.store.engine import WRITE_OPTION

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    """An Alembic config pointing at the packaged migrations, no ini file needed."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


NOT_MIGRATED = "the database is not migrated: run `courtois migrate`"
NEWER_SCHEMA = "the database is at a newer schema than this courtois"


class SchemaMismatch(DomainError):
    """The database's schema is not the one this code was written for: every statement
    would fail (a missing table) or might misread the data (a newer one)."""


@lru_cache(maxsize=1)
def newest_revision() -> str | None:
    """The schema revision this code expects (the migrations' head)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@lru_cache(maxsize=1)
def known_revisions() -> frozenset[str]:
    """Every revision the packaged migrations know; any other was made by newer code."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return frozenset(revision.revision for revision in script.walk_revisions())


def check_schema(engine: Engine) -> None:
    """Refuse a database that is not at this code's revision, saying which way it is off,
    before a command reads or writes it (the check `/healthz` makes)."""
    revision = current_revision(engine)
    if revision == newest_revision():
        return
    if revision is None or revision in known_revisions():
        raise SchemaMismatch(NOT_MIGRATED)
    raise SchemaMismatch(NEWER_SCHEMA)


def migrate(engine: Engine) -> None:
    """Upgrade to head inside one transaction (PostgreSQL DDL is transactional); a database
    already past this code's newest revision is refused, not downgraded or guessed at."""
    revision = current_revision(engine)
    if revision is not None and revision not in known_revisions():
        raise SchemaMismatch(NEWER_SCHEMA)
    config = alembic_config()
    try:
        with engine.execution_options(**{WRITE_OPTION: True}).begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except CommandError as error:  # Alembic's own refusal, e.g. a branch it cannot follow
        raise SchemaMismatch(f"the migration was refused ({type(error).__name__})") from None


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
