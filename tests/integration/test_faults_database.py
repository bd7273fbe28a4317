"""PostgreSQL crashes while the API and a `courtois worker` run on it, then comes back.

On a cluster of the test's own (the shared server is never stopped): during the outage the
API answers a 503 problem at once and /healthz says the database is down; the worker says
what failed and keeps running. Once the cluster is back both resume without a restart,
what was accepted before the crash is still there, and no message was lost or sent twice.
"""

from __future__ import annotations

import email
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import API_KEY, HandClock, served
from private_postgres import PrivateCluster, private_postgres
from smtp_server import FaultyHandler, smtp_server
from sqlalchemy import Engine, select

from conftest import SECRET
from courtois.config import Settings
from courtois.services.audit import verify_ledger
from courtois.services.context import Context
from courtois.services.worker import run_pass
from courtois.store.engine import make_engine
from courtois.store.migrate import migrate
from courtois.store.tables import invitations, members, messages
from courtois.web.app import create_app

COURTOIS = str(Path(sys.executable).parent / "courtois")
BEFORE = [f"before{i}@example{i % 3}.org" for i in range(8)]
AFTER = [f"after{i}@example{i % 3}.org" for i in range(3)]
PLATFORM = {
    "platform_name": "Agora",
    "base_url": "https://agora.test",
    "platform_postal_address": "Agora, 1 Example Street, 99999 Exampleton",
}
# A lease is 5 minutes: a pass this much later settles what the worker held at the crash.
AFTER_THE_LEASES = timedelta(minutes=6)

pytestmark = pytest.mark.postgres


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return found


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    with private_postgres() as running:
        yield running


def invite(http: httpx.Client, emails: list[str]) -> list[str]:
    shown = http.post("/v1/members/ana/invitations/preview", json={"emails": emails})
    assert shown.status_code == 200, shown.text
    preview = shown.json()
    body = {
        "emails": emails,
        "preview_hash": preview["preview_hash"],
        "consent": {"text_shown": preview["consent_text"], "ip": "192.0.2.7", "user_agent": "t"},
    }
    answer = http.post("/v1/members/ana/invitations", json=body)
    assert answer.status_code == 201, answer.text
    return [item["id"] for item in answer.json()["invitations"]]


def message_states(engine: Engine) -> dict[str, str]:
    with engine.connect() as connection:
        rows = connection.execute(select(messages.c.invitation_id, messages.c.state)).all()
    return {row.invitation_id: row.state for row in rows}


def fault_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if "database-unavailable" in line]


def test_a_database_crash_is_reported_waited_out_and_loses_nothing(
    cluster: PrivateCluster, tmp_path: Path
) -> None:
    engine = make_engine(cluster.url)
    migrate(engine)
    settings = Settings(secret_key=SECRET, api_key=API_KEY, **PLATFORM)
    ctx = Context(engine, settings)
    # Invitations consented a quarter of an hour ago: their undo window is over, so the
    # worker, which runs on the wall clock, sends them at once.
    clock = HandClock(datetime.now(UTC) - timedelta(minutes=15))
    handler = FaultyHandler(data_delay=0.25)
    stdout, stderr = tmp_path / "worker.out", tmp_path / "worker.err"
    with (
        smtp_server(handler) as smtp_url,
        served(create_app(ctx, clock)) as base_url,
        httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=15
        ) as http,
        stdout.open("w") as out,
        stderr.open("w") as err,
    ):
        env = {
            **os.environ,
            "COURTOIS_DATABASE_URL": cluster.url,
            "COURTOIS_SECRET_KEY": SECRET,
            "COURTOIS_PLATFORM_NAME": PLATFORM["platform_name"],
            "COURTOIS_BASE_URL": PLATFORM["base_url"],
            "COURTOIS_SMTP_URL": smtp_url,
            "COURTOIS_PLATFORM_POSTAL_ADDRESS": PLATFORM["platform_postal_address"],
            "COURTOIS_SMTP_CONNECTIONS": "1",
        }
        worker = subprocess.Popen(
            [COURTOIS, "worker", "--interval", "0.2", "--json"], env=env, stdout=out, stderr=err
        )
        try:
            member = {"id": "ana", "email": "ana@members.example", "name": "Ana Lima"}
            assert http.post("/v1/members", json=member).status_code == 200
            before = invite(http, BEFORE)

            # The worker has claimed the batch and is sending it: the database crashes.
            wait_for(lambda: len(handler.received) >= 2, "the worker to start sending")
            cluster.stop("immediate")

            started = time.monotonic()
            refused = http.post("/v1/members", json={**member, "id": "bruno"})
            looked_up = http.get(f"/v1/invitations/{before[0]}")
            health = http.get("/healthz")
            assert time.monotonic() - started < 5, "the API hung on the dead database"
            for response in (refused, looked_up):
                assert response.status_code == 503, response.text
                assert response.headers["content-type"].startswith("application/problem+json")
                assert response.headers["retry-after"] == "5"
                problem = response.json()
                assert problem["type"] == "/problems/database-unavailable"
                assert problem["status"] == 503
                assert "nothing was changed" in problem["detail"]
            assert health.status_code == 503
            assert health.json()["checks"]["database"]["ok"] is False

            # The worker finishes the batch on the wire, fails to record it, says so, and
            # keeps running, trying again less and less often.
            wait_for(lambda: fault_lines(stderr), "the worker to report the outage")
            time.sleep(1.0)
            assert worker.poll() is None, stderr.read_text()
            during = fault_lines(stderr)
            assert 1 <= len(during) <= 4, during
            assert "Traceback" not in stderr.read_text()

            cluster.start()
            # The API and /healthz answer again, from the same processes.
            assert wait_for(lambda: http.get("/healthz").status_code == 200, "/healthz")
            bruno = http.post("/v1/members", json={**member, "id": "bruno"})
            assert bruno.status_code == 200, bruno.text
            kept = http.get(f"/v1/invitations/{before[0]}")
            assert kept.status_code == 200, kept.text
            after = invite(http, AFTER)
            wait_for(
                lambda: {message_states(engine).get(i) for i in after} == {"sent"},
                "the worker to send what was invited after the restart",
            )
            # Said once the pass that recorded them returns, a moment after they are "sent".
            wait_for(lambda: "worker resumed" in stderr.read_text(), "the worker to say so")
            assert worker.poll() is None
        finally:
            worker.send_signal(signal.SIGTERM)
            code = worker.wait(timeout=20)
        assert code == 0, stderr.read_text()

    # What the worker held when the database crashed is settled once its leases run out:
    # it may have left, so it is `unknown`, never sent again.
    settled = run_pass(ctx, datetime.now(UTC) + AFTER_THE_LEASES, None)
    states = message_states(engine)
    assert set(states) == set(before) | set(after), "a message was lost"
    assert {states[i] for i in after} == {"sent"}
    assert {states[i] for i in before} <= {"sent", "unknown"}
    assert settled.unknown == sum(1 for i in before if states[i] == "unknown") >= 1
    ids = Counter(email.message_from_bytes(raw)["Message-ID"] for _, raw in handler.received)
    assert max(ids.values()) == 1, "a message arrived twice"
    arrived = " ".join(str(header) for header in ids)
    with engine.connect() as connection:
        sent = connection.execute(select(messages.c.id).where(messages.c.state == "sent"))
        assert all(message_id in arrived for message_id in sent.scalars())
        assert set(connection.execute(select(members.c.id)).scalars()) == {"ana", "bruno"}
        assert connection.execute(select(invitations.c.id)).scalars().all()
    assert verify_ledger(engine).ok
    engine.dispose()
