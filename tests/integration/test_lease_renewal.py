"""A live worker keeps its leases: a batch held up by a slow server (each reply just under
the client's timeout) outlasts the lease, and another worker's pass meanwhile must not take
its messages for abandoned and make them `unknown`. Over real SMTP, with a lease of two
seconds and a server that answers each body after one."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import timedelta

import pytest
from smtp_server import FaultyHandler, smtp_server
from support import T0, add_members, by_email, messages_of, send_invites

from courtois.delivery.smtp import SmtpTransport, parse_smtp_url
from courtois.services import leases
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
