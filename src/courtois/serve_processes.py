"""`courtois serve`: uvicorn, and with `--processes N` its N worker processes, each gone with
its parent.

uvicorn's supervisor (the parent) starts the workers with `spawn` and stops them when it is
told to stop. Killed outright (SIGKILL, the OOM killer) it can tell them nothing, and they
went on serving and holding the port, so a restart found it in use. Each worker asks to
stop with its parent (`parent_death.die_with_parent`) as the first thing it does:
uvicorn's child calls its configuration's `configure_logging` before anything else. On
SIGTERM a worker stops as uvicorn always does, gracefully.

uvicorn parses HTTP with httptools and runs on uvloop when both are installed (its "auto"
choices, which `courtois serve` leaves as they are; both are dependencies of courtois, uvloop
where it builds: CPython, not Windows), else with h11 and asyncio's own loop. Each server
process says in its log which it got. Measured with bench/api.py, they save the server CPU
a request costs in HTTP parsing and in the loop's callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from courtois.long_lived import freeze_start_up
from courtois.parent_death import die_with_parent

APP = "courtois.web.asgi:app_factory"
_OPTIONS: dict[str, Any] = {
    "factory": True,
    "proxy_headers": True,
    "server_header": False,
    # Paths carry recipients' signed tokens, which are not for log files.
    "access_log": False,
    "log_level": "info",
}

logger = logging.getLogger("uvicorn.error")
STARTUP_FAILURE = 3  # uvicorn.run's exit status when the server never started


class ServeConfig(uvicorn.Config):
    """uvicorn's configuration, which each worker process receives from the parent and
    calls `configure_logging` on before anything else: the worker's earliest hook."""

    def __init__(self, app: str, *, parent_pid: int, **options: Any) -> None:
        # Set first: uvicorn's own __init__ calls configure_logging (in the parent).
        self.parent_pid = parent_pid
        super().__init__(app, **options)

    def load(self) -> None:
        """Load the app as uvicorn does, then say what parses HTTP and what runs the loop
        (uvicorn loads in each server process, on the loop that process serves from)."""
        super().load()
        logger.info("Serving with %s", implementations(self))
        logger.info("Start-up objects kept out of garbage collection: %d", freeze_start_up())

    def configure_logging(self) -> None:
        """In a worker (any process but the parent), first ask to stop with the parent."""
        refused: OSError | None = None
        if os.getpid() != self.parent_pid:
            try:
                die_with_parent(self.parent_pid)
            except OSError as error:
                refused = error
        super().configure_logging()
        if refused is not None:
            logger.warning(
                "Worker [%d] could not ask to stop with its parent (prctl: %s); stop the "
                "whole process group to stop it.",
                os.getpid(),
                refused.strerror,
            )


def implementations(config: uvicorn.Config) -> str:
    """What parses HTTP and what runs the event loop, as a log line says them: with
    httptools and uvloop, "HTTP parser HttpToolsProtocol, event loop uvloop.Loop"."""
    try:
        loop = type(asyncio.get_running_loop())
        running = f"{loop.__module__}.{loop.__qualname__}"
    except RuntimeError:
        running = "not running"
    return f"HTTP parser {config.http_protocol_class.__name__}, event loop {running}"


def serve(host: str, port: int, processes: int) -> None:
    """Serve until stopped: in this process, or in `processes` workers under this one as
    their supervisor, as `uvicorn.run` does, each worker stopping when this process dies."""
    config = ServeConfig(
        APP, parent_pid=os.getpid(), host=host, port=port, workers=processes, **_OPTIONS
    )
    # As uvicorn.run: Ctrl-C ends it quietly, and a server that never started exits 3.
    if processes == 1:
        server = uvicorn.Server(config)
        with contextlib.suppress(KeyboardInterrupt):
            server.run()
        if not server.started:
            sys.exit(STARTUP_FAILURE)
        return
    with contextlib.suppress(KeyboardInterrupt):
        Multiprocess(config, sockets=[config.bind_socket()]).run()
