"""`courtois serve`: uvicorn, and with `--processes N` its N worker processes, each gone with
its parent.

uvicorn's supervisor (the parent) starts the workers with `spawn` and stops them when it is
told to stop. Killed outright (SIGKILL, the OOM killer) it can tell them nothing, and they
went on serving and holding the port, so a restart found it in use. On Linux each worker
asks the kernel to send it SIGTERM when its parent dies (PR_SET_PDEATHSIG), the first
thing it does: uvicorn's child calls its configuration's `configure_logging` before
anything else. It then checks that its parent is still the process that started it: one
that died before the request would never send the signal, so the worker sends it to
itself. On SIGTERM a worker stops as uvicorn always does, gracefully. Other systems have
no such request, and nothing is asked there.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

APP = "courtois.web.asgi:app_factory"
# From <linux/prctl.h>.
PR_SET_PDEATHSIG = 1

_OPTIONS: dict[str, Any] = {
    "factory": True,
    "proxy_headers": True,
    "server_header": False,
    # Paths carry recipients' signed tokens, which are not for log files.
    "access_log": False,
    "log_level": "info",
}

logger = logging.getLogger("uvicorn.error")


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel send this process SIGTERM when its parent dies (Linux); if the parent
    is no longer `parent_pid` (it died first, and the process was adopted), SIGTERM now.
    OSError when the kernel refuses; nothing where there is no such request to make."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
        number = ctypes.get_errno()
        raise OSError(number, os.strerror(number))
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGTERM)


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
