"""The one replaceable method between the worker and the network."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable


class SendResult(StrEnum):
    """What became of one message at the next hop.

    UNKNOWN is the honest answer when the connection broke after the message body was
    sent but before the server's reply: it may have been accepted, so it is never retried
    blindly (invariant 8).
    """

    ACCEPTED = "accepted"
    TEMPORARY = "temporary"
    PERMANENT = "permanent"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One email, ready to go: the worker decided, the transport only carries it."""

    message_id: str
    to: str
    kind: str
    member_names: tuple[str, ...]
    invitation_ids: tuple[str, ...]
    subject: str
    text: str
    raw: bytes = b""
    envelope_from: str = ""
    # The same email without the member's Reply-To, signed, when that header alone makes
    # `raw` need SMTPUTF8: what a server without SMTPUTF8 is given (`smtp_envelope.plan`).
    raw_ascii: bytes = b""


@dataclass(frozen=True, slots=True)
class Delivery:
    """The outcome of one message, with the server's reply for the record."""

    result: SendResult
    code: int = 0
    reply: str = ""
    # The SMTP command the reply answered ("MAIL", "RCPT", "DATA") when it was a refusal:
    # a "no such user" at RCPT proves a dead address, the same words after DATA do not.
    command: str = ""
    # The relay failed or refused the session itself (it could not be reached, TLS, the
    # greeting or AUTH failed, it asked for authentication, refused the sender for now):
    # nothing was said of this message or its recipient, so it waits for the relay to be
    # mended and never counts toward the recipient's retry deadline.
    session: bool = False
    # False for a message the transport did not begin before the deadline it was given:
    # nothing of it left, and the worker hands it over again after another look.
    begun: bool = True


# What a message not begun before the deadline (`Transport.send_batch`'s `until`) is told.
NOT_BEGUN = Delivery(SendResult.TEMPORARY, 0, "not begun before the slice ended", begun=False)


class Transport(Protocol):
    """Hands messages to the next hop; reports each refusal instead of raising."""

    def send_batch(self, batch: Sequence[Outgoing], until: float | None = None) -> list[Delivery]:
        """Deliver each message or say why not; one Delivery per message, in order. With
        `until` (a `time.monotonic()` instant), no message is begun after it, except the
        first: the others come back `NOT_BEGUN`."""
        ...


@runtime_checkable
class Pooled(Protocol):
    """A transport that keeps connections open between batches."""

    def release(self) -> None:
        """Close what is kept open; the transport reconnects when used again."""
        ...


class MemoryTransport:
    """Keeps what it was given: the in-memory transport for tests of the pure flow; the
    SMTP transport is the real one."""

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    def send_batch(self, batch: Sequence[Outgoing], until: float | None = None) -> list[Delivery]:
        """Record and accept, all of them at once (no message takes any time here)."""
        self.sent.extend(batch)
        return [Delivery(SendResult.ACCEPTED, 250, "kept in memory") for _ in batch]
