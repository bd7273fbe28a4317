"""`courtois serve` parses HTTP with httptools and runs on uvloop, the C parser and libuv
loop that uvicorn takes when installed (both dependencies of courtois), in every server
process, and each process says so in its log: a server left on h11 and asyncio's loop
spends more CPU a request (bench/api.py). Each also says how many start-up objects it froze
out of the garbage collector's passes (`long_lived`)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli import EXECUTABLE, environment, ok

FAST = "Serving with HTTP parser HttpToolsProtocol, event loop uvloop.Loop"


@pytest.mark.skipif(
    sys.platform == "win32" or sys.implementation.name != "cpython",
    reason="uvloop is a dependency only on CPython outside Windows",
)
@pytest.mark.parametrize("processes", [1, 2])
def test_every_server_process_serves_with_httptools_and_uvloop(
    tmp_path: Path, processes: int
) -> None:
    env = environment(f"sqlite:///{tmp_path / 'serve.db'}")
    ok(env, "migrate")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [EXECUTABLE, "serve", "--port", str(port), "--processes", str(processes)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        lines: list[str] = []
        # Each process logs "Application startup complete." once it has loaded the app.
        while sum("startup complete" in line for line in lines) < processes:
            line = server.stderr.readline()
            assert line, f"the server stopped: {lines}"
            lines.append(line)
        serving = [line.split(":", 1)[1].strip() for line in lines if "Serving with" in line]
        assert serving == [FAST] * processes, lines
        # Each process keeps what it made while starting out of the collector's passes.
        frozen = [int(line.rsplit(":", 1)[1]) for line in lines if "kept out of garbage" in line]
        assert len(frozen) == processes, lines
        assert min(frozen) > 10_000, lines
    finally:
        server.terminate()
        server.wait(timeout=30)
        if server.stderr is not None:
            server.stderr.close()
