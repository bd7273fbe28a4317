"""`courtois serve`: uvicorn, and with `--processes N` its N worker processes, each gone with
its parent.

uvicorn's supervisor (the parent) starts the workers with `spawn` and stops them when it is
told to stop. Killed outright (SIGKILL, the OOM killer) it can tell them nothing, and they
went on serving and holding the port, so a restart found it in use. Each worker asks to
stop with its parent (`parent_death.die_with_parent`) as the first thing it does:
uvicorn's child calls its configuration's `configure_logging` before anything else. On
SIGTERM a worker stops as uvicorn always does, gracefully.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

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


class ServeConfig(uvicorn.Config):
    """uvicorn's configuration, which each worker process receives from the parent and
    calls `configure_logging` on before anything else: the worker's earliest hook."""

    def __init__(self, app: str, *, parent_pid: int, **options: Any) -> None:
        # Set first: uvicorn's own __init__ calls configure_logging (in the parent).
        self.parent_pid = parent_pid
        super().__init__(app, **options)

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


def serve(host: str, port: int, processes: int) -> None:
    """Serve until stopped: in this process, or in `processes` workers under this one as
    their supervisor, as `uvicorn.run` does, each worker stopping when this process dies."""
    if processes == 1:
        uvicorn.run(APP, host=host, port=port, **_OPTIONS)
        return
    config = ServeConfig(
        APP, parent_pid=os.getpid(), host=host, port=port, workers=processes, **_OPTIONS
    )
    # As uvicorn.run: Ctrl-C ends it quietly.
    with contextlib.suppress(KeyboardInterrupt):
        Multiprocess(config, sockets=[config.bind_socket()]).run()
