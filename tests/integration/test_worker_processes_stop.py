"""`courtois worker --processes N`: its processes stop with their parent, even one killed
outright (SIGKILL), instead of passing on for ever; so do those of `--once`, which would
otherwise finish their pass and wait for work for ever. The processes ask Linux's kernel
for it (PR_SET_PDEATHSIG), and these tests read Linux's /proc, as `test_serve_processes`
does."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from smtp_server import FaultyHandler, smtp_server
from test_serve_processes import COURTOIS, _children, _running

from conftest import SECRET
from courtois.config import Settings
from courtois.services.context import Context
from courtois.services.invitations import ConsentInput, InviteRequest, invite
from courtois.services.members import register_member
from courtois.services.previews import preview_invitations
from courtois.store.engine import make_engine
from courtois.store.migrate import migrate

SPAWNED = "spawn_main"


def _spawned(parent: int) -> set[int]:
    """The children `spawn` started (the workers, not multiprocessing's resource tracker)."""
    found = set()
    for pid in _children(parent):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if SPAWNED.encode() in command:
            found.add(pid)
    return found


def _holds(pid: int, path: Path) -> bool:
    """Whether the process has this file open (a worker opens the database on its first
    pass, after it has set itself up to stop when told)."""
    try:
        descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for descriptor in descriptors:
        try:
            if os.readlink(descriptor) == str(path):
                return True
        except OSError:
            continue
    return False


def _gone_within(pids: set[int], seconds: float) -> list[int]:
    """The processes still running after waiting up to `seconds` for all to end."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_running(pid) for pid in pids):
        time.sleep(0.1)
    return sorted(pid for pid in pids if _running(pid))


def _kill_all(pids: set[int], parent: subprocess.Popen[bytes]) -> None:
    for pid in pids:
        if _running(pid):
            os.kill(pid, signal.SIGKILL)
    if parent.poll() is None:
        parent.kill()
        parent.wait(timeout=10)


def test_the_worker_processes_stop_when_their_parent_is_killed(tmp_path: Path) -> None:
    database = tmp_path / "worker.db"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("COURTOIS_")},
        "COURTOIS_DATABASE_URL": f"sqlite:///{database}",
        "COURTOIS_SECRET_KEY": SECRET,
    }
    migrated = subprocess.run(
        [COURTOIS, "migrate"], env=env, capture_output=True, text=True, timeout=120
    )
    assert migrated.returncode == 0, migrated.stderr
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        worker = subprocess.Popen(
            [COURTOIS, "worker", "--processes", "2", "--interval", "0.2"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            # Its own group: whatever happens, the test can stop all it started.
            start_new_session=True,
        )
    children: set[int] = set()
    try:
        deadline = time.monotonic() + 90
        passing: set[int] = set()
        while len(passing) < 2 and time.monotonic() < deadline:
            assert worker.poll() is None, log.read_text()
            passing = {pid for pid in _spawned(worker.pid) if _holds(pid, database.resolve())}
            time.sleep(0.1)
        assert len(passing) == 2, log.read_text()
        # Both worker processes, and multiprocessing's resource tracker, which goes once
        # nobody holds its pipe any more.
        children = _children(worker.pid)

        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        assert _gone_within(children, 10) == [], log.read_text()
    finally:
        _kill_all(children, worker)


POSTAL = "Agora, 1 Example Street, 99999 Exampleton"
RECIPIENTS = 20


def test_the_processes_of_one_pass_stop_when_their_parent_is_killed(tmp_path: Path) -> None:
    """`worker --once --processes 2`, killed while its processes send (over a slow real
    SMTP server): they stop too, instead of finishing the pass and then waiting for more
    work for ever."""
    url = f"sqlite:///{tmp_path / 'once.db'}"
    engine = make_engine(url)
    migrate(engine)
    settings = Settings(secret_key=SECRET, platform_name="Agora", platform_postal_address=POSTAL)
    ctx = Context(engine, settings)
    # Consent given a while ago: the undo window is over and everything is due now.
    given = datetime.now(UTC) - timedelta(minutes=15)
    register_member(ctx, "ana", "ana@members.example", "Ana", "en", given)
    emails = tuple(f"r{i}@example{i % 3}.org" for i in range(RECIPIENTS))
    preview = preview_invitations(ctx, "ana", RECIPIENTS, "", None, 0)
    request = InviteRequest(
        "ana", emails, "", None, 0, preview.preview_hash, ConsentInput(preview.consent_text)
    )
    invite(ctx, request, given)
    engine.dispose()
    handler = FaultyHandler(data_delay=0.5)
    with smtp_server(handler) as smtp_url:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("COURTOIS_")},
            "COURTOIS_DATABASE_URL": url,
            "COURTOIS_SECRET_KEY": SECRET,
            "COURTOIS_PLATFORM_NAME": "Agora",
            "COURTOIS_PLATFORM_POSTAL_ADDRESS": POSTAL,
            "COURTOIS_SMTP_URL": smtp_url,
            "COURTOIS_SMTP_CONNECTIONS": "1",
        }
        worker = subprocess.Popen(
            [COURTOIS, "worker", "--once", "--processes", "2", "--json"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        children: set[int] = set()
        try:
            deadline = time.monotonic() + 90
            while not handler.received and time.monotonic() < deadline:
                assert worker.poll() is None
                time.sleep(0.02)
            assert handler.received, "the worker never started sending"
            children = _children(worker.pid)
            assert len(_spawned(worker.pid)) == 2

            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
            assert _gone_within(children, 10) == []
            assert len(handler.received) < RECIPIENTS  # stopped mid-pass
        finally:
            _kill_all(children, worker)
