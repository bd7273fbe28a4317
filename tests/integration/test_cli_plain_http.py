"""An http:// base_url puts an http one-click unsubscribe URL in every email, which RFC 8058
forbids and mailbox providers ignore: `courtois serve` and `courtois worker` start anyway
(tests and local setups run on http) but say so once, in one line on stderr. A base_url
on this machine (loopback, localhost) reaches no mailbox provider, and is left silent."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from test_cli import EXECUTABLE, NOW, environment, in_parallel, ok
from test_cli_postal_address import WARNING as NO_POSTAL_ADDRESS

WARNING = (
    "courtois: warning: base_url is http://, not https://: mailbox providers will not honour "
    "the one-click unsubscribe every email offers (RFC 8058 requires https); set base_url to "
    "the public https:// URL (docs/operations.md)."
)
PLAIN = "http://agora.example"
SILENT = [
    "https://agora.example",
    "http://127.0.0.1:8000",
    "http://127.0.0.2",
    "http://localhost:8000",
    "http://LOCALHOST./",
    "http://[::1]:8000",
]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A migrated database, and no base_url: the default, on this machine."""
    settings = environment(f"sqlite:///{tmp_path / 'c.db'}")
    ok(settings, "migrate")
    return settings


def _apart(env: dict[str, str], count: int) -> list[dict[str, str]]:
    """`count` environments, each on its own copy of the database: commands run at once
    never wait on one another's SQLite lock."""
    database = Path(env["COURTOIS_DATABASE_URL"].removeprefix("sqlite:///"))
    copies = []
    for index in range(count):
        copy = database.with_name(f"copy-{index}.db")
        shutil.copyfile(database, copy)
        copies.append({**env, "COURTOIS_DATABASE_URL": f"sqlite:///{copy}"})
    return copies


def test_a_worker_pass_warns_once_and_runs(env: dict[str, str]) -> None:
    one, two = ({**apart, "COURTOIS_BASE_URL": PLAIN} for apart in _apart(env, 2))
    runs = [
        (one, ["worker", "--once", "--now", NOW, "--json"]),
        (two, ["worker", "--once", "--processes", "2", "--now", NOW, "--json"]),
    ]
    for done in in_parallel(runs):
        assert done.returncode == 0, done.stderr
        assert done.stderr.splitlines() == [WARNING]
        assert len(done.stdout.splitlines()) == 1  # the pass's counts, as without it


def test_https_and_this_machine_are_silent(env: dict[str, str]) -> None:
    urls = [None, *SILENT]
    runs = [
        (
            {**apart, **({"COURTOIS_BASE_URL": url} if url else {})},
            ["worker", "--once", "--now", NOW],
        )
        for apart, url in zip(_apart(env, len(urls)), urls, strict=True)
    ]
    for done in in_parallel(runs):
        assert done.returncode == 0, done.stderr
        assert done.stderr == "", (done.args, done.stderr)


def _start(
    started: list[subprocess.Popen[bytes]], env: dict[str, str], log: Path, *args: str
) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        process = subprocess.Popen(
            [EXECUTABLE, *args], env=env, stdout=output, stderr=subprocess.STDOUT
        )
    started.append(process)
    return process


def _stop(process: subprocess.Popen[bytes], log: Path) -> list[str]:
    """Stopped as an operator stops it (SIGTERM): its whole output, line by line."""
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    return log.read_text(encoding="utf-8").splitlines()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_warns_once_and_serves(
    env: dict[str, str], tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    port, log = _free_port(), tmp_path / "serve.log"
    server = _start(started, {**env, "COURTOIS_BASE_URL": PLAIN}, log, "serve", "--port", str(port))
    deadline, answered = time.monotonic() + 60, None
    while answered is None and time.monotonic() < deadline:
        assert server.poll() is None, log.read_text(encoding="utf-8")
        try:
            answered = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        except httpx.HTTPError:
            time.sleep(0.1)
    assert answered is not None, log.read_text(encoding="utf-8")
    assert answered.status_code == 200
    lines = _stop(server, log)
    # This setup has no postal address either: that is said too, once, after base_url.
    assert [line for line in lines if "warning" in line] == [WARNING, NO_POSTAL_ADDRESS]
    assert lines[0] == WARNING  # before uvicorn's own lines


def test_a_serving_worker_warns_once_however_many_passes(
    env: dict[str, str], tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    log = tmp_path / "worker.log"
    plain = {**env, "COURTOIS_BASE_URL": PLAIN}
    worker = _start(started, plain, log, "worker", "--interval", "0.05")
    deadline = time.monotonic() + 60
    while WARNING not in log.read_text(encoding="utf-8") and time.monotonic() < deadline:
        assert worker.poll() is None, log.read_text(encoding="utf-8")
        time.sleep(0.05)
    time.sleep(1)  # passes go on, every 50 ms
    assert _stop(worker, log) == [WARNING]
