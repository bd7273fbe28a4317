"""Two workers at once on the same database and SMTP server: every message leaves exactly
once. On PostgreSQL they split the due recipients with FOR UPDATE SKIP LOCKED; on SQLite
the single writer takes turns."""

from __future__ import annotations

import email
import threading
from collections import Counter
from datetime import timedelta

import pytest
from smtp_server import FaultyHandler, smtp_server
from sqlalchemy import func, select

from conftest import T0
from courtois.delivery.smtp import SmtpTransport, parse_smtp_url
from courtois.services.context import Context
from courtois.services.invitations import ConsentInput, InviteRequest, invite
from courtois.services.members import register_member
from courtois.services.previews import preview_invitations
from courtois.services.worker import PassReport, Shard, run_pass
from courtois.store.tables import messages

MEMBERS = 5
PER_MEMBER = 80


def test_two_workers_send_each_message_once(ctx: Context) -> None:
    for m in range(MEMBERS):
        member = f"m{m}"
        register_member(ctx, member, f"{member}@members.example", f"M{m}", "en", T0)
        emails = tuple(f"r{m}-{i}@example.org" for i in range(PER_MEMBER))
        preview = preview_invitations(ctx, member, PER_MEMBER, "", None, 0)
        request = InviteRequest(
            member, emails, "", None, 0, preview.preview_hash, ConsentInput(preview.consent_text)
        )
        invite(ctx, request, T0)
    handler = FaultyHandler(data_delay=0.005)
    reports: list[PassReport] = []
    with smtp_server(handler) as url:
        barrier = threading.Barrier(2)

        def work() -> None:
            barrier.wait()
            reports.append(
                run_pass(ctx, T0 + timedelta(minutes=11), SmtpTransport(parse_smtp_url(url)))
            )

        threads = [threading.Thread(target=work) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        # Whatever one worker left to the other's next pass is sent by a last pass.
        run_pass(ctx, T0 + timedelta(minutes=12), SmtpTransport(parse_smtp_url(url)))

    total = MEMBERS * PER_MEMBER
    ids = Counter(email.message_from_bytes(raw)["Message-ID"] for _, raw in handler.received)
    assert len(ids) == total
    assert max(ids.values()) == 1
    with ctx.engine.connect() as connection:
        sent = connection.execute(
            select(func.count()).where(messages.c.state == "sent")
        ).scalar_one()
    assert sent == total
    assert len(reports) == 2
    if ctx.engine.dialect.name == "postgresql":
        # SKIP LOCKED lets the second worker take the recipients the first does not hold.
        assert min(r.sent for r in reports) > 0, [r.sent for r in reports]


def test_two_shards_split_the_recipients_and_send_each_message_once(ctx: Context) -> None:
    for m in range(MEMBERS):
        member = f"m{m}"
        register_member(ctx, member, f"{member}@members.example", f"M{m}", "en", T0)
        emails = tuple(f"r{m}-{i}@example.org" for i in range(20))
        preview = preview_invitations(ctx, member, 20, "", None, 0)
        request = InviteRequest(
            member, emails, "", None, 0, preview.preview_hash, ConsentInput(preview.consent_text)
        )
        invite(ctx, request, T0)
    handler = FaultyHandler()
    reports: dict[int, PassReport] = {}
    with smtp_server(handler) as url:
        barrier = threading.Barrier(2)

        def work(index: int) -> None:
            barrier.wait()
            transport = SmtpTransport(parse_smtp_url(url))
            reports[index] = run_pass(
                ctx, T0 + timedelta(minutes=11), transport, shard=Shard(index, 2)
            )

        threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)

    total = MEMBERS * 20
    assert sum(r.sent for r in reports.values()) == total
    ids = Counter(email.message_from_bytes(raw)["Message-ID"] for _, raw in handler.received)
    assert len(ids) == total
    assert max(ids.values()) == 1
    # Each shard sent to its own recipients only, and both had some.
    with ctx.engine.connect() as connection:
        digests = dict(connection.execute(select(messages.c.id, messages.c.recipient_digest)).all())
    for index in range(2):
        assert reports[index].sent > 0
    by_shard = Counter(int(digest[:2], 16) % 2 for digest in digests.values())
    assert (reports[0].sent, reports[1].sent) == (by_shard[0], by_shard[1])


def test_a_shard_names_one_of_its_count() -> None:
    assert len(Shard(0, 1).prefixes) == 256
    assert set(Shard(0, 3).prefixes).isdisjoint(Shard(1, 3).prefixes)
    assert sum(len(Shard(i, 3).prefixes) for i in range(3)) == 256
    for index, count in ((2, 2), (-1, 2), (0, 0), (0, 257)):
        with pytest.raises(ValueError, match="shard"):
            Shard(index, count)
