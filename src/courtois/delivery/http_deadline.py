"""A total deadline for one HTTP exchange, which httpx's timeouts are not.

httpx's timeouts bound each socket operation: a server that trickles a byte every few
seconds holds a request for as long as it likes. The network backend below clamps every
connect, TLS handshake, read and write to what is left of the deadline the calling thread
set with `deadline()`, so the whole exchange (connect, send, response) ends by then with
an httpx timeout error. Outside `deadline()` it changes nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from courtois.http_waits import CutBackend

_local = threading.local()


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Every socket operation of this thread within the block ends `seconds` from now."""
    previous = getattr(_local, "until", None)
    _local.until = time.monotonic() + seconds
    try:
        yield
    finally:
        _local.until = previous


def _left(timeout: float | None, late: type[Exception]) -> float | None:
    until: float | None = getattr(_local, "until", None)
    if until is None:
        return timeout
    remaining = until - time.monotonic()
    if remaining <= 0:
        raise late("deadline reached")
    return remaining if timeout is None else min(timeout, remaining)


def deadline_client(**options: Any) -> httpx.Client:
    """An httpx client whose exchanges honour `deadline()` (proxies included)."""
    client = httpx.Client(**options)
    transports = [client._transport, *client._mounts.values()]
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if backend is not None:
            pool._network_backend = CutBackend(backend, _left)  # type: ignore[union-attr]
    return client
