"""The SMTP transport: pooled connections, bounded concurrency, a per-domain rate limit, and
an exact account of what the server said.

`smtp_session.open_session` opens each connection (TLS from the first byte for smtps://,
STARTTLS on smtp:// as the URL says, EHLO, AUTH when a user is given), as `/healthz` opens
its own. A server that offers PIPELINING then gets the pipelined hot path of
`smtp_pipeline`; any other is spoken to one command at a time through aiosmtplib. Either
way each failure is placed: before the body was sent nothing left (temporary, safe to
retry); after the body was sent and before the reply the message may have been accepted
(unknown, never retried blindly).

Connections stay open from one batch to the next and are let go by `release` (the worker
calls it at the end of each pass); the transport opens new ones when used again.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast
from urllib.parse import parse_qsl, unquote, urlsplit

import aiosmtplib

from courtois.delivery.smtp_lockstep import send_lockstep
from courtois.delivery.smtp_pipeline import ConnectionBroken, ReplyReader, send_pipelined
from courtois.delivery.smtp_session import SessionRefused, open_session
from courtois.delivery.smtp_work import DomainPacer, Work, session_fault
from courtois.delivery.transport import Delivery, Outgoing

__all__ = ["DomainPacer", "SmtpSettings", "SmtpTransport", "parse_smtp_url"]


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """Where and how to connect."""

    host: str
    port: int
    use_tls: bool = False
    username: str | None = None
    password: str | None = None
    connections: int = 4
    per_domain_per_second: float = 20.0
    timeout: float = 30.0
    # Use PIPELINING when the server offers it (off: one command at a time, always).
    pipelining: bool = True
    # Certificates to trust for TLS besides the system's (a private relay's own CA).
    ca_file: str | None = None
    # STARTTLS on smtp://: True required, None when the server offers it, False never.
    starttls: bool | None = None


# `?starttls=` in an smtp:// URL.
_STARTTLS = {"required": True, "auto": None, "off": False}


def parse_smtp_url(
    url: str,
    connections: int = 4,
    per_domain_per_second: float = 20.0,
    ca_file: str | None = None,
) -> SmtpSettings:
    """`smtp://[user:password@]host:port[?starttls=required|auto|off]`, or `smtps://...` for
    TLS from the first byte.

    STARTTLS is `auto` (used when the server offers it, its certificate checked) unless the
    URL has credentials: then `required`, so a password never crosses the network in clear
    unless `starttls=off` says so (a relay on the same machine)."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError(f"not an smtp:// or smtps:// URL: {_without_password(url)!r}")
    use_tls = parts.scheme == "smtps"
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - {"starttls"})
    if unknown:
        raise ValueError(f"unknown option(s) in the SMTP URL: {', '.join(unknown)}")
    chosen = options.get("starttls", "required" if parts.username else "auto")
    if chosen not in _STARTTLS:
        raise ValueError("starttls is one of required, auto, off")
    if use_tls and "starttls" in options:
        raise ValueError("smtps:// is TLS from the first byte: starttls does not apply")
    return SmtpSettings(
        host=parts.hostname,
        port=parts.port or (465 if use_tls else 25),
        use_tls=use_tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        connections=connections,
        per_domain_per_second=per_domain_per_second,
        ca_file=ca_file or None,
        starttls=None if use_tls else _STARTTLS[chosen],
    )


def _without_password(url: str) -> str:
    """The URL as an error may show it: a password never reaches a terminal or a log."""
    return _PASSWORD.sub(r"\1***@", url)


_PASSWORD = re.compile(r"(//[^/@:]*:)[^/]*@")


@dataclass
class _Connection:
    """An open connection; `reader` is set when it is pipelined."""

    client: aiosmtplib.SMTP
    reader: ReplyReader | None = None
    transport: asyncio.Transport | None = None

    @property
    def usable(self) -> bool:
        """Still open."""
        if self.transport is not None:
            return not self.transport.is_closing()
        return self.client.is_connected

    def close(self) -> None:
        """Drop it at once, TLS or not: after a failure or a goodbye there is nothing left
        to say, and a graceful TLS shutdown would outlive the event loop."""
        transport = self.transport or cast(asyncio.Transport | None, self.client.transport)
        if transport is not None:
            transport.abort()
        self.client.close()


class SmtpTransport:
    """Sends batches over up to `connections` SMTP connections at once. One thread at a
    time: each transport runs its own event loop."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: list[_Connection] = []

    def send_batch(self, batch: Sequence[Outgoing], until: float | None = None) -> list[Delivery]:
        """Send the batch on the transport's event loop; the worker stays synchronous."""
        if not batch:
            return []
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(self._send_all(batch, until))

    def release(self) -> None:
        """Say goodbye on every pooled connection and close the loop; the next batch opens
        new ones."""
        if self._loop is None:
            return
        loop, self._loop = self._loop, None
        idle, self._idle = self._idle, []
        try:
            loop.run_until_complete(self._quit_all(idle))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()

    async def _send_all(self, batch: Sequence[Outgoing], until: float | None) -> list[Delivery]:
        work = Work(batch, self.settings.per_domain_per_second, until)
        workers = min(self.settings.connections, len(batch))
        await asyncio.gather(*(self._connection(work) for _ in range(workers)))
        return work.deliveries()

    async def _connection(self, work: Work) -> None:
        """Send from the batch until nothing is left (or its time is up), reconnecting
        after a failure."""
        while work.open:
            connection = self._idle.pop() if self._idle else None
            if connection is None or not connection.usable:
                connection = await self._open(work)
                if connection is None:
                    continue
            if connection.reader is not None and connection.transport is not None:
                kept = await send_pipelined(
                    connection.transport,
                    connection.reader,
                    work,
                    self.settings.timeout,
                    connection.client.supports_extension("smtputf8"),
                )
            else:
                kept = await send_lockstep(connection.client, work)
            if kept:
                self._idle.append(connection)
            else:
                connection.close()

    async def _open(self, work: Work) -> _Connection | None:
        """Connect (TLS, EHLO, AUTH as configured); a failure is the next message's
        outcome, a fault of the relay's session that says nothing of its recipient."""
        try:
            client = await open_session(self.settings)
        except SessionRefused as error:
            index = work.take()
            if index is not None:
                work.done(index, session_fault(f"connect: {error}"))
            return None
        if not (self.settings.pipelining and client.supports_extension("pipelining")):
            return _Connection(client)
        # Take the connection over from aiosmtplib, which reads one reply per command.
        transport = cast(asyncio.Transport, client.transport)
        reader = ReplyReader(asyncio.get_running_loop())
        transport.set_protocol(reader)
        return _Connection(client, reader, transport)

    async def _quit_all(self, connections: list[_Connection]) -> None:
        await asyncio.gather(*(self._quit(c) for c in connections))
        # Aborted transports close their sockets in the loop's next turns: let them.
        for _ in range(3):
            await asyncio.sleep(0)

    async def _quit(self, connection: _Connection) -> None:
        """QUIT, then close, whatever the server answers."""
        try:
            if connection.reader is not None and connection.usable:
                cast(asyncio.Transport, connection.transport).write(b"QUIT\r\n")
                await connection.reader.reply(min(self.settings.timeout, 5.0))
            elif connection.client.is_connected:
                await connection.client.quit()
        except (aiosmtplib.SMTPException, OSError, ConnectionBroken):
            pass
        finally:
            connection.close()
