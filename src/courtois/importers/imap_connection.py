"""An imaplib connection whose every connect, send and receive is cut to one `Deadline`.

imaplib gives its socket one timeout, for each wait, and reads lines through a buffered file
that waits as many times as a line takes bytes: a server sending a byte a few seconds apart
never trips it. Here each receive the buffer makes, each send and the connection itself get
what is left of the deadline (at most the timeout), whichever socket is current (plain, or
TLS after STARTTLS).
"""

from __future__ import annotations

import imaplib
import io
import ssl
from typing import TYPE_CHECKING

from courtois.importers.deadline import Deadline

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

# imaplib's own bound on one line of the server's (its private `_MAXLINE`).
MAX_LINE = 1_000_000


class BoundedIMAP4(imaplib.IMAP4):
    """IMAP over TCP, with TLS from the first byte when `tls` is given (as IMAP4_SSL)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float,
        deadline: Deadline,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.wait = timeout
        self.deadline = deadline
        self._tls = tls
        self._incoming = io.BufferedReader(_Receiver(self))
        super().__init__(host, port, timeout=timeout)

    def open(self, host: str = "", port: int = 143, timeout: float | None = None) -> None:
        """Connect within the deadline (`timeout`, imaplib's, gives way to it), and start TLS
        at once when asked to."""
        super().open(host, port, self.deadline.cut(self.wait))
        if self._tls is not None:
            self.sock = self._tls.wrap_socket(self.sock, server_hostname=host)
            self.file = self.sock.makefile("rb")  # as imaplib keeps it, though unused here

    def read(self, size: int) -> bytes:
        return self._incoming.read(size)

    def readline(self) -> bytes:
        line = self._incoming.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise self.error(f"got more than {MAX_LINE} bytes")
        return line

    def send(self, data: ReadableBuffer) -> None:
        self.sock.settimeout(self.deadline.cut(self.wait))
        self.sock.sendall(data)


class _Receiver(io.RawIOBase):
    """The connection's current socket as a raw stream, each receive cut to the deadline."""

    def __init__(self, imap: BoundedIMAP4) -> None:
        super().__init__()
        self._imap = imap

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        sock = self._imap.sock
        sock.settimeout(self._imap.deadline.cut(self._imap.wait))
        return sock.recv_into(buffer)
