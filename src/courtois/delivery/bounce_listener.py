"""The inbound end of the bounce address: an SMTP listener (aiosmtpd) that classifies each
message it receives and applies it at once, like `courtois bounces ingest` does for files.

A message that cannot be applied (the database is away) is refused with a 451, so the
sending server keeps it and tries again: nothing is lost, nothing is applied twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from courtois.delivery.bounces import BounceReport, classify
from courtois.services.bounces import apply_bounce
from courtois.services.context import Context


class BounceHandler:
    """aiosmtpd handler: every accepted message is a bounce, a complaint or an auto-reply."""

    def __init__(self, ctx: Context, clock: Callable[[], datetime] | None = None) -> None:
        self.ctx = ctx
        self.clock = clock or (lambda: datetime.now(UTC))
        self.applied: list[BounceReport] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        """Classify and apply in a worker thread; the store's calls are blocking."""
        raw = bytes(envelope.original_content or envelope.content or b"")
        source = f"smtp:{session.peer[0] if session.peer else 'unknown'}"
        report = classify(raw, source)
        try:
            await asyncio.get_running_loop().run_in_executor(
                None, apply_bounce, self.ctx, report, self.clock()
            )
        except SQLAlchemyError:
            return "451 4.3.0 Temporary failure, try again later"
        self.applied.append(report)
        return "250 2.0.0 Thank you"
