"""On SQLite, an invitation and a one-click unsubscribe find their rows by key, not by
walking a state index or scanning a table.

SQLite keeps no statistics unless asked. Asked for a recipient's emails or scheduled
invitations with the state in the WHERE clause, it read them through
ix_messages_state_scheduled and ix_invitations_state_updated: every scheduled email or
invitation of the platform, on every invitation and every click, a cost that grew with the
queue. Each statement the use case runs is recorded and explained here, on a store that
already holds other members' scheduled invitations.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from support import T0, add_members, by_email, send_invites

from conftest import SECRET
from courtois.config import Settings
from courtois.services import worker_due
from courtois.services.context import Context
from courtois.services.recipient_actions import unsubscribe_link
from courtois.services.recipients import unsubscribe
from courtois.store.engine import make_engine
from courtois.store.migrate import migrate
from courtois.tokens import Scope, make_token

# Plan steps that read more than the rows asked for.
BUSY_INDEXES = ("ix_messages_state_scheduled", "ix_invitations_state_")


@pytest.fixture
def sqlite_ctx(tmp_path: Path) -> Iterator[tuple[Context, Path]]:
    """A migrated SQLite store with other members' invitations waiting, and its file."""
    path = tmp_path / "courtois.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    settings = Settings(secret_key=SECRET, platform_name="Agora", base_url="https://a.test")
    ctx = Context(engine=engine, settings=settings)
    add_members(ctx)
    send_invites(ctx, "bruno", [f"other{i}@example.org" for i in range(40)], T0)
    yield ctx, path
    engine.dispose()


def statements_of(ctx: Context, use_case: Callable[[], object]) -> dict[str, Any]:
    """Every SELECT, UPDATE and DELETE the use case runs, with its parameters."""
    seen: dict[str, Any] = {}

    @event.listens_for(ctx.engine, "before_cursor_execute")
    def record(_conn, _cursor, statement, parameters, _context, executemany):  # type: ignore[no-untyped-def]
        if not executemany and statement.lstrip().upper().startswith(
            ("SELECT", "UPDATE", "DELETE")
        ):
            seen[statement] = parameters

    try:
        use_case()
    finally:
        event.remove(ctx.engine, "before_cursor_execute", record)
    return seen


def wide_reads(path: Path, seen: dict[str, Any]) -> dict[str, list[str]]:
    """Each statement whose plan scans a table or walks a busy state index."""
    problems: dict[str, list[str]] = {}
    with sqlite3.connect(path) as raw:
        for statement, parameters in seen.items():
            steps = [row[3] for row in raw.execute("EXPLAIN QUERY PLAN " + statement, parameters)]
            bad = [
                step
                for step in steps
                if step.startswith("SCAN ") or any(index in step for index in BUSY_INDEXES)
            ]
            if bad:
                problems[" ".join(statement.split())[:200]] = bad
    return problems


def test_every_statement_of_an_invitation_goes_by_key(sqlite_ctx: tuple[Context, Path]) -> None:
    ctx, path = sqlite_ctx
    seen = statements_of(
        ctx, lambda: send_invites(ctx, "ana", [f"p{i}@example.org" for i in range(5)], T0)
    )
    assert any("FROM messages" in statement for statement in seen)
    assert wide_reads(path, seen) == {}


def test_every_statement_of_an_unsubscribe_goes_by_key(sqlite_ctx: tuple[Context, Path]) -> None:
    ctx, path = sqlite_ctx
    mine = by_email(send_invites(ctx, "ana", ["bo@example.com", "cy@example.com"], T0))
    token = make_token(SECRET.encode(), Scope.UNSUBSCRIBE, mine["bo@example.com"]["id"])
    later = T0 + timedelta(hours=1)

    def click_then_stop_one_member() -> None:
        unsubscribe_link(ctx, token, later)
        unsubscribe(ctx, ctx.digest_email("cy@example.com"), later, from_member="ana")

    seen = statements_of(ctx, click_then_stop_one_member)
    assert any("FROM messages" in statement for statement in seen)
    assert any(statement.startswith("UPDATE invitations") for statement in seen)
    assert any(statement.startswith("DELETE FROM contacts") for statement in seen)
    assert wide_reads(path, seen) == {}


def test_completing_a_full_batch_reads_its_recipients_by_key(
    sqlite_ctx: tuple[Context, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full batch takes in every other message due to its recipients: by the primary key,
    not through the state index the batch itself is read by (every message due)."""
    ctx, path = sqlite_ctx
    monkeypatch.setattr(worker_due, "BATCH", 5)
    # Every recipient of the batch has a second email due, from another member, a minute
    # later than all the others: not among the first of the batch. (Bruno's ids made in
    # one millisecond are in random order: which of his recipients the batch holds varies.)
    send_invites(
        ctx, "ana", [f"other{i}@example.org" for i in range(40)], T0 + timedelta(minutes=1)
    )
    due_at = T0 + timedelta(minutes=20)
    batch: list[worker_due.Due] = []
    seen = statements_of(ctx, lambda: batch.extend(worker_due.due_messages(ctx, due_at, set())))
    completion = [s for s in seen if "recipient_digest IN" in s and "FROM messages" in s]
    # The ids of the recipients' due emails, then the rows of those that have more.
    assert len(completion) == 2
    assert wide_reads(path, {s: seen[s] for s in completion}) == {}
    held = {m.digest for m in batch}
    assert len(held) == 5
    for digest in held:
        assert sorted(m.member_id for m in batch if m.digest == digest) == ["ana", "bruno"]


def test_a_batch_is_read_in_order_without_sorting_everything_due(
    sqlite_ctx: tuple[Context, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every message due at the same instant (a member's invitation of many, a backlog):
    the batch is read in the index's order and the read stops at its end. Before 0018 the
    plan sorted all of them, joined to their invitations, for each batch."""
    ctx, path = sqlite_ctx
    monkeypatch.setattr(worker_due, "BATCH", 5)
    due_at = T0 + timedelta(minutes=10)
    seen = statements_of(ctx, lambda: worker_due.due_messages(ctx, due_at, set()))
    (batch,) = [s for s in seen if "LIMIT" in s]
    with sqlite3.connect(path) as raw:
        steps = [row[3] for row in raw.execute("EXPLAIN QUERY PLAN " + batch, seen[batch])]
    assert any("ix_messages_state_scheduled" in step for step in steps)
    # Sorting ties of one member and instant by id is fine; sorting the whole read is not.
    assert "USE TEMP B-TREE FOR ORDER BY" not in steps
