"""The schema can be distributed by recipient (Citus) as docs/scaling.md lays it out.

Citus accepts a primary key or unique index on a distributed table only if it includes the
distribution column, and a foreign key between distributed tables only if both are
distributed alike and the key joins them through that column; a distributed table may
point at a reference table, nothing may point from a plain coordinator table into a
distributed one. The catalog of a migrated PostgreSQL schema is read and held to those
rules, table by table, against the distribution the documentation gives. The same check
run on the schema before migration 0005 names what that migration fixed, so it can fail.

Migration 0005 rebuilds keys of tables that hold rows in every running installation: it is
run on databases filled through the real services at 0004, on both engines, and every row
must come through, the foreign keys must hold, the services must keep working, and the
downgrade must give the rows back.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, Engine, inspect, select, text
from support import T0, add_members, by_email, send_invites

from conftest import SECRET, _postgres_engine
from courtois.config import Settings
from courtois.delivery.bounces import BouncedRecipient, BounceReport
from courtois.delivery.transport import MemoryTransport
from courtois.domain.contacts import ContactInput
from courtois.services.bounces import apply_bounce
from courtois.services.contacts import import_contacts, select_contacts
from courtois.services.context import Context
from courtois.services.lifecycle import revoke_consent
from courtois.services.recipients import unsubscribe
from courtois.services.worker import run_pass
from courtois.store.engine import WRITE_OPTION, make_engine
from courtois.store.migrate import alembic_config
from courtois.store.tables import metadata

EngineAt = Any  # Callable[[str, str], Engine]: an engine of that kind at that revision

# The distribution column of every distributed table, by co-location group.
BY_RECIPIENT = {
    "recipients": "digest",
    "recipient_blocks": "recipient_digest",
    "invitations": "recipient_digest",
    "messages": "recipient_digest",
    "decisions": "recipient_digest",
    "consent_recipients": "recipient_digest",
    "idempotency_subjects": "recipient_digest",
}
BY_MEMBER = {
    "members": "id",
    "consents": "member_id",
    "contacts": "member_id",
    "complaints": "member_id",
    "sender_activity": "member_id",
}
# Replicated to every node: none today.
REFERENCE: frozenset[str] = frozenset()
# Left as plain tables on the coordinator.
COORDINATOR = frozenset(
    {
        "ledger",
        "ledger_head",
        "ledger_pending",
        "idempotency_keys",
        "webhook_events",
        "webhook_deliveries",
        "sign_in_links_used",
        "admin_sessions_ended",
        "schema_readers",
        "alembic_version",
    }
)
GROUPS = {**dict.fromkeys(BY_RECIPIENT, "recipient"), **dict.fromkeys(BY_MEMBER, "member")}
KEYS = {**BY_RECIPIENT, **BY_MEMBER}

# What the catalog says, in this schema: every primary key and unique index, and every
# foreign key with its column pairs in order.
UNIQUE_SQL = """
SELECT t.relname, i.relname,
       array(SELECT a.attname FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(num, pos)
             JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.num
             ORDER BY k.pos)
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE x.indisunique AND n.nspname = current_schema()
"""
FOREIGN_SQL = """
SELECT c.conname, t.relname, p.relname,
       array(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY AS k(num, pos)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.num
             ORDER BY k.pos),
       array(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY AS k(num, pos)
             JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.num
             ORDER BY k.pos)
FROM pg_constraint c
JOIN pg_class t ON t.oid = c.conrelid
JOIN pg_class p ON p.oid = c.confrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE c.contype = 'f' AND n.nspname = current_schema()
"""
COLUMNS_SQL = """
SELECT table_name, column_name, is_nullable, data_type, character_maximum_length
FROM information_schema.columns WHERE table_schema = current_schema()
"""


def distribution_problems(connection: Connection) -> list[str]:
    """Everything in this schema that Citus would refuse to distribute as documented."""
    problems: list[str] = []
    tables = set(connection.execute(text(COLUMNS_SQL)).scalars())
    for table in sorted(tables ^ (GROUPS.keys() | REFERENCE | COORDINATOR)):
        problems.append(f"{table}: in the schema or the documented distribution, not both")
    columns = {(r[0], r[1]): r for r in connection.execute(text(COLUMNS_SQL))}
    key_types: dict[str, set[tuple[Any, ...]]] = {}
    for table, key in KEYS.items():
        column = columns.get((table, key))
        if column is None:
            problems.append(f"{table}: no distribution column {key}")
            continue
        if column.is_nullable != "NO":
            problems.append(f"{table}.{key}: nullable")
        key_types.setdefault(GROUPS[table], set()).add(tuple(column[3:]))
    for group, types in sorted(key_types.items()):
        if len(types) != 1:  # co-located tables hash the same type
            problems.append(f"{group}: distribution columns of different types {types}")
    for table, index, names in connection.execute(text(UNIQUE_SQL)):
        if table in KEYS and KEYS[table] not in names:
            problems.append(f"{table}: unique {index} {names} lacks {KEYS[table]}")
    for name, child, parent, from_columns, to_columns in connection.execute(text(FOREIGN_SQL)):
        pairs = set(zip(from_columns, to_columns, strict=True))
        if parent in REFERENCE:
            continue
        if child not in GROUPS or parent not in GROUPS:
            if child in COORDINATOR and parent in COORDINATOR:
                continue
            problems.append(f"{name}: {child} -> {parent} crosses distributed and local tables")
        elif GROUPS[child] != GROUPS[parent]:
            problems.append(f"{name}: {child} (by {GROUPS[child]}) -> {parent} (by member)")
        elif (KEYS[child], KEYS[parent]) not in pairs:
            problems.append(f"{name}: {child} -> {parent} not through the distribution column")
    return problems


@pytest.mark.postgres
def test_every_table_is_ready_to_distribute(engine_at: EngineAt) -> None:
    engine = engine_at("postgresql", "0004")
    with engine.connect() as connection:
        # Tables made by later migrations are missing at 0004, not wrong.
        later = (
            "sign_in_links_used:",
            "sender_activity:",
            "ledger_pending:",
            "admin_sessions_ended:",
            "schema_readers:",
        )
        before = [p for p in distribution_problems(connection) if not p.startswith(later)]
    # What 0005 fixes, so the check is seen to catch each kind of problem.
    for expected in (
        "invitations: unique pk_invitations ['id'] lacks recipient_digest",
        "messages: unique pk_messages ['id'] lacks recipient_digest",
        "decisions: unique pk_decisions ['id'] lacks recipient_digest",
        "consents: unique pk_consents ['id'] lacks member_id",
        "contacts: unique pk_contacts ['id'] lacks member_id",
        "complaints: unique pk_complaints ['id'] lacks member_id",
        "fk_messages_invitation_id_invitations: messages -> invitations not through the "
        "distribution column",
        "fk_consent_recipients_consent_id_consents: consent_recipients (by recipient) -> "
        "consents (by member)",
        "fk_invitations_consent_id_consents: invitations (by recipient) -> consents (by member)",
        "fk_invitations_member_id_members: invitations (by recipient) -> members (by member)",
    ):
        assert expected in before
    assert len(before) == 10

    upgrade(engine, "head")
    with engine.connect() as connection:
        assert distribution_problems(connection) == []
        foreign = {r[0]: r[1:] for r in connection.execute(text(FOREIGN_SQL))}
    # The co-located keys that remain: a message's invitation, a member's own rows.
    assert foreign == {
        "fk_messages_recipient_digest_invitations": (
            "messages",
            "invitations",
            ["recipient_digest", "invitation_id"],
            ["recipient_digest", "id"],
        ),
        "fk_consents_member_id_members": ("consents", "members", ["member_id"], ["id"]),
        "fk_contacts_member_id_members": ("contacts", "members", ["member_id"], ["id"]),
    }


SCALING = Path(__file__).parents[2] / "docs" / "scaling.md"
_TABLE_ROW = re.compile(r"^\| `(\w+)` \| by (recipient|member) \| `(\w+)` \|", re.MULTILINE)
_DISTRIBUTE = re.compile(
    r"^SELECT create_distributed_table\('(\w+)', '(\w+)'(?:, colocate_with => '(\w+)')?\);$",
    re.MULTILINE,
)


def test_the_documented_sql_distributes_every_table_the_documentation_lists() -> None:
    """docs/scaling.md's table and its `create_distributed_table` block name the same
    tables, by the same columns, as the distribution checked above, each co-located with
    the first table of its group, and parents before the tables pointing at them."""
    text_ = SCALING.read_text(encoding="utf-8")
    listed = {name: (group, column) for name, group, column in _TABLE_ROW.findall(text_)}
    expected = {t: ("recipient", c) for t, c in BY_RECIPIENT.items()} | {
        t: ("member", c) for t, c in BY_MEMBER.items()
    }
    assert listed == expected
    statements = _DISTRIBUTE.findall(text_)
    order = [name for name, _, _ in statements]
    assert sorted(order) == sorted(expected), "every listed table distributed once"
    for name, column, colocated in statements:
        first = "recipients" if name in BY_RECIPIENT else "members"
        assert column == KEYS[name], name
        assert colocated == ("" if name == first else first), name
        assert order.index(first) <= order.index(name), name
    assert order.index("invitations") < order.index("messages")


@pytest.fixture
def engine_at(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EngineAt]:
    """Fresh databases migrated only up to a given revision."""
    opened: list[Iterator[Engine]] = []
    engines: list[Engine] = []

    def make(kind: str, revision: str) -> Engine:
        if kind == "sqlite":
            engine = make_engine(f"sqlite:///{tmp_path / f'db{len(engines)}.db'}")
        else:
            schemas = _postgres_engine(request.getfixturevalue("postgres_admin"))
            engine = next(schemas)
            opened.append(schemas)
        engines.append(engine)
        upgrade(engine, revision)
        return engine

    yield make
    for engine in engines:
        engine.dispose()
    for schemas in opened:
        next(schemas, None)  # drops the schema


def upgrade(engine: Engine, revision: str) -> None:
    """`courtois migrate`, stopping at `revision`."""
    _alembic(engine, command.upgrade, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Back down to `revision`, in one transaction as `migrate` runs."""
    _alembic(engine, command.downgrade, revision)


def _alembic(engine: Engine, run: Any, revision: str) -> None:
    config = alembic_config()
    with engine.execution_options(**{WRITE_OPTION: True}).begin() as connection:
        config.attributes["connection"] = connection
        run(config, revision)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every row of every table, as plain tuples of the columns named, sorted."""

    rows: dict[str, list[tuple[Any, ...]]]
    columns: dict[str, tuple[str, ...]]

    @classmethod
    def of(
        cls,
        engine: Engine,
        names: Collection[str] | None = None,
        columns: Mapping[str, Collection[str]] | None = None,
    ) -> Snapshot:
        """The tables named, by default those the database has (an older revision has
        fewer than the code knows), with the columns named, by default those they have."""
        schema = inspect(engine)
        names = set(schema.get_table_names()) if names is None else set(names)
        rows, kept = {}, {}
        with engine.connect() as connection:
            for name, table in metadata.tables.items():
                if name not in names:
                    continue
                present = {column["name"] for column in schema.get_columns(name)}
                wanted = set(columns[name]) if columns else present
                kept[name] = tuple(c.key for c in table.c if c.key in present & wanted)
                found = connection.execute(select(*(table.c[c] for c in kept[name])))
                rows[name] = sorted(map(tuple, found), key=repr)
        return cls(rows, kept)

    def project(self, columns: Mapping[str, tuple[str, ...]]) -> dict[str, list[tuple[Any, ...]]]:
        """These tables' rows with only these columns (what an older revision holds)."""
        projected = {}
        for name, wanted in columns.items():
            index = [self.columns[name].index(column) for column in wanted]
            rows = (tuple(row[i] for i in index) for row in self.rows[name])
            projected[name] = sorted(rows, key=repr)
        return projected


def fill(ctx: Context) -> None:
    """A little of everything, written by the use cases: contacts (picked and not), two
    consents (one revoked), invitations sent and reminded, a complaint, an unsubscribe."""
    add_members(ctx)
    people = [f"p{i}@example.org" for i in range(8)]
    import_contacts(ctx, "ana", [ContactInput(p) for p in people], "csv", T0)
    select_contacts(ctx, "ana", people[:4], T0)
    sent = by_email(send_invites(ctx, "ana", people[:5], T0, reminders=1, key="k1"))
    other = send_invites(ctx, "bruno", people[4:8], T0 + timedelta(minutes=1))
    transport = MemoryTransport()
    run_pass(ctx, T0 + timedelta(minutes=11), transport)
    run_pass(ctx, T0 + timedelta(days=15), transport)
    revoke_consent(ctx, other["consent_id"], T0 + timedelta(days=15, minutes=1))
    complaint = BounceReport("arf", "complaint", (BouncedRecipient(people[0], "", False),))
    assert apply_bounce(ctx, complaint, T0 + timedelta(days=15, minutes=2))["complaints"] == 1
    unsubscribe(ctx, ctx.digest_email(people[1]), T0 + timedelta(days=16))
    # The first address book went a day after its import, picked or not: a later one.
    later = ["late0@example.org", "late1@example.org"]
    import_contacts(ctx, "ana", [ContactInput(p) for p in later], "csv", T0 + timedelta(days=16))
    select_contacts(ctx, "ana", later[:1], T0 + timedelta(days=16))
    assert sent
    assert transport.sent


def foreign_keys_hold(engine: Engine) -> None:
    """No row breaks a foreign key (PostgreSQL checks them as they are added)."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_migration_0005_keeps_every_row(kind: str, engine_at: EngineAt) -> None:
    # Filled by today's code, which writes tables 0004 lacks, then taken down to 0004: the
    # rows an 0004 database would hold.
    engine = engine_at(kind, "head")
    settings = Settings(secret_key=SECRET, platform_name="Agora", base_url="https://a.test")
    ctx = Context(engine=engine, settings=settings)
    fill(ctx)
    written = Snapshot.of(engine)
    downgrade(engine, "0004")
    before = Snapshot.of(engine)
    assert before.rows == written.project(before.columns)
    assert all(before.rows[t] for t in ("contacts", "complaints", "decisions", "messages"))

    upgrade(engine, "head")
    assert Snapshot.of(engine, before.rows, before.columns) == before
    # 0007 rebuilds the member-side record from the invitations and their emails exactly as
    # the use cases had kept it in step (sent, reminded, revoked, unsubscribed).
    rebuilt = Snapshot.of(engine, ["sender_activity"]).rows["sender_activity"]
    assert rebuilt == written.rows["sender_activity"]
    # 0011 gives each contact the search key the code writes for new ones.
    assert Snapshot.of(engine, ["contacts"]).rows["contacts"] == written.rows["contacts"]
    assert any(row[4] for row in rebuilt)
    foreign_keys_hold(engine)
    schema = inspect(engine)
    assert schema.get_foreign_keys("messages") == [
        {
            "name": "fk_messages_recipient_digest_invitations",
            "constrained_columns": ["recipient_digest", "invitation_id"],
            "referred_schema": None,
            "referred_table": "invitations",
            "referred_columns": ["recipient_digest", "id"],
            "options": {},
            **({"comment": None} if kind == "postgresql" else {}),
        }
    ]
    assert schema.get_foreign_keys("invitations") == []
    assert schema.get_foreign_keys("consent_recipients") == []
    assert schema.get_pk_constraint("invitations")["constrained_columns"] == [
        "recipient_digest",
        "id",
    ]
    widened = ["member_id", "id"] if kind == "postgresql" else ["id"]
    assert schema.get_pk_constraint("complaints")["constrained_columns"] == widened

    # The upgraded database keeps working, integer ids included.
    more = send_invites(ctx, "ana", ["q1@example.org", "q2@example.org"], T0 + timedelta(days=17))
    run_pass(ctx, T0 + timedelta(days=17, minutes=11), MemoryTransport())
    after = Snapshot.of(engine)
    assert len(after.rows["invitations"]) == len(before.rows["invitations"]) + 2
    decision_ids = [row[0] for row in after.rows["decisions"]]
    assert len(set(decision_ids)) == len(decision_ids)
    assert max(decision_ids) > max(row[0] for row in before.rows["decisions"])
    assert more["invitations"]

    downgrade(engine, "0004")
    down = Snapshot.of(engine)
    assert down.rows == after.project(down.columns)
    # Only what later migrations made is gone.
    assert after.rows.keys() - down.rows.keys() == {
        "sign_in_links_used",
        "sender_activity",
        "ledger_pending",
        "admin_sessions_ended",
        "schema_readers",
    }
    foreign_keys_hold(engine)
    assert inspect(engine).get_pk_constraint("invitations")["constrained_columns"] == ["id"]
