"""`courtois worker --once` sends over COURTOIS_SMTP_URL; a bad URL is refused clearly."""

from __future__ import annotations

import email
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from smtp_server import FaultyHandler, free_port, smtp_server
from sqlalchemy import create_engine, select

from conftest import SECRET
from courtois.store.tables import invitations, messages, recipients, webhook_events

COURTOIS = str(Path(sys.executable).parent / "courtois")


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COURTOIS, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_worker_once_sends_over_smtp(tmp_path: Path) -> None:
    handler = FaultyHandler()
    with smtp_server(handler) as url:
        env = {
            **os.environ,
            "COURTOIS_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}",
            "COURTOIS_SECRET_KEY": SECRET,
            "COURTOIS_SMTP_URL": url,
            "COURTOIS_PLATFORM_POSTAL_ADDRESS": "Agora, 1 Example Street, 99999 Exampleton",
        }
        for args in (
            ["migrate"],
            ["member", "add", "ana", "--email", "ana@members.example", "--name", "Ana"],
            ["invite", "--member", "ana", "--email", "bo@example.org", "--now", "2026-03-02T09:00"],
        ):
            assert run(env, *args).returncode == 0
        done = run(env, "worker", "--once", "--now", "2026-03-02T09:11", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["sent"] == 1
    assert [rcpts for rcpts, _ in handler.received] == [["bo@example.org"]]


def test_a_bad_smtp_url_is_refused_in_one_line(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "COURTOIS_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}",
        "COURTOIS_SECRET_KEY": SECRET,
        "COURTOIS_SMTP_URL": "http://example.org",
        "COURTOIS_PLATFORM_POSTAL_ADDRESS": "Agora, 1 Example Street, 99999 Exampleton",
    }
    assert run(env, "migrate").returncode == 0
    failed = run(env, "worker", "--once")
    assert failed.returncode != 0
    assert failed.stderr.count("\n") == 1
    assert "COURTOIS_SMTP_URL" in failed.stderr


def invited_env(
    tmp_path: Path, url: str, members: int, each: int, at: str = "2026-03-02T09:00"
) -> dict[str, str]:
    """A database with `members` members who each invited `each` recipients `at` then."""
    env = {
        **os.environ,
        "COURTOIS_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}",
        "COURTOIS_SECRET_KEY": SECRET,
        "COURTOIS_SMTP_URL": url,
        "COURTOIS_PLATFORM_POSTAL_ADDRESS": "Agora, 1 Example Street, 99999 Exampleton",
    }
    assert run(env, "migrate").returncode == 0
    for m in range(members):
        member = f"m{m}"
        added = run(
            env, "member", "add", member, "--email", f"{member}@members.example", "--name", f"M {m}"
        )
        assert added.returncode == 0, added.stderr
        emails = [arg for i in range(each) for arg in ("--email", f"r{m}-{i}@example{i % 5}.org")]
        invited = run(env, "invite", "--member", member, *emails, "--now", at)
        assert invited.returncode == 0, invited.stderr
    return env


def test_worker_once_in_two_processes_sends_each_message_once(tmp_path: Path) -> None:
    handler = FaultyHandler()
    with smtp_server(handler) as url:
        env = invited_env(tmp_path, url, members=3, each=10)
        done = run(
            env, "worker", "--once", "--processes", "2", "--now", "2026-03-02T09:11", "--json"
        )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["sent"] == 30
    ids = Counter(email.message_from_bytes(raw)["Message-ID"] for _, raw in handler.received)
    assert len(ids) == 30
    assert max(ids.values()) == 1
    # Each process spoke to the server on its own connection.
    assert handler.sessions >= 2


def test_worker_in_two_processes_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    handler = FaultyHandler()
    with smtp_server(handler) as url:
        # Invited a quarter of an hour ago: the undo window is over, everything is due now.
        at = (datetime.now(UTC) - timedelta(minutes=15)).isoformat()
        env = invited_env(tmp_path, url, members=2, each=10, at=at)
        worker = subprocess.Popen(
            [COURTOIS, "worker", "--processes", "2", "--interval", "0.2", "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while len(handler.received) < 20 and time.monotonic() < deadline:
                time.sleep(0.1)
            worker.send_signal(signal.SIGTERM)
            out, err = worker.communicate(timeout=60)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    assert worker.returncode == 0, err
    assert sum(json.loads(line)["sent"] for line in out.splitlines()) == 20
    ids = Counter(email.message_from_bytes(raw)["Message-ID"] for _, raw in handler.received)
    assert len(ids) == 20
    assert max(ids.values()) == 1


def stored(tmp_path: Path) -> tuple[list[tuple[str, str]], list[str], list[str | None]]:
    """The (message, invitation) states, the webhook events and the suppressions."""
    engine = create_engine(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        with engine.connect() as connection:
            states = connection.execute(
                select(messages.c.state, invitations.c.state).join(
                    invitations, invitations.c.id == messages.c.invitation_id
                )
            ).all()
            events = connection.execute(select(webhook_events.c.type)).scalars().all()
            suppressed = connection.execute(select(recipients.c.suppressed_reason)).scalars()
            return [tuple(row) for row in states], list(events), list(suppressed)
    finally:
        engine.dispose()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("fault", ["auth-required", "closed-port"])
def test_a_broken_relay_fails_nothing_for_days_then_the_mended_one_sends(
    tmp_path: Path, fault: str
) -> None:
    """`courtois worker --once --now` over four days of a relay that answers 530 or cannot
    be reached: nothing failed, bounced, suppressed or told by webhook; mended, it sends."""
    handler = FaultyHandler()
    with smtp_server(handler, auth=("courtois", "s3cret")) as url:
        host = url.removeprefix("smtp://")
        if fault == "auth-required":
            broken, mended = url, f"smtp://courtois:s3cret@{host}?starttls=off"
        else:
            broken, mended = f"smtp://127.0.0.1:{free_port()}", f"smtp://courtois:s3cret@{host}"
            mended += "?starttls=off"
        env = invited_env(tmp_path, broken, members=1, each=1)
        # Webhooks on (nobody listens): events are written only then.
        env["COURTOIS_WEBHOOK_URL"] = f"http://127.0.0.1:{free_port()}/hooks"
        env["COURTOIS_WEBHOOK_SECRET"] = "whsec-0123456789abcdef"
        for at in (
            "2026-03-02T09:11",
            "2026-03-03T09:00",
            "2026-03-04T09:00",
            "2026-03-05T09:00",
            "2026-03-06T09:00",
        ):
            done = run(env, "worker", "--once", "--now", at, "--json")
            assert done.returncode == 0, done.stderr
            report = json.loads(done.stdout)
            assert (report["sent"], report["failed"], report["retried"]) == (0, 0, 1), at
        assert stored(tmp_path) == ([("scheduled", "scheduled")], [], [None])
        done = run(
            {**env, "COURTOIS_SMTP_URL": mended},
            "worker",
            "--once",
            "--now",
            "2026-03-06T18:00",
            "--json",
        )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["sent"] == 1
    assert [rcpts for rcpts, _ in handler.received] == [["r0-0@example0.org"]]
    assert stored(tmp_path) == ([("sent", "sent")], ["invitation.sent"], [None])


def test_a_bad_process_count_is_refused(tmp_path: Path) -> None:
    env = {**os.environ, "COURTOIS_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}"}
    failed = run(env, "worker", "--once", "--processes", "0")
    assert failed.returncode != 0
    assert "processes" in failed.stderr


def test_sending_without_a_postal_address_is_refused_in_one_line(tmp_path: Path) -> None:
    """Every email gives the platform's postal address: a worker wired to SMTP without one
    refuses to start, before it claims anything."""
    env = {
        **os.environ,
        "COURTOIS_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}",
        "COURTOIS_SECRET_KEY": SECRET,
        "COURTOIS_SMTP_URL": "smtp://127.0.0.1:9",
        "COURTOIS_PLATFORM_POSTAL_ADDRESS": "  ",
    }
    assert run(env, "migrate").returncode == 0
    for args in (["worker", "--once"], ["worker", "--once", "--now", "2026-03-02T10:00"]):
        failed = run(env, *args)
        assert failed.returncode != 0
        assert failed.stderr.count("\n") == 1
        assert "COURTOIS_PLATFORM_POSTAL_ADDRESS" in failed.stderr
