"""httpcore's network backend with every wait cut short by a rule of the caller's.

httpx bounds each socket wait by its timeout, and an exchange is many waits: a server that
trickles a byte every few seconds never trips it. Wrapping the backend of httpx's connection
pool is the one place every connect, TLS handshake, read and write goes through; `Cut` says
what each may take (the rest of one deadline), or raises the timeout it names when nothing
is left. Two users: an import's single deadline (`importers.http_deadline`) and a webhook
POST's own (`delivery.http_deadline`).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable
from typing import Any

import httpcore

# The wait a socket operation may take, given its own timeout and the httpcore timeout
# exception to raise when no time is left.
Cut = Callable[[float | None, type[Exception]], float | None]


class CutStream(httpcore.NetworkStream):
    """A connection whose every read, write and TLS handshake waits at most what `cut` says."""

    def __init__(self, inner: httpcore.NetworkStream, cut: Cut) -> None:
        self._inner = inner
        self._cut = cut

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._cut(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._cut(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        wait = self._cut(timeout, httpcore.ConnectTimeout)
        return CutStream(self._inner.start_tls(ssl_context, server_hostname, wait), self._cut)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class CutBackend(httpcore.NetworkBackend):
    """`inner` (httpcore's own backend), its connections made and used within `cut`."""

    def __init__(self, inner: httpcore.NetworkBackend, cut: Cut) -> None:
        self._inner = inner
        self._cut = cut

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        wait = self._cut(timeout, httpcore.ConnectTimeout)
        stream = self._inner.connect_tcp(host, port, wait, local_address, socket_options)
        return CutStream(stream, self._cut)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        wait = self._cut(timeout, httpcore.ConnectTimeout)
        return CutStream(self._inner.connect_unix_socket(path, wait, socket_options), self._cut)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)
