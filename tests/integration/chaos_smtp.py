"""An SMTP server that misbehaves at random, reproducibly: each transaction's fate (accept,
421, 451, 550 at RCPT or after the body, a stall, a dropped connection) is drawn from a
generator seeded by (seed, recipient, how many times that recipient was tried), so the
same seed replays the same story whatever order the client's connections take.

Every attempt is written down with the instant the test says it is (the worker's `now`)
and, for a stall, how long the client took to hang up; every body that arrived is kept.
Run it with `smtp_server(handler)` from `smtp_server`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Fate(StrEnum):
    """What the server does with one transaction."""

    ACCEPT = "accept"
    SHUTTING_DOWN = "421 at RCPT"
    GREYLISTED = "451 at RCPT"
    USER_UNKNOWN = "550 user unknown at RCPT"
    SPAM = "550 spam after the body"
    STALL_AT_RCPT = "stall at RCPT"
    STALL_AFTER_BODY = "stall after the body"
    DROP_AT_RCPT = "drop at RCPT"
    DROP_AFTER_BODY = "drop after the body"

    @property
    def body_arrives(self) -> bool:
        """Whether the server gets the message's body in this transaction."""
        return self in _BODY_FATES

    @property
    def outcome(self) -> str:
        """The state a message must end in when this was its last transaction."""
        if self is Fate.ACCEPT:
            return "sent"
        if self in (Fate.USER_UNKNOWN, Fate.SPAM):
            return "failed"
        if self in (Fate.STALL_AFTER_BODY, Fate.DROP_AFTER_BODY):
            return "unknown"
        return "retry"

    @property
    def problem(self) -> str:
        """How the worker's pass report must name this fate, when it was not accepted."""
        return _PROBLEMS[self]


_BODY_FATES = {Fate.ACCEPT, Fate.SPAM, Fate.STALL_AFTER_BODY, Fate.DROP_AFTER_BODY}
_PROBLEMS = {
    Fate.ACCEPT: "",
    Fate.SHUTTING_DOWN: "RCPT 421",
    Fate.GREYLISTED: "RCPT 451",
    Fate.USER_UNKNOWN: "RCPT 550",
    Fate.SPAM: "DATA 550",
    Fate.STALL_AT_RCPT: "before data: no reply in time",
    Fate.DROP_AT_RCPT: "before data: connection lost",
    Fate.STALL_AFTER_BODY: "after data: no reply in time",
    Fate.DROP_AFTER_BODY: "after data: connection lost",
}
_REPLIES = {
    Fate.SHUTTING_DOWN: "421 4.3.2 Service shutting down, try again later",
    Fate.GREYLISTED: "451 4.7.1 Greylisted, please try again later",
    Fate.USER_UNKNOWN: "550 5.1.1 Recipient address rejected: User unknown in virtual mailbox "
    "table",
    Fate.SPAM: "550 5.7.1 Message rejected as spam by content filter",
}

# Mostly accepted, every misbehaviour common enough to show up in a few dozen messages.
DEFAULT_WEIGHTS: dict[Fate, float] = {
    Fate.ACCEPT: 0.48,
    Fate.GREYLISTED: 0.12,
    Fate.SHUTTING_DOWN: 0.07,
    Fate.USER_UNKNOWN: 0.06,
    Fate.SPAM: 0.05,
    Fate.STALL_AT_RCPT: 0.05,
    Fate.STALL_AFTER_BODY: 0.04,
    Fate.DROP_AT_RCPT: 0.08,
    Fate.DROP_AFTER_BODY: 0.05,
}


@dataclass
class Attempt:
    """One transaction as the server saw it."""

    recipient: str
    at: datetime | None
    fate: Fate
    # For a stall: seconds from the stall's start until the client hung up (None: the
    # client never did, and the stall ran its full length).
    hung_up_after: float | None = None


@dataclass
class ChaosHandler:
    """aiosmtpd handler drawing each transaction's fate; `always` pins some recipients'
    fate for every attempt (a mailbox that is always greylisted)."""

    seed: int
    weights: dict[Fate, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    always: dict[str, Fate] = field(default_factory=dict)
    stall_seconds: float = 8.0
    pipelining: bool = True
    # The instant the test's worker acts at; set before each pass.
    now: datetime | None = None
    attempts: list[Attempt] = field(default_factory=list)
    bodies: list[tuple[str, bytes]] = field(default_factory=list)
    tries: Counter[str] = field(default_factory=Counter)

    def draw(self, recipient: str) -> Fate:
        """This recipient's next fate: the same for the same seed and try number."""
        number = self.tries[recipient]
        self.tries[recipient] += 1
        if recipient in self.always:
            return self.always[recipient]
        chance = random.Random(f"{self.seed}:{recipient}:{number}")
        return chance.choices(list(self.weights), weights=list(self.weights.values()))[0]

    async def handle_EHLO(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self.pipelining:
            return [*responses[:-1], "250-PIPELINING", responses[-1]]
        return responses

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        recipient = address.lower()
        attempt = Attempt(recipient, self.now, self.draw(recipient))
        self.attempts.append(attempt)
        envelope.attempt = attempt
        if attempt.fate is Fate.STALL_AT_RCPT:
            await self._stall(attempt)
            return "451 4.4.2 too late"
        if attempt.fate is Fate.DROP_AT_RCPT:
            server.transport.close()
            return "250 never sent"
        if attempt.fate in _REPLIES and not attempt.fate.body_arrives:
            return _REPLIES[attempt.fate]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        attempt: Attempt = envelope.attempt
        self.bodies.append((attempt.recipient, bytes(envelope.original_content)))
        if attempt.fate is Fate.STALL_AFTER_BODY:
            await self._stall(attempt)
            return "250 too late"
        if attempt.fate is Fate.DROP_AFTER_BODY:
            server.transport.close()
            return "250 never sent"
        if attempt.fate in _REPLIES:
            return _REPLIES[attempt.fate]
        return "250 Message accepted"

    async def _stall(self, attempt: Attempt) -> None:
        """Say nothing until the client hangs up (aiosmtpd then cancels this handler) or
        the stall runs out."""
        started = time.monotonic()
        try:
            await asyncio.sleep(self.stall_seconds)
        except asyncio.CancelledError:
            attempt.hung_up_after = time.monotonic() - started
            raise
