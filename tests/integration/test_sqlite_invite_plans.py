"""On SQLite too, what an invitation reads it finds by key, not by walking a busy index.

SQLite keeps no statistics unless asked, and without them it read a recipient's emails
(`recipient_facts`) through ix_messages_state_scheduled: every scheduled or sent email of
the platform, on every invitation, a cost that grew with the table. Each SELECT that
`invite` runs is explained here on a store that already holds other members' emails.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from support import T0, add_members, send_invites

from conftest import SECRET
from courtois.config import Settings
from courtois.services.context import Context
from courtois.store.engine import make_engine
from courtois.store.migrate import migrate


@pytest.fixture
def sqlite_ctx(tmp_path: Path) -> Iterator[tuple[Context, Path]]:
    """A migrated SQLite store and its file."""
    path = tmp_path / "courtois.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    settings = Settings(secret_key=SECRET, platform_name="Agora", base_url="https://a.test")
    yield Context(engine=engine, settings=settings), path
    engine.dispose()


def test_every_read_of_an_invitation_goes_by_key(sqlite_ctx: tuple[Context, Path]) -> None:
    ctx, path = sqlite_ctx
    add_members(ctx)
    # Other people's emails, scheduled: what the state index would have walked.
    send_invites(ctx, "bruno", [f"other{i}@example.org" for i in range(40)], T0)
    seen: dict[str, Any] = {}

    @event.listens_for(ctx.engine, "before_cursor_execute")
    def record(_conn, _cursor, statement, parameters, _context, executemany):  # type: ignore[no-untyped-def]
        if not executemany and statement.lstrip().upper().startswith("SELECT"):
            seen[statement] = parameters

    send_invites(ctx, "ana", [f"p{i}@example.org" for i in range(5)], T0)
    event.remove(ctx.engine, "before_cursor_execute", record)
    assert any("FROM messages" in statement for statement in seen)

    problems: dict[str, list[str]] = {}
    with sqlite3.connect(path) as raw:
        for statement, parameters in seen.items():
            steps = [row[3] for row in raw.execute("EXPLAIN QUERY PLAN " + statement, parameters)]
            bad = [
                step
                for step in steps
                if step.startswith("SCAN ") or "ix_messages_state_scheduled" in step
            ]
            if bad:
                problems[" ".join(statement.split())[:200]] = bad
    assert problems == {}
