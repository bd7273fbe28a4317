"""The demo's mail sink: an SMTP server (aiosmtpd) that accepts everything and keeps it in
memory, so the worker's real SMTP transport has somewhere real to deliver to.

Nothing is relayed and nothing is written to disk: what was captured is gone when the demo
stops, as a recipient's "forget me" would want of any copy.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

# Far above any invitation (a few tens of kilobytes), far below what would hurt the demo.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Captured:
    """One message as the server received it: numbered from 1 in order of arrival."""

    number: int
    received_at: datetime
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    peer: str


class CaptureStore:
    """The last `max_messages` messages (and at most `max_bytes` of them), oldest dropped
    first; safe to share between the SMTP thread and the web server's threads."""

    def __init__(self, max_messages: int = 500, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self._messages: deque[Captured] = deque()
        self._bytes = 0
        self._next = 1
        self._lock = threading.Lock()

    def add(
        self, mail_from: str, rcpt_tos: tuple[str, ...], raw: bytes, peer: str = ""
    ) -> Captured:
        """Keep a message, numbered after the last one; evict the oldest past the bounds."""
        with self._lock:
            message = Captured(self._next, datetime.now(UTC), mail_from, rcpt_tos, raw, peer)
            self._next += 1
            self._messages.append(message)
            self._bytes += len(raw)
            while self._messages and (
                len(self._messages) > self.max_messages or self._bytes > self.max_bytes
            ):
                self._bytes -= len(self._messages.popleft().raw)
            return message

    def get(self, number: int) -> Captured | None:
        """The message numbered `number`, unless it was never received or was evicted."""
        with self._lock:
            for message in self._messages:
                if message.number == number:
                    return message
        return None

    def newest_first(self) -> list[Captured]:
        """Every kept message, the latest first, as an inbox lists them."""
        with self._lock:
            return list(reversed(self._messages))

    def __len__(self) -> int:
        with self._lock:
            return len(self._messages)


class _Keeper:
    """aiosmtpd handler: accept every recipient and keep every message."""

    def __init__(self, store: CaptureStore) -> None:
        self.store = store

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or envelope.content or b""
        body = raw if isinstance(raw, bytes) else raw.encode("utf-8")
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer or "")
        self.store.add(envelope.mail_from or "", tuple(envelope.rcpt_tos), body, peer)
        return "250 2.0.0 Captured by the courtois demo, not delivered"


class CaptureServer:
    """The SMTP server on its own thread and event loop, on a socket bound before it starts
    (port 0 picks a free one, with no window in which another program could take it)."""

    def __init__(self, store: CaptureStore, host: str = "127.0.0.1", port: int = 0) -> None:
        self.store = store
        self.host = host
        self._socket = socket.create_server((host, port))
        self.port: int = self._socket.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="capture-smtp", daemon=True)
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    @property
    def url(self) -> str:
        """What COURTOIS_SMTP_URL would say to send here."""
        return f"smtp://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        """Serve in the background; return once the server accepts connections."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the capture SMTP server did not start")
        if self._failure is not None:
            raise RuntimeError(f"the capture SMTP server failed: {self._failure}")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and close the socket; open sessions are dropped."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
        self._socket.close()

    def _protocol(self) -> SMTP:
        # A fixed hostname: the default asks DNS for this machine's name, which can stall.
        return SMTP(
            _Keeper(self.store),
            hostname="courtois-demo.localhost",
            enable_SMTPUTF8=True,
            data_size_limit=MAX_MESSAGE_BYTES,
            loop=self._loop,
        )

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server: Any = None
        try:
            server = self._loop.run_until_complete(
                self._loop.create_server(self._protocol, sock=self._socket)
            )
        except OSError as error:
            self._failure = error
        self._ready.set()
        if server is None:
            self._loop.close()
            return
        try:
            self._loop.run_forever()
        finally:
            # Not wait_closed(): on newer Pythons it waits for open sessions, which are
            # cancelled here instead.
            server.close()
            sessions = asyncio.all_tasks(self._loop)
            for task in sessions:
                task.cancel()
            if sessions:
                self._loop.run_until_complete(asyncio.gather(*sessions, return_exceptions=True))
            self._loop.close()
