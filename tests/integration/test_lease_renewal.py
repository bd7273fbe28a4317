"""A live worker keeps its leases: a batch held up by a slow server (each reply just under
the client's timeout) outlasts the lease, and another worker's pass meanwhile must not take
its messages for abandoned and make them `unknown`. Over real SMTP, with a lease of two
seconds and a server that answers each body after one."""

from __future__ import annotations

import threading
import time
from contextlib import nullcontext
from dataclasses import replace
from datetime import timedelta

import pytest
from smtp_server import FaultyHandler, smtp_server
from support import T0, add_members, by_email, messages_of, send_invites

from courtois.delivery.smtp import SmtpTransport, parse_smtp_url
from courtois.services import leases, worker_due
from courtois.services import worker as worker_module
from courtois.services.context import Context
from courtois.services.housekeeping import expire_leases
from courtois.services.worker import PassReport, run_pass

UNDO = timedelta(minutes=10)
RECIPIENTS = [f"r{i}@example.org" for i in range(4)]


def test_a_slow_batch_keeps_its_leases(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(leases, "LEASE", timedelta(seconds=2))
    add_members(ctx)
    ids = [item["id"] for item in by_email(send_invites(ctx, "ana", RECIPIENTS, T0)).values()]
    claimed_at = T0 + UNDO
    reports: list[PassReport] = []
    handler = FaultyHandler(data_delay=1.0)
    with smtp_server(handler) as url:
        one_at_a_time = SmtpTransport(replace(parse_smtp_url(url), connections=1))
        worker = threading.Thread(
            target=lambda: reports.append(run_pass(ctx, claimed_at, one_at_a_time))
        )
        started = time.monotonic()
        worker.start()
        time.sleep(3)  # past the first lease, with the batch still at the server
        assert worker.is_alive()
        taken = expire_leases(ctx, claimed_at + timedelta(seconds=time.monotonic() - started))
        worker.join(timeout=60)
    assert taken == 0
    (report,) = reports
    assert (report.sent, report.unknown) == (4, 0)
    assert [m.state for i in ids for m in messages_of(ctx, i)] == ["sent"] * 4
    assert len(handler.received) == 4


def test_outcomes_known_after_a_lost_lease_settle_the_unknown(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stalled worker (a paused process renews nothing) loses its leases; another pass
    makes its messages `unknown`. When it wakes with the server's answers, it settles them:
    accepted is sent, refused for good is failed, refused for now stays unknown (never
    sent again automatically)."""
    monkeypatch.setattr(leases, "LEASE", timedelta(seconds=2))
    monkeypatch.setattr(leases, "renewed", lambda *_: nullcontext())
    # The whole batch in one slice, as a relay that answers in time takes it: what is lost
    # here is the lease, which the worker learns only from its outcomes.
    monkeypatch.setattr(worker_module, "SLICE_SECONDS", 60.0)
    add_members(ctx)
    answer = by_email(send_invites(ctx, "ana", RECIPIENTS, T0))
    claimed_at = T0 + UNDO
    reports: list[PassReport] = []
    handler = FaultyHandler(
        data_delay=2.0,
        rcpt_replies={
            RECIPIENTS[2]: "550 5.7.1 Rejected by policy",
            RECIPIENTS[3]: "451 4.3.0 Later",
        },
    )
    with smtp_server(handler) as url:
        one_at_a_time = SmtpTransport(replace(parse_smtp_url(url), connections=1))
        worker = threading.Thread(
            target=lambda: reports.append(run_pass(ctx, claimed_at, one_at_a_time))
        )
        worker.start()
        time.sleep(3)
        assert worker.is_alive()
        taken = expire_leases(ctx, claimed_at + timedelta(seconds=3))
        worker.join(timeout=60)
    assert taken == 4
    (report,) = reports
    assert (report.sent, report.failed, report.unknown) == (2, 1, 1)
    states = [messages_of(ctx, answer[r]["id"])[0].state for r in RECIPIENTS]
    assert states == ["sent", "sent", "failed", "unknown"]
    assert len(handler.received) == 2


def test_a_pass_longer_than_a_lease_leases_its_later_batches_from_its_elapsed_time(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One batch at a time (a backlog behind a slow relay), each taking longer than a
    lease: the second batch, claimed when the pass has run past a lease, is leased from
    then, not from the pass's start, or another worker's pass takes it for abandoned."""
    monkeypatch.setattr(leases, "LEASE", timedelta(seconds=2))
    monkeypatch.setattr(worker_due, "BATCH", 1)
    add_members(ctx)
    ids = [item["id"] for item in by_email(send_invites(ctx, "ana", RECIPIENTS[:2], T0)).values()]
    claimed_at = T0 + UNDO
    reports: list[PassReport] = []
    with smtp_server(FaultyHandler(data_delay=3.0)) as url:
        worker = threading.Thread(
            target=lambda: reports.append(run_pass(ctx, claimed_at, transport(url)))
        )
        started = time.monotonic()
        worker.start()
        deadline = started + 20
        # Whichever went first is sent; the other is the second batch, at the server.
        while time.monotonic() < deadline and sorted(
            m.state for i in ids for m in messages_of(ctx, i)
        ) != ["sending", "sent"]:
            time.sleep(0.02)
        time.sleep(1.0)  # the second batch at the server, the pass well past a lease
        assert worker.is_alive()
        taken = expire_leases(ctx, claimed_at + timedelta(seconds=time.monotonic() - started))
        worker.join(timeout=60)
    assert taken == 0
    (report,) = reports
    assert (report.sent, report.unknown) == (2, 0)


def transport(url: str) -> SmtpTransport:
    return SmtpTransport(replace(parse_smtp_url(url), connections=1))
