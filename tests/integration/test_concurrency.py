"""Caps hold under concurrent requests (invariant 7), on SQLite and on PostgreSQL.

Threads start together at a barrier and call the real use cases. On PostgreSQL each
request takes row locks (member, then recipients sorted by digest) before reading any
fact, so racing requests serialise on exactly the rows they share; on SQLite the write
transaction takes the database lock up front (BEGIN IMMEDIATE).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from conftest import T0
from courtois.delivery.transport import MemoryTransport
from courtois.services.context import Context
from courtois.services.invitations import ConsentInput, InviteRequest, invite
from courtois.services.members import register_member
from courtois.services.previews import preview_invitations
from courtois.services.worker import run_pass
from courtois.store.tables import invitations, messages

THREADS = 16


def race(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run every call at once; return each result or the exception it raised."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def worker(index: int) -> None:
        barrier.wait()
        try:
            results[index] = calls[index]()
        except Exception as error:
            results[index] = error

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def invite_call(
    ctx: Context, member: str, email: str, key: str | None = None, now: datetime = T0
) -> Callable[[], Any]:
    preview = preview_invitations(ctx, member, 1, "", None, 0)
    request = InviteRequest(
        member, (email,), "", None, 0, preview.preview_hash, ConsentInput(preview.consent_text)
    )
    return lambda: invite(ctx, request, now, idempotency_key=key)


def scheduled_count(ctx: Context, **where: str) -> int:
    with ctx.engine.connect() as connection:
        query = (
            select(func.count())
            .select_from(invitations)
            .where(
                invitations.c.state == "scheduled",
                *[invitations.c[k] == v for k, v in where.items()],
            )
        )
        return int(connection.execute(query).scalar_one())


def test_same_sender_same_recipient_invites_once(ctx: Context) -> None:
    register_member(ctx, "ana", "ana@example.org", "Ana", "en", T0)
    results = race([invite_call(ctx, "ana", "x@example.org") for _ in range(THREADS)])
    assert not [r for r in results if isinstance(r, Exception)]
    statuses = sorted(r["invitations"][0]["status"] for r in results)
    assert statuses == ["blocked"] * (THREADS - 1) + ["scheduled"]
    assert scheduled_count(ctx, member_id="ana") == 1


def test_sender_daily_cap_holds_under_a_burst(ctx: Context) -> None:
    tight = replace(ctx.settings, policy=replace(ctx.settings.policy, sender_daily_cap=5))
    capped = Context(ctx.engine, tight)
    register_member(capped, "ana", "ana@example.org", "Ana", "en", T0)
    calls = [invite_call(capped, "ana", f"r{i}@example.org") for i in range(THREADS)]
    results = race(calls)
    assert not [r for r in results if isinstance(r, Exception)]
    assert scheduled_count(capped, member_id="ana") == 5
    denied = [r["invitations"][0] for r in results if r["invitations"][0]["status"] == "blocked"]
    assert len(denied) == THREADS - 5
    for item in denied:
        outcomes = {v["rule"]: v["outcome"] for v in item["decision"]["verdicts"]}
        assert outcomes["sender-quota"] == "deny"


def test_sender_daily_cap_holds_when_the_later_clock_commits_first(ctx: Context) -> None:
    """Two requests read the clock, then queue for the member's lock: the one that read it
    later may commit first. Played in that order here, deterministically: the cap holds."""
    tight = replace(ctx.settings, policy=replace(ctx.settings.policy, sender_daily_cap=5))
    capped = Context(ctx.engine, tight)
    register_member(capped, "ana", "ana@example.org", "Ana", "en", T0)
    later = [
        invite_call(capped, "ana", f"r{i}@example.org", now=T0 + timedelta(seconds=1))
        for i in range(5)
    ]
    earlier = invite_call(capped, "ana", "late@example.org", now=T0)
    assert [call()["invitations"][0]["status"] for call in later] == ["scheduled"] * 5
    (item,) = earlier()["invitations"]
    assert item["status"] == "blocked"
    assert {v["rule"]: v["outcome"] for v in item["decision"]["verdicts"]}["sender-quota"] == "deny"
    assert scheduled_count(capped, member_id="ana") == 5


def test_many_senders_one_inbox_get_one_email_then_a_digest(ctx: Context) -> None:
    members = [f"m{i}" for i in range(8)]
    for member in members:
        register_member(ctx, member, f"{member}@members.example", member.title(), "en", T0)
    first, later = members[:4], members[4:]
    results = race([invite_call(ctx, m, "popular@example.org") for m in first])
    assert not [r for r in results if isinstance(r, Exception)]
    transport = MemoryTransport()
    run_pass(ctx, T0 + timedelta(minutes=11), transport)
    # Racing invitations join the email already scheduled: one email carries all four.
    assert [(o.kind, len(o.invitation_ids)) for o in transport.sent] == [("digest", 4)]

    next_day = T0 + timedelta(days=1)
    calls = [invite_call(ctx, m, "popular@example.org", now=next_day) for m in later]
    results = race(calls)
    assert not [r for r in results if isinstance(r, Exception)]
    with ctx.engine.connect() as connection:
        waiting = set(
            connection.execute(
                select(messages.c.scheduled_at).where(messages.c.state == "scheduled")
            ).scalars()
        )
    # The next four wait out the short window together, as one email to come.
    assert waiting == {T0 + timedelta(minutes=11, days=14)}
    for days in (2, 13, 15, 30):
        run_pass(ctx, T0 + timedelta(days=days, minutes=11), transport)
    assert [(o.kind, len(o.invitation_ids)) for o in transport.sent] == [
        ("digest", 4),
        ("digest", 4),
    ]


def test_idempotency_key_race_creates_once(ctx: Context) -> None:
    register_member(ctx, "ana", "ana@example.org", "Ana", "en", T0)
    calls = [invite_call(ctx, "ana", "x@example.org", key="same-key") for _ in range(8)]
    results = race(calls)
    assert not [r for r in results if isinstance(r, Exception)]
    assert len({r["consent_id"] for r in results}) == 1
    with ctx.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(invitations)).scalar_one() == 1


@pytest.mark.parametrize("rounds", [3])
def test_ledger_never_forks_under_concurrent_writers(ctx: Context, rounds: int) -> None:
    from courtois.services.audit import verify_ledger

    for i in range(4):
        register_member(ctx, f"m{i}", f"m{i}@members.example", f"M{i}", "en", T0)
    calls = [
        invite_call(ctx, f"m{i % 4}", f"r{i}-{n}@example.org")
        for i in range(8)
        for n in range(rounds)
    ]
    results = race(calls)
    assert not [r for r in results if isinstance(r, Exception)]
    report = verify_ledger(ctx.engine)
    assert report.ok, report
