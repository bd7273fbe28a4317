"""SMTP transactions pipelined (RFC 2920) on a connection aiosmtplib opened.

aiosmtplib waits for each reply before sending the next command: four round trips a
message. When the server offers PIPELINING, a message's MAIL, RCPT and DATA go in one
write, and its body goes in the next write together with the following message's
envelope (the message content may open a group, DATA must close it), so each message costs
one round trip. Replies come back in the order of the commands and are matched to them.

Every outcome keeps the meaning it has one command at a time: a refusal of MAIL, RCPT or
DATA carries the server's code and nothing of that message left; a connection lost or a
reply that never came after the body was sent leaves that message unknown; a message
whose envelope got no reply at all and whose body was never sent has not been attempted.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from dataclasses import dataclass

from courtois.delivery.smtp_envelope import NO_SMTPUTF8, plan
from courtois.delivery.smtp_work import Work, classify, domain_of, refused
from courtois.delivery.transport import Delivery, SendResult

# A reply line longer than this is not SMTP (RFC 5321 allows 512 octets); a server that
# sends one is treated as broken.
MAX_REPLY_LINE = 2048
# What MAIL, RCPT and DATA must answer for the body to follow (aiosmtplib's rule too).
_WANTED = ({250}, {250, 251}, {354})
_COMMANDS = ("MAIL", "RCPT", "DATA")
# What no address in a command may hold: a control character or an angle bracket.
_UNSENDABLE = re.compile(r"[\x00-\x1f<>\x7f]")


class ConnectionBroken(Exception):
    """The connection closed, timed out or spoke something that is not SMTP."""


@dataclass(frozen=True, slots=True)
class Reply:
    """One complete reply: its code and its text, lines joined by newlines."""

    code: int
    text: str

    @property
    def positive(self) -> bool:
        """A 2xx reply."""
        return 200 <= self.code < 300


class ReplyReader(asyncio.Protocol):
    """The connection's protocol once taken over: splits what arrives into replies, in
    order, and holds writes back while the transport's buffer is full."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._buffer = bytearray()
        self._lines: list[str] = []
        self._replies: deque[Reply] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._broken: str | None = None
        self._drained: asyncio.Future[None] | None = None

    def data_received(self, data: bytes) -> None:
        """Cut complete lines; a line whose fourth character is not '-' ends a reply.
        After a malformed line nothing more is read: what follows cannot be matched to
        the commands any more."""
        if self._broken is not None:
            return
        self._buffer.extend(data)
        while (end := self._buffer.find(b"\n")) != -1:
            line = bytes(self._buffer[: end + 1]).rstrip(b"\r\n")
            del self._buffer[: end + 1]
            if len(line) < 3 or not line[:3].isdigit() or len(line) > MAX_REPLY_LINE:
                self._break("malformed reply from the server")
                return
            self._lines.append(line[4:].strip(b" \t").decode("utf-8", "surrogateescape"))
            if line[3:4] != b"-":
                self._replies.append(Reply(int(line[:3]), "\n".join(self._lines)))
                self._lines = []
        if len(self._buffer) > MAX_REPLY_LINE:
            self._break("reply line too long")
        self._wake()

    def eof_received(self) -> bool:
        """The server closed its side."""
        self._break("connection closed by the server")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        """Closed, by either side."""
        self._break(f"connection lost: {exc}" if exc else "connection closed")
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def pause_writing(self) -> None:
        """The transport's buffer is full: writers wait in `drain`."""
        if self._drained is None or self._drained.done():
            self._drained = self._loop.create_future()

    def resume_writing(self) -> None:
        """The buffer emptied."""
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    async def drain(self) -> None:
        """Wait while the transport holds more than it wants to."""
        if self._drained is not None and not self._drained.done():
            await self._drained

    async def reply(self, timeout: float) -> Reply:
        """The next reply, in command order; ConnectionBroken if none comes in time."""
        while not self._replies:
            if self._broken is not None:
                raise ConnectionBroken(self._broken)
            waiter = self._loop.create_future()
            self._waiter = waiter
            timer = self._loop.call_later(timeout, _expire, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        return self._replies.popleft()

    def _break(self, why: str) -> None:
        if self._broken is None:
            self._broken = why
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(ConnectionBroken("no reply from the server in time"))


def envelope(sender: str, recipient: str, smtputf8: bool) -> bytes:
    """MAIL, RCPT and DATA as one group, MAIL asking for SMTPUTF8 when the transaction
    needs it (`smtp_envelope.plan` decides). Raises ValueError for an address that cannot
    be put in a command (a control character, an angle bracket), or that is not ASCII in
    a transaction without SMTPUTF8."""
    if _UNSENDABLE.search(sender) or _UNSENDABLE.search(recipient):
        raise ValueError("an address holds a character SMTP cannot carry")
    if not smtputf8 and not (sender.isascii() and recipient.isascii()):
        raise ValueError(NO_SMTPUTF8)
    option = " SMTPUTF8" if smtputf8 else ""
    return f"MAIL FROM:<{sender}>{option}\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode()


def data_payload(raw: bytes) -> bytes:
    """The message as DATA carries it: CRLF line ends (as aiosmtplib normalises them), a
    dot doubled at the start of a line, and the final dot."""
    lines = raw.count(b"\n")
    if raw.count(b"\r") != lines or raw.count(b"\r\n") != lines:
        raw = b"\r\n".join(raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"))
    if not raw.endswith(b"\r\n"):
        raw += b"\r\n"
    stuffed = raw.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed + b".\r\n"


async def send_pipelined(
    transport: asyncio.Transport, reader: ReplyReader, work: Work, timeout: float, smtputf8: bool
) -> bool:
    """Send from the batch until nothing is left, one round trip a message: the previous
    body and the next envelope in one write. False once the connection is unfit."""
    pending: int | None = None  # envelope accepted, body not yet sent
    pending_raw = b""  # the message its transaction carries
    while True:
        index, group, raw = _next_envelope(work, smtputf8)
        if index is not None:
            delay = work.pacer.book(domain_of(work.batch[index]))
            if delay > 0:
                # The body already due goes now, not after the next message's slot.
                if pending is not None:
                    transport.write(data_payload(pending_raw))
                    if not await _settle(reader, work, timeout, pending, None):
                        work.left.appendleft(index)  # nothing of it was sent
                        return False
                    pending = None
                await asyncio.sleep(delay)
        if pending is None and index is None:
            return True
        body = data_payload(pending_raw) if pending is not None else b""
        transport.write(body + group)
        await reader.drain()
        if pending is not None:
            if not await _settle(reader, work, timeout, pending, index):
                return False
            pending = None
        if index is None:
            continue
        replies: list[Reply] = []
        try:
            while len(replies) < 3:
                replies.append(await reader.reply(timeout))
        except ConnectionBroken as error:
            # Not even MAIL answered: the session failed before the transaction began.
            work.retry(index, f"before data: {error}", session=not replies)
            return False
        unexpected = [
            (reply, command)
            for reply, wanted, command in zip(replies, _WANTED, _COMMANDS, strict=True)
            if reply.code not in wanted
        ]
        if not unexpected:
            pending, pending_raw = index, raw
            continue
        first, command = unexpected[0]
        work.done(index, refused(first.code, first.text, command))
        if replies[2].code == 354:
            # The server wants a body for an envelope it refused in part: hang up rather
            # than send one.
            return False
        transport.write(b"RSET\r\n")
        try:
            reset = await reader.reply(timeout)
        except ConnectionBroken:
            return False
        if not reset.positive:
            return False


async def _settle(
    reader: ReplyReader, work: Work, timeout: float, sent: int, started: int | None
) -> bool:
    """The reply to a body just sent. A connection lost before it leaves that message
    unknown (it may have been accepted: never resent), and the message whose envelope went
    with it not attempted."""
    try:
        answer = await reader.reply(timeout)
    except ConnectionBroken as error:
        work.done(sent, Delivery(SendResult.UNKNOWN, 0, f"after data: {error}"[:200]))
        if started is not None:
            # Its envelope went out behind that body and got no answer at all.
            work.retry(started, f"before data: {error}", session=True)
        return False
    work.done(sent, Delivery(classify(answer.code), answer.code, answer.text[:200], "DATA"))
    return True


def _next_envelope(work: Work, smtputf8: bool) -> tuple[int | None, bytes, bytes]:
    """The next message to start, its envelope and the message its DATA carries, on a
    server that offers SMTPUTF8 or not (`smtputf8`); one whose addresses cannot be sent
    is failed on the spot."""
    while (index := work.take()) is not None:
        try:
            planned = plan(work.batch[index], smtputf8)
            group = envelope(planned.sender, planned.recipient, planned.smtputf8)
        except ValueError as error:
            work.done(index, Delivery(SendResult.PERMANENT, 0, str(error)[:200]))
            continue
        return index, group, planned.raw
    return None, b"", b""
