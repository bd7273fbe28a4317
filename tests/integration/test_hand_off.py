"""The last look before each slice of a claimed batch is handed to SMTP (invariant 7): a
recipient who opts out, joins or asks to be forgotten while the relay is still busy with
the batch's first emails gets none of the later ones. Over a real SMTP server that holds
the first email until the recipients have spoken, longer than a slice lasts."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import pytest
from smtp_server import FaultyHandler, smtp_server
from sqlalchemy.exc import OperationalError
from support import (
    T0,
    add_members,
    by_email,
    invitation,
    ledger_events,
    messages_of,
    send_invites,
)

from courtois.delivery.smtp import SmtpTransport, parse_smtp_url
from courtois.domain.addresses import parse_address
from courtois.services import leases
from courtois.services import worker as worker_module
from courtois.services.context import Context
from courtois.services.hand_off import SLICE_SECONDS
from courtois.services.housekeeping import expire_leases
from courtois.services.lifecycle import revoke_consent
from courtois.services.recipients import forget_recipient, mark_joined, unsubscribe
from courtois.services.worker import run_pass

FIRST = "first@example.org"
GONE, JOINS, FORGETS, STAYS = (
    f"{who}@example.org" for who in ("gone", "joins", "forgets", "stays")
)


@dataclass
class HoldingHandler(FaultyHandler):
    """Holds the first email's DATA until told to let it through, and at least as long as
    a slice lasts: the worker begins nothing more in that slice, and looks again."""

    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if FIRST in envelope.rcpt_tos:
            self.arrived.set()
            held = time.monotonic() + SLICE_SECONDS + 0.2
            while not self.release.is_set() or time.monotonic() < held:
                await asyncio.sleep(0.01)
        return await super().handle_DATA(server, session, envelope)


def one_connection(url: str) -> SmtpTransport:
    """The relay reached over one connection, one command at a time (the handler offers no
    PIPELINING): the first email holds all the others. (Pipelined, the next email's
    envelope goes out behind the first one's body: begun, so it leaves.)"""
    return SmtpTransport(replace(parse_smtp_url(url), connections=1))


AT = T0 + timedelta(minutes=12)


@contextmanager
def held_pass(ctx: Context) -> Iterator[HoldingHandler]:
    """A worker pass at AT in a thread, over one connection to a relay that holds the first
    email; yields (once that email is at the relay) for the test to act, then lets it go."""
    handler = HoldingHandler(pipelining=False)
    with smtp_server(handler) as url:
        worker = threading.Thread(target=run_pass, args=(ctx, AT, one_connection(url)))
        worker.start()
        try:
            assert handler.arrived.wait(30)
            yield handler
        finally:
            handler.release.set()
            worker.join(30)


def test_a_stop_while_the_batch_is_on_its_way_wins_over_the_claim(ctx: Context) -> None:
    add_members(ctx)
    first = by_email(send_invites(ctx, "ana", [FIRST], T0))
    later = by_email(
        send_invites(ctx, "ana", [GONE, JOINS, FORGETS, STAYS], T0 + timedelta(minutes=1))
    )
    with held_pass(ctx) as handler:
        # Every email is claimed (`sending`) and the first is at the relay.
        for email in (GONE, JOINS, FORGETS, STAYS):
            (message,) = messages_of(ctx, later[email]["id"])
            assert message.state == "sending"
        digest = {email: ctx.digest(parse_address(email)) for email in (GONE, JOINS, FORGETS)}
        # Its email is claimed, not begun: not said stopped yet; the last look stops it.
        assert unsubscribe(ctx, digest[GONE], AT) == {
            "blocked": 0,
            "cancelled": 0,
            "already_leaving": 1,
        }
        mark_joined(ctx, digest[JOINS], AT)
        forget_recipient(ctx, digest[FORGETS], AT)
    assert [recipients for recipients, _ in handler.received] == [[FIRST], [STAYS]]
    for email in (FIRST, STAYS):
        invitation_id = (first | later)[email]["id"]
        assert invitation(ctx, invitation_id).state == "sent"
    for email in (GONE, JOINS, FORGETS):
        (message,) = messages_of(ctx, later[email]["id"])
        assert message.state == "cancelled"
        assert message.last_reason.startswith("stopped before it left: ")
        assert invitation(ctx, later[email]["id"]).state != "sent"
    reasons = [
        m.last_reason for e in (GONE, JOINS, FORGETS) for m in messages_of(ctx, later[e]["id"])
    ]
    assert reasons == [
        "stopped before it left: the recipient unsubscribed from everyone",
        "stopped before it left: the recipient is already a member",
        "stopped before it left: the recipient unsubscribed from everyone",
    ]


@pytest.mark.parametrize(
    ("word", "state"), [("unsubscribe", "sent"), ("join", "accepted"), ("forget", "declined")]
)
def test_a_stop_while_its_own_email_is_at_the_relay_leaves_it_recorded_sent_then_answered(
    ctx: Context, word: str, state: str
) -> None:
    """The recipient speaks, by no link of the email, while it is already being handed
    over: it arrives, and the invitation says so (`sent`, with its `sent_at` and its
    `invitation.sent` event), not `blocked` beside a message `sent`. Then it meets the word
    at once, as one sent a moment earlier would have: accepted once they joined, declined
    once they asked to be forgotten, waiting with no reminder once they opted out. Nothing
    more goes to them after it."""
    add_members(ctx)
    first = by_email(send_invites(ctx, "ana", [FIRST], T0, reminders=1))[FIRST]
    digest = ctx.digest(parse_address(FIRST))
    with held_pass(ctx) as handler:
        if word == "unsubscribe":
            counts = unsubscribe(ctx, digest, AT)
            assert counts == {"blocked": 0, "cancelled": 0, "already_leaving": 1}
        elif word == "join":
            assert mark_joined(ctx, digest, AT)["blocked"] == 0
        else:
            assert forget_recipient(ctx, digest, AT)["blocked"] == 0
        assert invitation(ctx, first["id"]).state == "scheduled"
    assert [recipients for recipients, _ in handler.received] == [[FIRST]]
    (message,) = messages_of(ctx, first["id"])
    assert (message.kind, message.state) == ("invitation", "sent")
    stored = invitation(ctx, first["id"])
    assert (stored.state, stored.sent_at, stored.address) == (state, AT, None)
    assert stored.answered_at == (None if word == "unsubscribe" else AT)
    moves = [
        (p["from"], p["to"])
        for e, p in ledger_events(ctx)
        if e == "invitation.state" and p["invitation"] == first["id"]
    ]
    assert moves == [("scheduled", "sent")] + ([] if word == "unsubscribe" else [("sent", state)])
    # Opted out, joined or forgotten: no reminder, nothing else, whatever comes.
    assert run_pass(ctx, AT + timedelta(days=30), one_connection("smtp://127.0.0.1:9")).sent == 0


def test_a_digest_whose_recipient_stops_one_of_its_members_leaves_without_that_member(
    ctx: Context,
) -> None:
    """Ana and Bruno's invitations meet in one digest; the recipient stops Bruno while the
    digest waits behind another email: Bruno's part is cancelled, Ana's is decided again
    and leaves on its own, naming only her."""
    add_members(ctx)
    send_invites(ctx, "ana", [FIRST], T0)
    ana = by_email(send_invites(ctx, "ana", [STAYS], T0 + timedelta(minutes=1)))[STAYS]["id"]
    bruno = by_email(send_invites(ctx, "bruno", [STAYS], T0 + timedelta(minutes=1)))[STAYS]["id"]
    with held_pass(ctx) as handler:
        assert {m.state for m in messages_of(ctx, ana) + messages_of(ctx, bruno)} == {"sending"}
        unsubscribe(ctx, ctx.digest(parse_address(STAYS)), AT, from_member="bruno")
    assert [recipients for recipients, _ in handler.received] == [[FIRST], [STAYS]]
    body = handler.received[1][1].decode()
    assert "Ana" in body
    assert "Bruno" not in body
    (stopped,) = messages_of(ctx, bruno)
    assert stopped.state == "cancelled"
    assert stopped.carried_by is None  # a complaint about Ana's email is not Bruno's
    assert invitation(ctx, bruno).state == "blocked"
    (went,) = messages_of(ctx, ana)
    assert went.state == "sent"
    assert invitation(ctx, ana).state == "sent"


def test_a_consent_revoked_while_the_batch_is_on_its_way_withdraws_what_did_not_leave(
    ctx: Context,
) -> None:
    add_members(ctx)
    send_invites(ctx, "ana", [FIRST], T0)
    later = by_email(send_invites(ctx, "ana", [GONE, STAYS], T0 + timedelta(minutes=1)))
    with held_pass(ctx) as handler:
        revoke_consent(ctx, invitation(ctx, later[GONE]["id"]).consent_id, AT)
    assert [recipients for recipients, _ in handler.received] == [[FIRST]]
    for email in (GONE, STAYS):
        assert invitation(ctx, later[email]["id"]).state == "withdrawn"
        (message,) = messages_of(ctx, later[email]["id"])
        assert message.last_reason == "stopped before it left: the member revoked the consent"


def test_what_was_never_handed_over_goes_back_to_the_queue_when_the_pass_fails(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The look after the first slice fails (the database gone, say): the emails not yet
    begun did not leave, so they are scheduled again as before their claim, not left to
    turn "unknown" and be shown to an admin as possibly delivered."""
    add_members(ctx)
    first = by_email(send_invites(ctx, "ana", [FIRST], T0))[FIRST]["id"]
    later = by_email(send_invites(ctx, "ana", [GONE, STAYS], T0 + timedelta(minutes=1)))

    def failing(*args: object) -> list[bool]:
        raise OperationalError("SELECT", {}, Exception("the database went away"))

    monkeypatch.setattr(worker_module, "last_look", failing)
    handler = HoldingHandler(pipelining=False)
    handler.release.set()
    with smtp_server(handler) as url, pytest.raises(OperationalError):
        run_pass(ctx, AT, one_connection(url))
    assert [recipients for recipients, _ in handler.received] == [[FIRST]]
    assert [m.state for m in messages_of(ctx, first)] == ["sent"]
    for email in (GONE, STAYS):
        (message,) = messages_of(ctx, later[email]["id"])
        assert (message.state, message.attempts, message.first_attempt_at) == (
            "scheduled",
            0,
            None,
        )
        assert message.last_reason.startswith("put back: never handed to SMTP")


def test_emails_made_unknown_while_the_worker_stalled_are_still_its_to_hand_over(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker stalls behind the first email past its lease (renewing nothing), and
    another pass makes the whole batch `unknown`. The rest was never begun: the worker
    hands it over at its next look, and the outcomes settle every email as sent."""
    monkeypatch.setattr(leases, "renewed", lambda *_: nullcontext())
    add_members(ctx)
    first = by_email(send_invites(ctx, "ana", [FIRST], T0))
    later = by_email(send_invites(ctx, "ana", [GONE, STAYS], T0 + timedelta(minutes=1)))
    with held_pass(ctx) as handler:
        assert expire_leases(ctx, AT + leases.LEASE + timedelta(seconds=1)) == 3
    assert sorted(r for recipients, _ in handler.received for r in recipients) == sorted(
        [FIRST, GONE, STAYS]
    )
    for answer in (first, later):
        for item in answer.values():
            assert [m.state for m in messages_of(ctx, item["id"])] == ["sent"]
