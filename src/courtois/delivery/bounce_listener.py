"""The inbound end of the bounce address: an SMTP listener (aiosmtpd) that classifies each
message it receives and applies it at once, like `courtois bounces ingest` does for files;
both honour, through the same classification, the "unsubscribe TOKEN" mails that
List-Unsubscribe's mailto sends.

A message that cannot be applied (the database is away) is refused with a 451, so the
sending server keeps it and tries again: nothing is lost, nothing is applied twice.

Anyone can connect, so one client must not stall the others: reading and applying a
message run in a worker thread, never on the event loop that greets and answers every
client; and a message is at most `MAX_MESSAGE` bytes (aiosmtpd's own default, 32 MiB,
is no bound for a text read in time proportional to its size).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy.exc import SQLAlchemyError

from courtois.delivery.bounces import classify
from courtois.services.bounces import apply_bounce
from courtois.services.context import Context

# The largest message accepted: 2 MiB. A bounce or complaint returns one of our emails
# (tens of KB) or only its headers, with a notice of a few KB; 2 MiB leaves room for a
# report naming thousands of recipients, and is read in a few seconds at most.
MAX_MESSAGE = 2 * 1024 * 1024


def bounce_listener(ctx: Context, host: str, port: int) -> Controller:
    """The SMTP listener of the bounce address (not started), refusing larger messages."""
    return Controller(BounceHandler(ctx), hostname=host, port=port, data_size_limit=MAX_MESSAGE)


class BounceHandler:
    """aiosmtpd handler: every accepted message is a bounce, a complaint, an auto-reply or
    an unsubscribe request. `received` counts the messages applied by kind (and keeps
    nothing else of them, so a listener running for months holds no address and grows no
    list)."""

    def __init__(self, ctx: Context, clock: Callable[[], datetime] | None = None) -> None:
        self.ctx = ctx
        self.clock = clock or (lambda: datetime.now(UTC))
        self.received: Counter[str] = Counter()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        """Classify and apply in a worker thread: the store's calls block, and reading a
        large message takes time that the other clients must not wait for."""
        raw = bytes(envelope.original_content or envelope.content or b"")
        source = f"smtp:{session.peer[0] if session.peer else 'unknown'}"
        try:
            kind, applied = await asyncio.get_running_loop().run_in_executor(
                None, self._apply, raw, source
            )
        except SQLAlchemyError:
            return "451 4.3.0 Temporary failure, try again later"
        self.received[kind] += 1
        if kind == "unsubscribe" and not applied["unknown_token"]:
            return "250 2.0.0 Unsubscribed"
        # A bad token learns nothing (the same answer as any message), and changes nothing.
        return "250 2.0.0 Thank you"

    def _apply(self, raw: bytes, source: str) -> tuple[str, dict[str, Any]]:
        """Classify and apply one message (in a worker thread); its kind, what changed."""
        report = classify(raw, source)
        return report.kind, apply_bounce(self.ctx, report, self.clock())
