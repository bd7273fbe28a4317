"""The worker sends over a real SMTP server, and records exactly what the server said:
accepted, temporary refusal (retried later), permanent refusal (failed; suppressed when the
address is dead), a connection dropped after the body (unknown, never resent), a server
that is down, and a slow server served over several connections."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from smtp_server import FaultyHandler, free_port, smtp_server
from sqlalchemy import select, update

from conftest import T0
from courtois.delivery.smtp import SmtpTransport, parse_smtp_url
from courtois.domain.errors import Conflict, InvalidInput
from courtois.services.context import Context
from courtois.services.invitations import ConsentInput, InviteRequest, invite
from courtois.services.lifecycle import revoke_consent, withdraw
from courtois.services.members import register_member
from courtois.services.previews import preview_invitations
from courtois.services.worker import run_pass
from courtois.store.tables import invitations, messages, recipients

DUE = T0 + timedelta(minutes=11)


def invite_all(ctx: Context, emails: list[str]) -> dict[str, str]:
    register_member(ctx, "ana", "ana@members.example", "Ana Lima", "en", T0)
    preview = preview_invitations(ctx, "ana", len(emails), "", None, 0)
    request = InviteRequest(
        "ana", tuple(emails), "", None, 0, preview.preview_hash, ConsentInput(preview.consent_text)
    )
    answer = invite(ctx, request, T0)
    return {item["email"]: item["id"] for item in answer["invitations"]}


def state_of(ctx: Context, invitation_id: str) -> tuple[str, str]:
    with ctx.engine.connect() as connection:
        row = connection.execute(
            select(messages.c.state, invitations.c.state.label("invitation"))
            .join(invitations, invitations.c.id == messages.c.invitation_id)
            .where(messages.c.invitation_id == invitation_id)
        ).one()
    return row.state, row.invitation


def transport(url: str, **overrides: Any) -> SmtpTransport:
    return SmtpTransport(replace(parse_smtp_url(url), **overrides))


def test_accepted_messages_arrive_once_and_are_sent(ctx: Context) -> None:
    emails = [f"r{i}@example.org" for i in range(3)]
    ids = invite_all(ctx, emails)
    handler = FaultyHandler()
    with smtp_server(handler) as url:
        report = run_pass(ctx, DUE, transport(url))
        again = run_pass(ctx, DUE + timedelta(minutes=1), transport(url))
    assert report.sent == 3
    assert again.sent == 0
    assert sorted(r for rcpts, _ in handler.received for r in rcpts) == emails
    assert {state_of(ctx, i) for i in ids.values()} == {("sent", "sent")}


def test_temporary_refusal_is_retried_later_then_sent(ctx: Context) -> None:
    ids = invite_all(ctx, ["busy@example.org"])
    handler = FaultyHandler(rcpt_replies={"busy@example.org": "451 4.7.1 try again later"})
    with smtp_server(handler) as url:
        report = run_pass(ctx, DUE, transport(url), random.Random(1))
        assert report.retried == 1
        assert state_of(ctx, ids["busy@example.org"]) == ("scheduled", "scheduled")
        with ctx.engine.connect() as connection:
            retry_at, attempts = connection.execute(
                select(messages.c.scheduled_at, messages.c.attempts)
            ).one()
        assert DUE + timedelta(minutes=2) <= retry_at <= DUE + timedelta(minutes=8)
        assert attempts == 1
        # Not before its time; then the server takes it.
        assert run_pass(ctx, retry_at - timedelta(seconds=1), transport(url)).sent == 0
        handler.rcpt_replies.clear()
        assert run_pass(ctx, retry_at, transport(url)).sent == 1
    assert state_of(ctx, ids["busy@example.org"]) == ("sent", "sent")


def test_a_first_temporary_refusal_is_retried_however_late_the_first_try(ctx: Context) -> None:
    """The deadline counts from the first try: a worker catching up three days late still
    retries (`test_late_refusals.py` follows the deadline itself)."""
    ids = invite_all(ctx, ["busy@example.org"])
    handler = FaultyHandler(rcpt_replies={"busy@example.org": "421 4.3.2 shutting down"})
    with smtp_server(handler) as url:
        report = run_pass(ctx, T0 + timedelta(days=3, minutes=11), transport(url))
    assert (report.failed, report.retried) == (0, 1)
    assert state_of(ctx, ids["busy@example.org"]) == ("scheduled", "scheduled")


def test_a_dead_address_fails_and_is_suppressed_for_good(ctx: Context) -> None:
    ids = invite_all(ctx, ["gone@example.org", "full@example.org"])
    handler = FaultyHandler(
        rcpt_replies={
            "gone@example.org": "550 5.1.1 <gone@example.org>: Recipient address rejected: "
            "User unknown",
            "full@example.org": "552 5.2.2 Mailbox full",
        }
    )
    with smtp_server(handler) as url:
        report = run_pass(ctx, DUE, transport(url))
    assert report.failed == 2
    assert state_of(ctx, ids["gone@example.org"]) == ("failed", "bounced")
    assert state_of(ctx, ids["full@example.org"]) == ("failed", "bounced")
    with ctx.engine.connect() as connection:
        suppressed = dict(
            connection.execute(select(recipients.c.digest, recipients.c.suppressed_reason)).all()
        )
    assert suppressed[ctx.digest_email("gone@example.org")] == "hard-bounce"
    # A full mailbox is not a dead address.
    assert suppressed[ctx.digest_email("full@example.org")] is None


def test_a_connection_dropped_after_the_body_is_unknown_and_never_resent(ctx: Context) -> None:
    ids = invite_all(ctx, ["maybe@example.org"])
    handler = FaultyHandler(drop_in_data=True)
    with smtp_server(handler) as url:
        report = run_pass(ctx, DUE, transport(url))
        later = run_pass(ctx, DUE + timedelta(days=1), transport(url))
    assert report.unknown == 1
    assert later.sent == 0
    assert len(handler.received) == 1
    assert state_of(ctx, ids["maybe@example.org"]) == ("unknown", "scheduled")


def test_a_server_that_is_down_means_try_again(ctx: Context) -> None:
    ids = invite_all(ctx, ["r@example.org"])
    report = run_pass(ctx, DUE, transport(f"smtp://127.0.0.1:{free_port()}"))
    assert report.retried == 1
    assert state_of(ctx, ids["r@example.org"]) == ("scheduled", "scheduled")


def test_a_slow_server_is_served_over_several_connections(ctx: Context) -> None:
    emails = [f"r{i}@example{i}.org" for i in range(8)]
    invite_all(ctx, emails)
    handler = FaultyHandler(data_delay=0.4)
    with smtp_server(handler) as url:
        started = time.monotonic()
        report = run_pass(ctx, DUE, transport(url, connections=4))
        elapsed = time.monotonic() - started
    assert report.sent == 8
    # One connection would need 8 x 0.4 s; four share the wait.
    assert elapsed < 8 * 0.4


@pytest.mark.parametrize("pipelining", [True, False])
def test_no_such_user_is_dead_at_rcpt_and_not_after_data(ctx: Context, pipelining: bool) -> None:
    """The same bare words ("550 No such user here", no X.1 code) prove a dead address when
    they answer RCPT TO, and are a content filter's when they answer the end of DATA."""
    ids = invite_all(ctx, ["gone@example.org", "filtered@example.org"])
    handler = FaultyHandler(
        rcpt_replies={"gone@example.org": "550 No such user here"},
        data_replies={"filtered@example.org": "550 No such user here"},
        pipelining=pipelining,
    )
    with smtp_server(handler) as url:
        report = run_pass(ctx, DUE, transport(url))
    assert report.failed == 2
    with ctx.engine.connect() as connection:
        suppressed = dict(
            connection.execute(select(recipients.c.digest, recipients.c.suppressed_reason)).all()
        )
    assert suppressed[ctx.digest_email("gone@example.org")] == "hard-bounce"
    assert suppressed[ctx.digest_email("filtered@example.org")] is None
    assert state_of(ctx, ids["filtered@example.org"]) == ("failed", "bounced")


def test_an_email_that_cannot_be_written_fails_alone(
    ctx: Context, caplog: pytest.LogCaptureFixture
) -> None:
    """An address stored before intake refused it (an encoded word, which no header can
    carry): that one email fails and its invitation is blocked; the rest of the batch,
    claimed with it, still leaves instead of being left `sending`, then `unknown`."""
    emails = [f"r{i}@example.org" for i in range(3)]
    ids = invite_all(ctx, emails)
    with ctx.engine.begin() as connection:
        connection.execute(
            update(invitations)
            .where(invitations.c.id == ids["r1@example.org"])
            .values(address="=?utf-8?q?p2?=@example.org")
        )
    handler = FaultyHandler()
    with smtp_server(handler) as url:
        report = run_pass(ctx, DUE, transport(url))
    assert (report.sent, report.failed, report.unknown) == (2, 1, 0)
    assert sorted(r for rcpts, _ in handler.received for r in rcpts) == [
        "r0@example.org",
        "r2@example.org",
    ]
    assert state_of(ctx, ids["r1@example.org"]) == ("failed", "blocked")
    assert {state_of(ctx, ids[e]) for e in ("r0@example.org", "r2@example.org")} == {
        ("sent", "sent")
    }
    assert all("p2" not in record.getMessage() for record in caplog.records)


def test_a_batch_that_cannot_be_signed_is_put_back_as_it_was(ctx: Context, tmp_path: Path) -> None:
    """A fault that is not one email's own (here a DKIM key file that is gone) stops the
    pass, and the claimed batch is scheduled again as before its claim, so the pass after
    the repair sends it: nothing is failed for good, nothing is left `sending`."""
    ids = invite_all(ctx, ["r0@example.org", "r1@example.org"])
    broken = Context(
        engine=ctx.engine,
        settings=replace(
            ctx.settings,
            dkim_domain="agora.test",
            dkim_selector="s1",
            dkim_private_key_file=str(tmp_path / "gone.pem"),
        ),
    )
    handler = FaultyHandler()
    with smtp_server(handler) as url:
        with pytest.raises(InvalidInput, match="DKIM private key"):
            run_pass(broken, DUE, transport(url))
        with ctx.engine.connect() as connection:
            rows = connection.execute(
                select(
                    messages.c.state,
                    messages.c.attempts,
                    messages.c.first_attempt_at,
                    messages.c.lease_until,
                )
            ).all()
        assert set(rows) == {("scheduled", 0, None, None)}
        assert run_pass(ctx, DUE + timedelta(minutes=1), transport(url)).sent == 2
    assert len(handler.received) == 2
    assert {state_of(ctx, i) for i in ids.values()} == {("sent", "sent")}


def test_an_email_being_handed_to_smtp_cannot_be_withdrawn_or_said_withdrawn(
    ctx: Context,
) -> None:
    """While the worker holds an email (`sending`, the server slow to answer), withdrawing
    its invitation is refused and revoking the consent counts it as already leaving: the
    member is never told an email was stopped that then arrives."""
    register_member(ctx, "ana", "ana@members.example", "Ana Lima", "en", T0)
    preview = preview_invitations(ctx, "ana", 2, "", None, 1)
    request = InviteRequest(
        "ana",
        ("r0@example.org", "r1@example.org"),
        "",
        None,
        1,
        preview.preview_hash,
        ConsentInput(preview.consent_text),
    )
    answer = invite(ctx, request, T0)
    ids = [item["id"] for item in answer["invitations"]]
    handler = FaultyHandler(data_delay=1.5)
    with smtp_server(handler) as url:
        passing = threading.Thread(target=run_pass, args=(ctx, DUE, transport(url)))
        passing.start()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and {state_of(ctx, i)[0] for i in ids} != {"sending"}:
            time.sleep(0.02)
        assert {state_of(ctx, i)[0] for i in ids} == {"sending"}
        with pytest.raises(Conflict) as refused:
            withdraw(ctx, ids[0], DUE)
        revoked = revoke_consent(ctx, answer["consent_id"], DUE)
        passing.join(10)
    assert refused.value.details == {"state": "sending"}
    assert revoked == {"withdrawn": 0, "reminders_cancelled": 0, "already_leaving": 2}
    assert len(handler.received) == 2
    with ctx.engine.connect() as connection:
        invitation_states = connection.execute(select(invitations.c.state)).scalars().all()
        emails = connection.execute(select(messages.c.kind, messages.c.state)).all()
    assert invitation_states == ["sent", "sent"]
    # The consent is revoked: no reminder waits for what left.
    assert sorted(emails) == [("invitation", "sent"), ("invitation", "sent")]
