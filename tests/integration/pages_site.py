"""The recipient pages served for real: the app on uvicorn in a thread, on a free port, over
the test's store, with a clock the test moves; and invitations delivered through the real
services, with their tokens read back from the emails that left."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import httpx
from api_support import served
from sqlalchemy import func, select
from support import T0, send_invites

from courtois.delivery.compose import tokens_in
from courtois.delivery.render import Tokens
from courtois.delivery.transport import MemoryTransport, Outgoing
from courtois.services.context import Context
from courtois.services.worker import run_pass
from courtois.store.tables import ledger
from courtois.web.app import create_app

UNDO = timedelta(minutes=10)
SENT_AT = T0 + UNDO
# Headers that differ from one answer to the next whatever the page (the server's clock).
VOLATILE = {"date"}
EVERY_PAGE = {
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


@dataclass
class Clock:
    """The app's clock, set by the test."""

    now: datetime = SENT_AT

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Site:
    """A running server and a client with no cookie jar worth the name (none is ever set)."""

    base: str
    clock: Clock
    client: httpx.Client

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(self.base + path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.post(self.base + path, **kwargs)


@contextmanager
def serve(ctx: Context, clock: Clock | None = None) -> Iterator[Site]:
    """Run the whole app on uvicorn until the block ends."""
    clock = clock or Clock()
    with (
        served(create_app(ctx, clock)) as base,
        httpx.Client(follow_redirects=False, timeout=10) as client,
    ):
        yield Site(base, clock, client)


@dataclass
class Delivered:
    """One email that left, and the tokens its links carry."""

    outgoing: Outgoing
    tokens: Tokens
    ids: tuple[str, ...] = field(default=())


def deliver(ctx: Context, at: datetime = SENT_AT) -> list[Delivered]:
    """One worker pass at `at`; every email that left, with its tokens read from its links."""
    transport = MemoryTransport()
    run_pass(ctx, at, transport)
    found = []
    for outgoing in transport.sent:
        parsed = email.message_from_bytes(outgoing.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        found.append(Delivered(outgoing, tokens_in(parsed, ctx.settings), outgoing.invitation_ids))
    return found


def invite_and_deliver(
    ctx: Context,
    member_id: str,
    emails: list[str],
    *,
    now: datetime = T0,
    reminders: int = 0,
) -> list[Delivered]:
    """A member invites (real preview, consent, invite), and the worker sends after the undo
    window."""
    send_invites(ctx, member_id, emails, now, reminders=reminders)
    return deliver(ctx, now + UNDO)


def ledger_size(ctx: Context) -> int:
    """How many entries the audit ledger holds."""
    with ctx.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(ledger)).scalar_one())


def stable_headers(response: httpx.Response) -> dict[str, str]:
    """A response's headers, bar the ones that change with the clock."""
    return {k: v for k, v in response.headers.items() if k.lower() not in VOLATILE}
