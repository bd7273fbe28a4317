"""A real SMTP server for tests: aiosmtpd in this process, with faults on demand, and a
proxy that records how the client's bytes arrive (to see commands pipelined)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class FaultyHandler:
    """Accepts mail and keeps it, unless told to refuse, stall or hang up. It offers
    PIPELINING unless told not to (aiosmtpd reads pipelined commands in order either way,
    but does not say so by itself)."""

    received: list[tuple[list[str], bytes]] = field(default_factory=list)
    # The MAIL FROM address and options of each message in `received`, in its order.
    mail: list[tuple[str, list[str]]] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    # Recipient -> the reply to the end of its body (after the body arrived).
    data_replies: dict[str, str] = field(default_factory=dict)
    data_delay: float = 0.0
    drop_in_data: bool = False
    # Hang up on RCPT of these recipients (the replies written so far still go out).
    drop_at_rcpt: set[str] = field(default_factory=set)
    # Hang up once the body for these recipients arrived, without a reply.
    drop_after_data: set[str] = field(default_factory=set)
    pipelining: bool = True
    sessions: int = 0
    # The reply to every MAIL instead of 250 (a relay refusing our sender for now).
    mail_reply: str = ""
    # Hang up on every MAIL, before any reply to it.
    drop_at_mail: bool = False

    async def handle_MAIL(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.drop_at_mail:
            server.transport.close()
            return "250 never sent"
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_EHLO(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        self.sessions += 1
        if self.pipelining:
            return [*responses[:-1], "250-PIPELINING", responses[-1]]
        return responses

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address.lower() in self.drop_at_rcpt:
            server.transport.close()
            return "250 never sent"
        reply = self.rcpt_replies.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        self.received.append((list(envelope.rcpt_tos), bytes(envelope.original_content)))
        self.mail.append((envelope.mail_from, list(envelope.mail_options)))
        recipients = {r.lower() for r in envelope.rcpt_tos}
        if self.drop_in_data or recipients & self.drop_after_data:
            # The body arrived, the reply never will: the client cannot know.
            server.transport.close()
            return "250 never sent"
        for recipient in recipients:
            if recipient in self.data_replies:
                return self.data_replies[recipient]
        return "250 Message accepted"


class _Credentials:
    """AUTH PLAIN/LOGIN against one user and password."""

    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user.encode(), password.encode()

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            self.user,
            self.password,
        )
        return AuthResult(success=ok, handled=False)


@contextmanager
def smtp_server(
    handler: FaultyHandler,
    tls: ssl.SSLContext | None = None,
    auth: tuple[str, str] | None = None,
    smtputf8: bool = False,
    starttls: ssl.SSLContext | None = None,
) -> Iterator[str]:
    """Run the server on a free port; yields its URL (smtps:// with TLS from the first
    byte when `tls` is given; STARTTLS offered and required before MAIL when `starttls` is;
    AUTH required when `auth` is given)."""
    port = free_port()
    options: dict[str, Any] = {"enable_SMTPUTF8": smtputf8}
    if starttls is not None:
        options |= {"tls_context": starttls, "require_starttls": True}
    if auth is not None:
        options |= {
            "authenticator": _Credentials(*auth),
            "auth_required": True,
            "auth_require_tls": False,
        }
    controller = Controller(handler, hostname="127.0.0.1", port=port, ssl_context=tls, **options)
    controller.start()
    try:
        yield f"{'smtps' if tls else 'smtp'}://127.0.0.1:{port}"
    finally:
        controller.stop()


@dataclass
class Recording:
    """What the client wrote, chunk by chunk as the proxy read it."""

    chunks: list[bytes] = field(default_factory=list)

    def holding(self, *parts: bytes) -> int:
        """How many chunks hold all these parts at once."""
        return sum(1 for chunk in self.chunks if all(part in chunk for part in parts))


@contextmanager
def recording_proxy(target_port: int) -> Iterator[tuple[int, Recording]]:
    """A TCP proxy in front of the server, on its own thread and loop; yields its port and
    the recording of what clients sent through it."""
    recording = Recording()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    port = free_port()

    async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter, keep: bool) -> None:
        try:
            while data := await source.read(65536):
                if keep:
                    recording.chunks.append(data)
                sink.write(data)
                await sink.drain()
        except ConnectionError:
            pass
        finally:
            sink.close()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(
            pipe(reader, upstream_writer, True), pipe(upstream_reader, writer, False)
        )

    async def main() -> asyncio.Server:
        return await asyncio.start_server(serve, "127.0.0.1", port)

    def run() -> None:
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(main())
        started.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            loop.run_until_complete(server.wait_closed())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(5)
    try:
        yield port, recording
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


@dataclass
class Script:
    """What a scripted peer answers, command by command: each verb's replies in turn, then
    its usual answer. Bodies that arrived are kept."""

    replies: dict[str, list[str]] = field(default_factory=dict)
    bodies: list[bytes] = field(default_factory=list)
    sessions: int = 0
    # Seconds to wait before the greeting ("GREETING") or before answering a verb.
    delays: dict[str, float] = field(default_factory=dict)

    def answer(self, verb: str) -> str:
        queued = self.replies.get(verb)
        if queued:
            return queued.pop(0)
        return {"DATA": "354 go ahead", "QUIT": "221 bye"}.get(verb, "250 ok")


@contextmanager
def scripted_server(script: Script) -> Iterator[str]:
    """A bare SMTP peer on a socket, offering PIPELINING and answering from `script`, for
    the answers no well-behaved server gives; yields its smtp:// URL."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    port = free_port()

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        script.sessions += 1
        try:
            await asyncio.sleep(script.delays.get("GREETING", 0.0))
            writer.write(b"220 scripted ESMTP\r\n")
            while line := await reader.readline():
                verb = line.split(b" ", 1)[0].strip().upper().decode("ascii", "replace")
                await asyncio.sleep(script.delays.get(verb, 0.0))
                if verb == "EHLO":
                    writer.write(b"250-scripted\r\n250 PIPELINING\r\n")
                    continue
                answer = script.answer(verb)
                writer.write(answer.encode() + b"\r\n")
                if verb == "DATA" and answer.startswith("354"):
                    body = await reader.readuntil(b"\r\n.\r\n")
                    script.bodies.append(body)
                    writer.write(script.answer("BODY").encode() + b"\r\n")
                if verb == "QUIT":
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def run() -> None:
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(asyncio.start_server(session, "127.0.0.1", port))
        started.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            loop.run_until_complete(server.wait_closed())
            loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(5)
    try:
        yield f"smtp://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
