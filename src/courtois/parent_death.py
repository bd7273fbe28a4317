"""die_with_parent: a child process that stops when its parent dies, even one killed
outright (SIGKILL, the OOM killer), which can tell its children nothing.

On Linux the child asks the kernel to send it SIGTERM when its parent dies
(PR_SET_PDEATHSIG), then checks that its parent is still the process that started it: one
that died before the request would never send the signal, so the child sends it to itself.
The child stops on SIGTERM as it always does. Other systems have no such request, and
nothing is asked there. `courtois serve --processes N` and `courtois worker --processes N`
ask it of each of their processes.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

# From <linux/prctl.h>.
PR_SET_PDEATHSIG = 1


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
