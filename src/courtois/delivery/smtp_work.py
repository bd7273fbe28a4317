"""One batch on its way to the SMTP server: what is left to send, what became of each
message, how fast each recipient domain may be served, and what a reply code means."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict, deque
from collections.abc import Sequence

from courtois.delivery.transport import NOT_BEGUN, Delivery, Outgoing, SendResult


class DomainPacer:
    """At most `rate` messages a second to any one recipient domain, across connections."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next_slot: dict[str, float] = defaultdict(float)

    def book(self, domain: str) -> float:
        """Book this domain's next slot; how many seconds from now it is."""
        now = time.monotonic()
        slot = max(now, self.next_slot[domain])
        self.next_slot[domain] = slot + self.interval
        return slot - now

    async def wait(self, domain: str) -> None:
        """Sleep until this domain's next slot, and book the one after it."""
        delay = self.book(domain)
        if delay > 0:
            await asyncio.sleep(delay)


def classify(code: int) -> SendResult:
    """The meaning of the server's final word on a message."""
    if 200 <= code < 300:
        return SendResult.ACCEPTED
    if 400 <= code < 500:
        return SendResult.TEMPORARY
    return SendResult.PERMANENT


# "Must issue a STARTTLS command first" (RFC 3207), "Authentication required" (RFC 4954):
# the session lacks what the relay asks of this sender, which says nothing of the message.
SESSION_REFUSAL = 530


def refused(code: int, text: str, command: str) -> Delivery:
    """A refusal of MAIL, RCPT or DATA (`command`): nothing of the message left, so it is
    never `accepted`, whatever odd code the server used. A refusal of the session (530,
    at any command) or a temporary one of MAIL (which names only our sender: the relay
    shutting down, out of space, limiting our rate) is the relay's, not the recipient's:
    it waits for the operator to mend the relay instead of failing the invitation."""
    result = classify(code)
    if result is SendResult.ACCEPTED or code < 400 or code == SESSION_REFUSAL:
        result = SendResult.TEMPORARY
    session = code == SESSION_REFUSAL or (command == "MAIL" and result is SendResult.TEMPORARY)
    return Delivery(result, code, text[:200], command, session)


def session_fault(why: str) -> Delivery:
    """No connection fit to start a transaction (the relay unreachable, TLS, the greeting,
    EHLO or AUTH failing, the connection gone before MAIL was answered): temporary, and
    the relay's fault, never the recipient's."""
    return Delivery(SendResult.TEMPORARY, 0, why[:200], session=True)


def domain_of(outgoing: Outgoing) -> str:
    """The recipient's domain, as paced."""
    return outgoing.to.rpartition("@")[2].lower()


class Work:
    """One batch being sent over several connections: what is left, and what became of
    each message (one event loop, so no locking). With `until` (a `time.monotonic()`
    instant) no message is begun after it but the batch's first, so that each call makes
    progress: the rest is left to the worker's next look (`services.hand_off`)."""

    def __init__(self, batch: Sequence[Outgoing], rate: float, until: float | None = None) -> None:
        self.batch = batch
        self.results: list[Delivery | None] = [None] * len(batch)
        self.left: deque[int] = deque(range(len(batch)))
        self.retried: set[int] = set()
        self.pacer = DomainPacer(rate)
        self.until = until
        self.begun = 0

    @property
    def open(self) -> bool:
        """Whether a message may still be begun."""
        if not self.left:
            return False
        return self.until is None or not self.begun or time.monotonic() < self.until

    def take(self) -> int | None:
        """The next message to begin, or None when none is left or time is up."""
        if not self.open:
            return None
        self.begun += 1
        return self.left.popleft()

    def done(self, index: int, delivery: Delivery) -> None:
        """What became of this message."""
        self.results[index] = delivery

    def retry(self, index: int, why: str, session: bool = False) -> None:
        """Not attempted (no reply to its envelope, no body sent): once more on another
        connection, then a temporary failure (the relay's, `session`, when not even its
        MAIL was answered)."""
        if index in self.retried:
            self.results[index] = Delivery(SendResult.TEMPORARY, 0, why[:200], session=session)
        else:
            self.retried.add(index)
            self.left.appendleft(index)

    def deliveries(self) -> list[Delivery]:
        """One outcome per message, in order; one left when time was up was not begun,
        any other left over was not attempted, which says nothing of its recipient."""
        waiting = set(self.left)
        return [
            r or (NOT_BEGUN if i in waiting else session_fault("not attempted"))
            for i, r in enumerate(self.results)
        ]
