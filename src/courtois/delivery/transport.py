"""The one replaceable method between the worker and the network."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class SendResult(StrEnum):
    """What the far side said."""

    ACCEPTED = "accepted"
    TEMPORARY = "temporary"
    PERMANENT = "permanent"


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


class Transport(Protocol):
    """Hands a message to the next hop; must not raise for a refusal, only report it."""

    def send(self, outgoing: Outgoing) -> SendResult:
        """Deliver or report why not."""
        ...


class MemoryTransport:
    """Keeps what it was given: the in-memory transport for tests of the pure flow and for
    `worker --once` dry runs; the SMTP transport is the real one."""

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    def send(self, outgoing: Outgoing) -> SendResult:
        """Record and accept."""
        self.sent.append(outgoing)
        return SendResult.ACCEPTED
