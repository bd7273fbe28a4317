"""On SQLite, a one-click unsubscribe finds the recipient's rows by key, not by walking a
state index.

SQLite keeps no statistics unless asked. Asked for a recipient's scheduled invitations or
emails with the state in the WHERE clause, it read them through ix_invitations_state_updated
and ix_messages_state_scheduled: every scheduled invitation or email of the platform, on
every click, a cost that grew with the queue. Each statement the click runs is explained
here on a store that already holds other people's scheduled invitations.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from support import T0, add_members, by_email, send_invites

from conftest import SECRET
from courtois.config import Settings
from courtois.services.context import Context
from courtois.services.recipient_actions import unsubscribe_link
from courtois.services.recipients import unsubscribe
from courtois.store.engine import make_engine
from courtois.store.migrate import migrate
from courtois.tokens import Scope, make_token

# Statements whose only plan is a scan, known and accepted: none (contacts, kept by
# member, are found by recipient through ix_contacts_recipient_digest since 0008).
KNOWN_SCANS: tuple[str, ...] = ()


@pytest.fixture
def sqlite_ctx(tmp_path: Path) -> Iterator[tuple[Context, Path]]:
    """A migrated SQLite store and its file."""
    path = tmp_path / "courtois.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    settings = Settings(secret_key=SECRET, platform_name="Agora", base_url="https://a.test")
    yield Context(engine=engine, settings=settings), path
    engine.dispose()


def _explained(path: Path, seen: dict[str, Any]) -> dict[str, list[str]]:
    """Each recorded statement whose plan scans a table or walks a state index."""
    problems: dict[str, list[str]] = {}
    with sqlite3.connect(path) as raw:
        for statement, parameters in seen.items():
            steps = [row[3] for row in raw.execute("EXPLAIN QUERY PLAN " + statement, parameters)]
            bad = [
                step
                for step in steps
                if (step.startswith("SCAN ") and step not in KNOWN_SCANS)
                or "ix_messages_state_scheduled" in step
                or "ix_invitations_state_" in step
            ]
            if bad:
                problems[" ".join(statement.split())[:200]] = bad
    return problems


def test_every_statement_of_an_unsubscribe_goes_by_key(sqlite_ctx: tuple[Context, Path]) -> None:
    ctx, path = sqlite_ctx
    add_members(ctx)
    # Other people's invitations, scheduled: what the state indexes would have walked.
    send_invites(ctx, "bruno", [f"other{i}@example.org" for i in range(40)], T0)
    mine = by_email(send_invites(ctx, "ana", ["bo@example.com", "cy@example.com"], T0))
    seen: dict[str, Any] = {}

    @event.listens_for(ctx.engine, "before_cursor_execute")
    def record(_conn, _cursor, statement, parameters, _context, executemany):  # type: ignore[no-untyped-def]
        if not executemany and statement.lstrip().upper().startswith(
            ("SELECT", "UPDATE", "DELETE")
        ):
            seen[statement] = parameters

    token = make_token(SECRET.encode(), Scope.UNSUBSCRIBE, mine["bo@example.com"]["id"])
    later = T0 + timedelta(hours=1)
    unsubscribe_link(ctx, token, later)
    unsubscribe(ctx, ctx.digest_email("cy@example.com"), later, from_member="ana")
    event.remove(ctx.engine, "before_cursor_execute", record)
    assert any("FROM messages" in statement for statement in seen)
    assert any(statement.startswith("UPDATE invitations") for statement in seen)

    assert _explained(path, seen) == {}
