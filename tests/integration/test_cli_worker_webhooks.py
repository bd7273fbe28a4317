"""What `courtois worker` says of webhooks: `--once` counts them in its report (JSON and
human), and the long-running worker writes one line on stderr for a pass whose webhook
attempts failed, naming neither the URL (it may carry a token) nor any address."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from test_cli import EXECUTABLE, NOW, at, courtois, environment, ok

TOKEN = "sekrit-token"


def _dead_url() -> str:
    """A receiver nobody listens at, with a token in its query."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    return f"http://127.0.0.1:{port}/hooks?token={TOKEN}"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A migrated database with webhooks on, toward a dead receiver, and one event
    waiting (an unsubscribe)."""
    settings = environment(
        f"sqlite:///{tmp_path / 'c.db'}",
        COURTOIS_WEBHOOK_URL=_dead_url(),
        COURTOIS_WEBHOOK_SECRET="whsec-0123456789abcdef",
    )
    ok(settings, "migrate")
    ok(settings, "unsubscribe", "--email", "bo@example.org", "--now", NOW, "--json")
    return settings


def test_a_pass_counts_its_webhooks(env: dict[str, str]) -> None:
    report = ok(env, "worker", "--once", "--now", NOW, "--json")
    assert report["webhooks"] == {"delivered": 0, "failed": 1, "given_up": 0}
    assert report["problems"] == {"webhook: ConnectError": 1}
    # Tried again once due, an hour on: the human report says the same.
    human = courtois(env, "worker", "--once", "--now", at(hours=1))
    assert human.returncode == 0, human.stderr
    assert "  webhooks: delivered 0, failed 1, given_up 0" in human.stdout.splitlines()
    assert "  problems: webhook: ConnectError 1" in human.stdout.splitlines()
    for done in (human.stdout, human.stderr):
        assert TOKEN not in done
        assert "127.0.0.1" not in done


def test_a_serving_worker_says_when_webhook_attempts_fail(
    env: dict[str, str], tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    log = tmp_path / "worker.log"
    with log.open("wb") as output:
        worker = subprocess.Popen(
            [EXECUTABLE, "worker", "--interval", "0.05"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=output,
        )
    started.append(worker)
    deadline = time.monotonic() + 60
    while "webhooks:" not in log.read_text(encoding="utf-8") and time.monotonic() < deadline:
        assert worker.poll() is None, log.read_text(encoding="utf-8")
        time.sleep(0.05)
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=30)
    lines = log.read_text(encoding="utf-8").splitlines()
    # The event is tried again 30 s later: one failed pass, one line.
    assert lines == [
        "courtois: webhooks: 1 attempt failed in this pass (ConnectError 1); 0 given up,"
        " the others tried again later"
    ]
