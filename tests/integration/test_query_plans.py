"""Every query the use cases run on PostgreSQL has an index to run on.

A scenario drives the real services (import, invite, a worker pass that sends, reminders,
withdraw, revoke, unsubscribe, join, accept, forget, the /why view, decline, expiry,
purge) while a listener records each statement with its parameters; each SELECT, UPDATE
and DELETE is then explained with sequential scans priced out (`enable_seqscan = off`), so
any plan that still scans a table can only do so because no index serves it. Small tables
make PostgreSQL prefer scans whatever the indexes, which is why the scans are priced out
rather than the tables filled.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from support import T0, add_members, by_email, send_invites

from conftest import SECRET, _postgres_engine
from courtois.config import Settings
from courtois.delivery.transport import MemoryTransport
from courtois.domain.contacts import ContactInput
from courtois.services.contacts import import_contacts, select_contacts
from courtois.services.context import Context
from courtois.services.lifecycle import revoke_consent, withdraw
from courtois.services.recipient_actions import accept, decline, resolve_link
from courtois.services.recipient_view import what_is_held
from courtois.services.recipients import forget_recipient, mark_joined, unsubscribe
from courtois.services.worker import run_pass
from courtois.store.migrate import migrate
from courtois.tokens import Scope, make_token

# Tables read whole on purpose: the one-row chain head.
WHOLE_TABLE_READS = {"ledger_head"}
EXPLAINABLE = re.compile(r"^\s*(SELECT|UPDATE|DELETE|WITH)\b", re.IGNORECASE)


@pytest.fixture
def pg_ctx(postgres_admin: Engine) -> Iterator[tuple[Context, list[tuple[str, Any]]]]:
    """A migrated PostgreSQL schema, and the statements run on it once recording starts."""
    schemas = _postgres_engine(postgres_admin)
    engine = next(schemas)
    migrate(engine)
    seen: list[tuple[str, Any]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def record(_conn, _cursor, statement, parameters, _context, executemany):  # type: ignore[no-untyped-def]
        if not executemany and EXPLAINABLE.match(statement):
            seen.append((statement, parameters))

    settings = Settings(secret_key=SECRET, platform_name="Agora", base_url="https://a.test")
    yield Context(engine=engine, settings=settings), seen
    next(schemas, None)  # drops the schema


def scans(plan: dict[str, Any]) -> Iterator[str]:
    """Relations a plan reads by sequential scan."""
    if plan.get("Node Type") == "Seq Scan":
        yield str(plan.get("Relation Name"))
    for child in plan.get("Plans", ()):
        yield from scans(child)


Finder = Callable[[dict[str, Any]], Iterator[str]]


def unserved(
    ctx: Context, statements: dict[str, Any], also: tuple[Finder, ...] = ()
) -> dict[str, list[str]]:
    """Each statement whose plan, with sequential scans priced out, still scans a table
    (one of WHOLE_TABLE_READS aside) or reads it whole another way `also` finds, with
    those tables; empty when every statement has its index."""
    found: dict[str, list[str]] = {}
    with ctx.engine.connect() as connection:
        connection.execute(text("SET enable_seqscan = off"))
        raw = connection.connection.dbapi_connection
        assert raw is not None
        for statement, parameters in statements.items():
            with raw.cursor() as cursor:
                cursor.execute("EXPLAIN (FORMAT JSON) " + statement, parameters)
                (row,) = cursor.fetchall()
            plan = (row[0] if isinstance(row[0], list) else json.loads(row[0]))[0]["Plan"]
            tables = set(scans(plan)) - WHOLE_TABLE_READS
            tables |= {table for find in also for table in find(plan)}
            if tables:
                found[" ".join(statement.split())[:300]] = sorted(tables)
        raw.rollback()
    return found


def run_scenario(ctx: Context) -> None:
    """Every use case that runs often, on a few dozen rows."""
    add_members(ctx)
    people = [f"p{i}@example.org" for i in range(30)]
    import_contacts(ctx, "ana", [ContactInput(p) for p in people], "csv", T0)
    select_contacts(ctx, "ana", people[:10], T0)
    first = by_email(send_invites(ctx, "ana", people[:10], T0, reminders=1))
    second = send_invites(ctx, "bruno", people[5:15], T0 + timedelta(minutes=1))
    transport = MemoryTransport()
    run_pass(ctx, T0 + timedelta(minutes=11), transport)
    run_pass(ctx, T0 + timedelta(days=15), transport)
    withdraw(ctx, second["invitations"][-1]["id"], T0 + timedelta(days=15, minutes=1))
    revoke_consent(ctx, second["consent_id"], T0 + timedelta(days=15, minutes=2))
    unsubscribe(ctx, ctx.digest_email(people[0]), T0 + timedelta(days=16))
    unsubscribe(ctx, ctx.digest_email(people[1]), T0 + timedelta(days=16), from_member="ana")
    mark_joined(ctx, ctx.digest_email(people[2]), T0 + timedelta(days=16))
    joining = make_token(ctx.settings.token_secrets, Scope.JOIN, first[people[6]]["id"])
    accept(ctx, resolve_link(ctx, Scope.JOIN, joining), T0 + timedelta(days=16))
    forget_recipient(ctx, ctx.digest_email(people[3]), T0 + timedelta(days=16))
    token = make_token(ctx.settings.token_secrets, Scope.WHY, first[people[4]]["id"])
    link = resolve_link(ctx, Scope.WHY, token)
    what_is_held(ctx, link, T0 + timedelta(days=16))
    decline(ctx, link, T0 + timedelta(days=16))
    run_pass(ctx, T0 + timedelta(days=120), transport)


def test_every_query_of_the_use_cases_has_an_index(
    pg_ctx: tuple[Context, list[tuple[str, Any]]],
) -> None:
    ctx, seen = pg_ctx
    run_scenario(ctx)
    distinct = dict(seen)
    assert len(distinct) > 30  # the scenario really exercised the services

    assert unserved(ctx, distinct) == {}
