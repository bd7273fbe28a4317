"""A real SMTP server for tests: aiosmtpd in this process, with faults on demand."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class FaultyHandler:
    """Accepts mail and keeps it, unless told to refuse, stall or hang up."""

    received: list[tuple[list[str], bytes]] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_delay: float = 0.0
    drop_in_data: bool = False

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        reply = self.rcpt_replies.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        self.received.append((list(envelope.rcpt_tos), bytes(envelope.original_content)))
        if self.drop_in_data:
            # The body arrived, the reply never will: the client cannot know.
            session.transport.close() if hasattr(session, "transport") else None
            server.transport.close()
            return "250 never sent"
        return "250 Message accepted"


@contextmanager
def smtp_server(handler: FaultyHandler) -> Iterator[str]:
    """Run the server on a free port; yields its smtp:// URL."""
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}"
    finally:
        controller.stop()
