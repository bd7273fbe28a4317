"""One time limit for reading a whole account (CardDAV, IMAP), over all its network waits.

A network timeout bounds each wait, so a server that sends one byte just inside it keeps a
reader going for ever. Every connect, send and receive of one import is therefore given what
is left of one deadline (at most its own timeout), and none is given anything once it passed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

DEFAULT_DEADLINE = 120.0  # seconds


class DeadlinePassed(TimeoutError):
    """The deadline passed before a network wait began: a timeout like any other."""


class Deadline:
    """`seconds` from now; `cut` is what a network wait may take of it."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._end = clock() + seconds

    def remaining(self) -> float:
        return self._end - self._clock()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def cut(self, timeout: float | None) -> float:
        """`timeout`, or the time left if that is shorter; raises DeadlinePassed when none
        is left (a socket given 0 would not wait, and report it as something else)."""
        left = self.remaining()
        if left <= 0:
            raise DeadlinePassed(f"the {self.seconds:g} seconds allowed have passed")
        return left if timeout is None else min(timeout, left)
