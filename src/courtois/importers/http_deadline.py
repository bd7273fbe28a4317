"""An httpx transport whose every connect, send and receive is cut to one `Deadline`.

httpx bounds each network wait by its timeout, and a response's headers and body are read in
many waits: a server sending one byte a few seconds apart never trips it. httpx takes no
network backend of its own, so this transport is httpx's, its connection pool rebuilt with a
backend that gives each wait what is left of the deadline. A wait cut short raises httpx's
own timeout exceptions; the caller asks the deadline which limit was reached.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from courtois.importers.deadline import Deadline, DeadlinePassed


class DeadlineTransport(httpx.HTTPTransport):
    """httpx's transport (HTTP/1.1, certificates checked as httpx checks them), bounded."""

    def __init__(self, deadline: Deadline) -> None:
        super().__init__()
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            network_backend=_Backend(deadline),
        )


def _cut(deadline: Deadline, timeout: float | None, kind: type[Exception]) -> float:
    try:
        return deadline.cut(timeout)
    except DeadlinePassed as passed:
        raise kind(str(passed)) from passed


class _Backend(httpcore.SyncBackend):
    def __init__(self, deadline: Deadline) -> None:
        self._deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        wait = _cut(self._deadline, timeout, httpcore.ConnectTimeout)
        stream = super().connect_tcp(host, port, wait, local_address, socket_options)
        return _Stream(stream, self._deadline)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, deadline: Deadline) -> None:
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _cut(self._deadline, timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _cut(self._deadline, timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        wait = _cut(self._deadline, timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, wait), self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)
