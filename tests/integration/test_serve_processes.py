"""`courtois serve --processes N`: the worker processes stop with their parent, even one
killed outright (SIGKILL), instead of serving on and holding the port. The workers ask
Linux's kernel for it (PR_SET_PDEATHSIG), and these tests read Linux's /proc."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from conftest import SECRET

COURTOIS = str(Path(sys.executable).parent / "courtois")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _children(parent: int) -> set[int]:
    """The processes whose parent is `parent`, read from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # pid (comm) state ppid ...: comm may hold spaces, so read after its last ")".
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == parent:
            found.add(int(entry.name))
    return found


def _running(pid: int) -> bool:
    """Whether the process exists and has not ended (a zombie has ended: it waits only for
    whoever adopted it to read its status)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _port_free(port: int) -> bool:
    """Whether the port can be bound again, as `courtois serve` binds it."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_the_workers_stop_when_their_parent_is_killed(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("COURTOIS_")},
        "COURTOIS_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "COURTOIS_SECRET_KEY": SECRET,
    }
    migrated = subprocess.run(
        [COURTOIS, "migrate"], env=env, capture_output=True, text=True, timeout=120
    )
    assert migrated.returncode == 0, migrated.stderr
    port = _free_port()
    with (tmp_path / "serve.log").open("w") as log:
        server = subprocess.Popen(
            [COURTOIS, "serve", "--port", str(port), "--processes", "2"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own group: whatever happens, the test can stop all it started.
            start_new_session=True,
        )
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 90
        ready = 0
        while ready < 5 and time.monotonic() < deadline:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                answered = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                ready += answered.status_code == 200
            except httpx.HTTPError:
                time.sleep(0.2)
        assert ready == 5, (tmp_path / "serve.log").read_text()
        # Both uvicorn workers (and multiprocessing's resource tracker, which goes once
        # nobody holds its pipe any more).
        workers = _children(server.pid)
        assert len(workers) >= 2, workers

        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_running(pid) for pid in workers):
            time.sleep(0.1)
        assert [pid for pid in workers if _running(pid)] == []
        assert _port_free(port)
    finally:
        for pid in workers:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)


def _child(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )


def test_a_worker_whose_parent_died_before_it_asked_stops_at_once() -> None:
    """The race the request cannot cover by itself: the parent died before it was made
    (here, the parent named is not this process's), so no signal would ever come."""
    env = dict(os.environ)
    gone = _child(
        "import time\n"
        "from courtois.parent_death import die_with_parent\n"
        "die_with_parent(1)\n"
        "time.sleep(30)\n",
        env,
    )
    assert gone.returncode == -signal.SIGTERM, gone.stderr
    kept = _child(
        "import os\n"
        "from courtois.parent_death import die_with_parent\n"
        "die_with_parent(os.getppid())\n"
        "print('serving')\n",
        env,
    )
    assert (kept.returncode, kept.stdout) == (0, "serving\n"), kept.stderr
