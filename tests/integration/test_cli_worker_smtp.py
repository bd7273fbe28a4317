"""`courtois worker --once` sends over COURTOIS_SMTP_URL; a bad URL is refused clearly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from smtp_server import FaultyHandler, smtp_server

from conftest import SECRET

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
    }
    assert run(env, "migrate").returncode == 0
    failed = run(env, "worker", "--once")
    assert failed.returncode != 0
    assert failed.stderr.count("\n") == 1
    assert "COURTOIS_SMTP_URL" in failed.stderr
