"""The inbound end of the bounce address: an SMTP listener (aiosmtpd) that classifies each
message it receives and applies it at once, like `courtois bounces ingest` does for files,
and honours the "unsubscribe TOKEN" mails that List-Unsubscribe's mailto sends.

A message that cannot be applied (the database is away) is refused with a 451, so the
sending server keeps it and tries again: nothing is lost, nothing is applied twice.

Anyone can connect, so one client must not stall the others: reading and applying a
message run in a worker thread, never on the event loop that greets and answers every
client; and a message is at most `MAX_MESSAGE` bytes (aiosmtpd's own default, 32 MiB,
is no bound for a text read in time proportional to its size).
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy.exc import SQLAlchemyError

from courtois.delivery.bounces import classify
from courtois.domain.errors import NotFound
from courtois.services.bounces import apply_bounce
from courtois.services.context import Context
from courtois.services.recipient_actions import unsubscribe_link

# The largest message accepted: 2 MiB. A bounce or complaint returns one of our emails
# (tens of KB) or only its headers, with a notice of a few KB; 2 MiB leaves room for a
# report naming thousands of recipients, and is read in a few seconds at most.
MAX_MESSAGE = 2 * 1024 * 1024


def bounce_listener(ctx: Context, host: str, port: int) -> Controller:
    """The SMTP listener of the bounce address (not started), refusing larger messages."""
    return Controller(BounceHandler(ctx), hostname=host, port=port, data_size_limit=MAX_MESSAGE)


class BounceHandler:
    """aiosmtpd handler: every accepted message is a bounce, a complaint or an auto-reply.
    `received` counts the messages applied by kind (and keeps nothing else of them, so a
    listener running for months holds no address and grows no list)."""

    def __init__(self, ctx: Context, clock: Callable[[], datetime] | None = None) -> None:
        self.ctx = ctx
        self.clock = clock or (lambda: datetime.now(UTC))
        self.received: Counter[str] = Counter()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        """Classify and apply in a worker thread: the store's calls block, and reading a
        large message takes time that the other clients must not wait for."""
        raw = bytes(envelope.original_content or envelope.content or b"")
        token = _unsubscribe_token(raw)
        if token is not None:
            return await self._unsubscribe(token)
        source = f"smtp:{session.peer[0] if session.peer else 'unknown'}"
        try:
            kind = await asyncio.get_running_loop().run_in_executor(None, self._apply, raw, source)
        except SQLAlchemyError:
            return "451 4.3.0 Temporary failure, try again later"
        self.received[kind] += 1
        return "250 2.0.0 Thank you"

    def _apply(self, raw: bytes, source: str) -> str:
        """Classify and apply one message (in a worker thread); its kind."""
        report = classify(raw, source)
        apply_bounce(self.ctx, report, self.clock())
        return report.kind

    async def _unsubscribe(self, token: str) -> str:
        """The mailto of List-Unsubscribe: the message's subject carries the token."""
        try:
            await asyncio.get_running_loop().run_in_executor(
                None, unsubscribe_link, self.ctx, token, self.clock()
            )
        except NotFound:
            return "250 2.0.0 Thank you"  # a bad token learns nothing, and changes nothing
        except SQLAlchemyError:
            return "451 4.3.0 Temporary failure, try again later"
        return "250 2.0.0 Unsubscribed"


_UNSUBSCRIBE = re.compile(r"^\s*unsubscribe\s+([A-Za-z0-9_.\-]+)\s*$", re.IGNORECASE)


def _unsubscribe_token(raw: bytes) -> str | None:
    """The token of an "unsubscribe TOKEN" request, or None for anything else."""
    subject = BytesParser(policy=policy.default).parsebytes(raw, headersonly=True)["Subject"]
    match = _UNSUBSCRIBE.match(str(subject or ""))
    return match.group(1) if match else None
