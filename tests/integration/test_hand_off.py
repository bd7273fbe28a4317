"""The last look before each slice of a claimed batch is handed to SMTP (invariant 7): a
recipient who opts out, joins or asks to be forgotten while the relay is still busy with
the batch's first emails gets none of the later ones. Over a real SMTP server that holds
the first email until the recipients have spoken."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from smtp_server import FaultyHandler, smtp_server
from support import T0, add_members, by_email, invitation, messages_of, send_invites

from courtois.delivery.smtp import SmtpTransport, parse_smtp_url
from courtois.domain.addresses import parse_address
from courtois.services.context import Context
from courtois.services.recipients import forget_recipient, mark_joined, unsubscribe
from courtois.services.worker import PassReport, run_pass

FIRST = "first@example.org"
GONE, JOINS, FORGETS, STAYS = (
    f"{who}@example.org" for who in ("gone", "joins", "forgets", "stays")
)


@dataclass
class HoldingHandler(FaultyHandler):
    """Holds the first email's DATA until told to let it through."""

    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if FIRST in envelope.rcpt_tos:
            self.arrived.set()
            while not self.release.is_set():
                await asyncio.sleep(0.01)
        return await super().handle_DATA(server, session, envelope)


def test_a_stop_while_the_batch_is_on_its_way_wins_over_the_claim(ctx: Context) -> None:
    ctx = Context(ctx.engine, replace(ctx.settings, smtp_connections=1))
    add_members(ctx)
    first = by_email(send_invites(ctx, "ana", [FIRST], T0))
    later = by_email(
        send_invites(ctx, "ana", [GONE, JOINS, FORGETS, STAYS], T0 + timedelta(minutes=1))
    )
    handler = HoldingHandler()
    at = T0 + timedelta(minutes=12)
    reports: list[PassReport] = []
    with smtp_server(handler) as url:
        worker = threading.Thread(
            target=lambda: reports.append(run_pass(ctx, at, SmtpTransport(parse_smtp_url(url))))
        )
        worker.start()
        try:
            # Every email is claimed (`sending`) and the first is at the relay.
            assert handler.arrived.wait(30)
            for email in (GONE, JOINS, FORGETS, STAYS):
                (message,) = messages_of(ctx, later[email]["id"])
                assert message.state == "sending"
            digest = {email: ctx.digest(parse_address(email)) for email in (GONE, JOINS, FORGETS)}
            assert unsubscribe(ctx, digest[GONE], at)["blocked"] == 1
            mark_joined(ctx, digest[JOINS], at)
            forget_recipient(ctx, digest[FORGETS], at)
        finally:
            handler.release.set()
            worker.join(30)
    assert [recipients for recipients, _ in handler.received] == [[FIRST], [STAYS]]
    for email in (FIRST, STAYS):
        invitation_id = (first | later)[email]["id"]
        assert invitation(ctx, invitation_id).state == "sent"
    for email in (GONE, JOINS, FORGETS):
        (message,) = messages_of(ctx, later[email]["id"])
        assert message.state == "cancelled"
        assert message.last_reason.startswith("stopped before it left: ")
        assert invitation(ctx, later[email]["id"]).state != "sent"
    (report,) = reports
    assert (report.sent, report.cancelled) == (2, 3)


def test_a_digest_whose_recipient_stops_one_of_its_members_leaves_without_that_member(
    ctx: Context,
) -> None:
    """Ana and Bruno's invitations meet in one digest; the recipient stops Bruno while the
    digest waits behind another email: Bruno's part is cancelled, Ana's is decided again
    and leaves on its own, naming only her."""
    ctx = Context(ctx.engine, replace(ctx.settings, smtp_connections=1))
    add_members(ctx)
    send_invites(ctx, "ana", [FIRST], T0)
    ana = by_email(send_invites(ctx, "ana", [STAYS], T0 + timedelta(minutes=1)))[STAYS]["id"]
    bruno = by_email(send_invites(ctx, "bruno", [STAYS], T0 + timedelta(minutes=1)))[STAYS]["id"]
    handler = HoldingHandler()
    at = T0 + timedelta(minutes=12)
    with smtp_server(handler) as url:
        worker = threading.Thread(
            target=run_pass, args=(ctx, at, SmtpTransport(parse_smtp_url(url)))
        )
        worker.start()
        try:
            assert handler.arrived.wait(30)
            assert {m.state for m in messages_of(ctx, ana) + messages_of(ctx, bruno)} == {"sending"}
            unsubscribe(ctx, ctx.digest(parse_address(STAYS)), at, from_member="bruno")
        finally:
            handler.release.set()
            worker.join(30)
    assert [recipients for recipients, _ in handler.received] == [[FIRST], [STAYS]]
    body = handler.received[1][1].decode()
    assert "Ana" in body
    assert "Bruno" not in body
    (stopped,) = messages_of(ctx, bruno)
    assert stopped.state == "cancelled"
    assert invitation(ctx, bruno).state == "blocked"
    (went,) = messages_of(ctx, ana)
    assert went.state == "sent"
    assert invitation(ctx, ana).state == "sent"
