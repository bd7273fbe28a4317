"""At most once, proven the hard way: a worker process is SIGKILLed mid-batch while it
sends to a real SMTP server. Afterwards no message arrived twice, every message is sent or
`unknown` (never silently retried), and none is lost."""

from __future__ import annotations

import email
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from smtp_server import FaultyHandler, smtp_server
from sqlalchemy import func, select

from conftest import SECRET
from courtois.config import Settings
from courtois.delivery.smtp import SmtpTransport, parse_smtp_url
from courtois.services.context import Context
from courtois.services.invitations import ConsentInput, InviteRequest, invite
from courtois.services.members import register_member
from courtois.services.previews import preview_invitations
from courtois.services.worker import run_pass
from courtois.store.engine import make_engine
from courtois.store.migrate import migrate
from courtois.store.tables import messages

POSTAL = "Agora, 1 Example Street, 99999 Exampleton"
RECIPIENTS = 30
COURTOIS = str(Path(sys.executable).parent / "courtois")


def test_sigkill_mid_batch_sends_nothing_twice_and_loses_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'courtois.db'}"
    engine = make_engine(url)
    migrate(engine)
    ctx = Context(
        engine, Settings(secret_key=SECRET, platform_name="Agora", platform_postal_address=POSTAL)
    )
    # Consent given a while ago: the undo window is over and everything is due now.
    given = datetime.now(UTC) - timedelta(minutes=15)
    register_member(ctx, "ana", "ana@members.example", "Ana", "en", given)
    emails = tuple(f"r{i}@example{i % 3}.org" for i in range(RECIPIENTS))
    preview = preview_invitations(ctx, "ana", RECIPIENTS, "", None, 0)
    request = InviteRequest(
        "ana", emails, "", None, 0, preview.preview_hash, ConsentInput(preview.consent_text)
    )
    invite(ctx, request, given)

    handler = FaultyHandler(data_delay=0.15)
    with smtp_server(handler) as smtp_url:
        env = {
            **os.environ,
            "COURTOIS_DATABASE_URL": url,
            "COURTOIS_SECRET_KEY": SECRET,
            # The same platform as the invitations were previewed for: the worker holds any
            # message whose words differ from the consented preview.
            "COURTOIS_PLATFORM_NAME": "Agora",
            "COURTOIS_SMTP_URL": smtp_url,
            "COURTOIS_PLATFORM_POSTAL_ADDRESS": POSTAL,
            "COURTOIS_SMTP_CONNECTIONS": "1",
        }
        worker = subprocess.Popen(
            [COURTOIS, "worker", "--interval", "0.1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 60
            while len(handler.received) < 5:
                assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
                assert time.monotonic() < deadline, "the worker never started sending"
                time.sleep(0.02)
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
        finally:
            if worker.poll() is None:
                worker.kill()
            if worker.stderr:
                worker.stderr.close()
        arrived_at_kill = len(handler.received)
        assert 5 <= arrived_at_kill < RECIPIENTS

        # A later pass, once the dead worker's leases ran out, resolves what it held.
        after = datetime.now(UTC) + timedelta(minutes=6)
        run_pass(ctx, after, SmtpTransport(parse_smtp_url(smtp_url)))

    ids = Counter(email.message_from_bytes(raw)["Message-ID"] for _, raw in handler.received)
    assert all(count == 1 for count in ids.values()), "a message arrived twice"
    with engine.connect() as connection:
        states = dict(
            connection.execute(
                select(messages.c.state, func.count()).group_by(messages.c.state)
            ).all()
        )
    assert set(states) <= {"sent", "unknown"}, states
    assert sum(states.values()) == RECIPIENTS
    # Everything marked sent did arrive; unknown ones are the ones the dead worker held.
    with engine.connect() as connection:
        sent = connection.execute(select(messages.c.id).where(messages.c.state == "sent"))
        sent_ids = list(sent.scalars())
    headers = " ".join(str(header) for header in ids)
    assert all(message_id in headers for message_id in sent_ids)
    assert states.get("unknown", 0) >= 1
    engine.dispose()
