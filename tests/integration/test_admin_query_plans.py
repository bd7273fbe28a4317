"""Every query the admin pages' services run on PostgreSQL has an index to run on, and
uses it to go straight to its rows.

As in `test_query_plans.py`: a history is made through the real services, then each
statement the admin services run (figures per day, recipient lookup, emails in doubt and
their resolution, the ledger check) is explained with sequential scans priced out. Stricter
here: a scan of a whole index (an index scan with no condition on its columns) is no better
than a sequential scan, so every index scan must have an `Index Cond`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from admin_support import admin_settings, make_history
from smtp_server import FaultyHandler, smtp_server
from sqlalchemy import Engine, event
from support import T0, send_invites
from test_query_plans import EXPLAINABLE, unserved

from conftest import _postgres_engine
from courtois.delivery.smtp import SmtpTransport, parse_smtp_url
from courtois.services.admin_ledger import check_ledger
from courtois.services.admin_lookup import look_up_recipient
from courtois.services.admin_statistics import daily_figures
from courtois.services.admin_unknown import resolve_unknown, unknown_messages
from courtois.services.context import Context
from courtois.services.worker import run_pass
from courtois.store.migrate import migrate

INDEX_SCANS = {"Index Scan", "Index Only Scan", "Bitmap Index Scan"}


@pytest.fixture
def recorded(postgres_admin: Engine) -> Iterator[tuple[Context, list[tuple[str, Any]]]]:
    """A migrated PostgreSQL schema, and a list that records statements once switched on
    (by appending None to it)."""
    schemas = _postgres_engine(postgres_admin)
    engine = next(schemas)
    migrate(engine)
    seen: list[tuple[str, Any]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def record(_conn, _cursor, statement, parameters, _context, executemany):  # type: ignore[no-untyped-def]
        if seen and not executemany and EXPLAINABLE.match(statement):
            seen.append((statement, parameters))

    yield Context(engine=engine, settings=admin_settings()), seen
    next(schemas, None)  # drops the schema


def whole_index_scans(plan: dict[str, Any]) -> Iterator[str]:
    """Indexes a plan reads from end to end (no condition on the index's columns)."""
    if plan.get("Node Type") in INDEX_SCANS and "Index Cond" not in plan:
        yield str(plan.get("Index Name"))
    for child in plan.get("Plans", ()):
        yield from whole_index_scans(child)


def run_admin_scenario(ctx: Context, seen: list[tuple[str, Any]]) -> None:
    """A few days of history, emails in doubt, then every admin service."""
    history = make_history(ctx)
    send_invites(ctx, "ana", ["x1@example.org", "x2@example.org", "x3@example.org"], T0)
    with smtp_server(FaultyHandler(drop_in_data=True)) as url:
        assert run_pass(ctx, T0 + timedelta(minutes=12), SmtpTransport(parse_smtp_url(url))).unknown
    seen.append(("(recording starts)", None))
    day = history.first_day
    figures = daily_figures(ctx, day - timedelta(days=3), day + timedelta(days=30))
    assert sum(figures.sent) == 5
    for person in history.people.values():
        look_up_recipient(ctx, person)
    listed, total = unknown_messages(ctx)
    assert total == len(listed) == 3
    resolve_unknown(ctx, [listed[0].id], "sent", T0 + timedelta(hours=1))
    resolve_unknown(ctx, [m.id for m in listed[1:]], "failed", T0 + timedelta(hours=1))
    assert check_ledger(ctx).report.ok


def test_every_query_of_the_admin_services_goes_straight_to_its_rows(
    recorded: tuple[Context, list[tuple[str, Any]]],
) -> None:
    ctx, seen = recorded
    run_admin_scenario(ctx, seen)
    distinct = dict(seen[1:])
    assert len(distinct) > 15  # the scenario really exercised the services

    assert unserved(ctx, distinct, also=(whole_index_scans,)) == {}
