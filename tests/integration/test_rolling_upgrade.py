"""Rolling upgrades: a database a later release has migrated stays usable by this one when
every migration applied allows it, so processes can be replaced one by one (both engines).

A later release is simulated by what its `courtois migrate` leaves behind: a revision this
code does not know in `alembic_version`, and in `schema_readers` the oldest revision whose
code it lets run. This code must keep working when that is at or before its own head, and
refuse as before otherwise; an older known revision is still "not migrated".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from api_support import add_member, running_api
from sqlalchemy import Engine, delete, select, text, update

from conftest import _postgres_engine
from courtois.config import Settings
from courtois.services.context import Context
from courtois.store.engine import WRITE_OPTION, make_engine
from courtois.store.migrate import (
    NEWER_SCHEMA,
    NOT_MIGRATED,
    SchemaMismatch,
    alembic_config,
    check_schema,
    current_revision,
    migrate,
    newest_revision,
)
from courtois.store.tables import schema_readers

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
LATER = "0099"  # a later release's revision: unknown to this code
# A row of the table of migrations in docs/operations.md, "Upgrades".
DOCUMENTED = re.compile(r"^\| (\d{4}) \| (yes|no) \| (\d{4}) \| ", re.MULTILINE)


def migrations() -> list[tuple[str, str | None, object]]:
    """(revision, the one before, declared oldest reader) of every migration, oldest
    first, read from the modules themselves."""
    script = ScriptDirectory.from_config(alembic_config())
    found = []
    for each in reversed(list(script.walk_revisions())):
        before = each.down_revision
        assert before is None or isinstance(before, str)
        found.append((each.revision, before, getattr(each.module, "oldest_reader", None)))
    return found


def chain() -> list[str]:
    return [revision for revision, _before, _reader in migrations()]


def oldest_allowed() -> str:
    """The latest oldest reader declared over the whole chain, as `migrate` must write."""
    order = chain()
    return max((str(reader) for _r, _b, reader in migrations()), key=order.index)


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database on each engine, never migrated."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
        yield engine
        engine.dispose()
    else:
        yield from _postgres_engine(request.getfixturevalue("postgres_admin"))


def alembic(engine: Engine, step: Callable[[Config, str], None], revision: str) -> None:
    """An Alembic command in one transaction, as `courtois migrate` runs it."""
    config = alembic_config()
    with engine.execution_options(**{WRITE_OPTION: True}).begin() as connection:
        config.attributes["connection"] = connection
        step(config, revision)


def stored(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return [
            str(r) for r in connection.execute(select(schema_readers.c.oldest_reader)).scalars()
        ]


def as_release(engine: Engine, revision: str, oldest_reader: str | None) -> None:
    """What a release's `courtois migrate` leaves: its revision, and the oldest reader it
    allows (None: no row at all)."""
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": revision})
        connection.execute(delete(schema_readers))
        if oldest_reader is not None:
            connection.execute(schema_readers.insert().values(id=1, oldest_reader=oldest_reader))


def refusal(engine: Engine) -> str:
    with pytest.raises(SchemaMismatch) as refused:
        check_schema(engine)
    return refused.value.message


def health(base_url: str) -> tuple[int, dict[str, object]]:
    response = httpx.get(f"{base_url}/healthz", timeout=30)
    return response.status_code, response.json()["checks"]["database"]


def test_every_migration_declares_the_oldest_code_it_allows_as_documented() -> None:
    order = chain()
    documented = {
        revision: (safe, reader)
        for revision, safe, reader in DOCUMENTED.findall(OPERATIONS.read_text(encoding="utf-8"))
    }
    declared = {}
    for revision, before, reader in migrations():
        # A known revision, no later than the migration's own: no code older than the
        # schema it was written for can be vouched for by the migration.
        assert isinstance(reader, str), revision
        assert reader in order, revision
        assert order.index(reader) <= order.index(revision), revision
        # Rolling-safe: the code of the revision just before may keep running.
        safe = before is not None and order.index(reader) <= order.index(before)
        declared[revision] = ("yes" if safe else "no", reader)
    assert documented == declared
    # Migrations that add only what older code can ignore say so; the others do not.
    assert declared["0009"] == ("yes", "0008")
    assert declared["0007"] == ("no", "0007")


def test_migrate_records_the_oldest_code_allowed_in_the_same_run(fresh: Engine) -> None:
    alembic(fresh, command.upgrade, "0014")
    migrate(fresh)
    assert current_revision(fresh) == newest_revision()
    assert stored(fresh) == [oldest_allowed()]
    # Every run keeps the one row at what the migrations declare, whatever it held.
    with fresh.begin() as connection:
        connection.execute(update(schema_readers).values(oldest_reader=LATER))
    migrate(fresh)
    assert stored(fresh) == [oldest_allowed()]
    with fresh.begin() as connection:
        connection.execute(delete(schema_readers))
    migrate(fresh)
    assert stored(fresh) == [oldest_allowed()]
    check_schema(fresh)


def test_a_later_release_that_allows_this_one_keeps_it_running(ctx: Context) -> None:
    head = newest_revision()
    assert head is not None
    engine = ctx.engine
    with running_api(ctx) as api:
        for index, oldest in enumerate((head, oldest_allowed(), chain()[0])):
            as_release(engine, LATER, oldest)
            assert check_schema(engine).newer
            status, database = health(api.base_url)
            assert status == 200, database
            assert database["ok"] is True
            assert database["detail"] == (
                f"reachable, schema at revision {LATER}, newer than this release's {head},"
                " which it allows"
            )
            # The process does its work against it.
            add_member(api, f"member-{index}")
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM members")).scalar_one() == 3


def test_a_later_release_that_does_not_allow_this_one_is_refused(ctx: Context) -> None:
    head = newest_revision()
    engine = ctx.engine
    with running_api(ctx) as api:
        # Its own code only; a revision after this code's head but before the later one's;
        # no row (a table emptied); then no table at all.
        for oldest in (LATER, f"{int(head) + 1:04d}", None, "dropped"):
            if oldest == "dropped":
                with engine.begin() as connection:
                    connection.execute(text("DROP TABLE schema_readers"))
            else:
                as_release(engine, LATER, oldest)
            assert refusal(engine) == NEWER_SCHEMA
            status, database = health(api.base_url)
            assert status == 503, database
            assert database["ok"] is False
            assert database["detail"] == (
                f"schema at revision {LATER}, newer than this release's {head}, which it does"
                " not allow: run the newer release"
            )


def test_an_older_known_revision_is_still_not_migrated(fresh: Engine, settings: Settings) -> None:
    alembic(fresh, command.upgrade, "0015")
    assert refusal(fresh) == NOT_MIGRATED
    migrate(fresh)
    check_schema(fresh)
    # A database back at an earlier revision is not migrated, whatever its row allows.
    before_head = chain()[-2]
    as_release(fresh, before_head, chain()[0])
    assert refusal(fresh) == NOT_MIGRATED
    with running_api(Context(fresh, settings)) as api:
        status, database = health(api.base_url)
    assert status == 503
    assert database["detail"] == (
        f"schema at revision {before_head}, expected {newest_revision()}: run `courtois migrate`"
    )
