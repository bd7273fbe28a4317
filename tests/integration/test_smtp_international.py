"""Addresses outside ASCII over a real SMTP server (aiosmtpd in this process), offering
SMTPUTF8 or not, pipelined or one command at a time. SMTPUTF8 is asked for exactly when
the envelope or the message needs it; an ASCII local part at an international domain goes
in A-labels and needs nothing of the server; a member's Reply-To that needs SMTPUTF8 is
left out for a server without it, the words staying those the member consented to; and a
relay lacking SMTPUTF8 never suppresses a recipient."""

from __future__ import annotations

import email
from dataclasses import replace
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path

import dkim
import pytest
from smtp_server import FaultyHandler, smtp_server
from sqlalchemy import select

from conftest import T0, signing_settings
from courtois.config import Settings
from courtois.delivery.compose import as_previewed, tokens_in
from courtois.delivery.render import Inviter, RenderContext, preview
from courtois.delivery.smtp import SmtpTransport, parse_smtp_url
from courtois.services.context import Context
from courtois.services.invitations import ConsentInput, InviteRequest, invite
from courtois.services.members import register_member
from courtois.services.previews import preview_invitations
from courtois.services.worker import run_pass
from courtois.store.tables import invitations, messages, recipients

DUE = T0 + timedelta(minutes=11)
SELECTOR = "intl2026"
PATHS = pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "lockstep"])
OFFERED = pytest.mark.parametrize("offered", [True, False], ids=["smtputf8", "ascii-only"])


@pytest.fixture
def settings(dkim_key: tuple[Path, bytes]) -> Settings:
    """The test platform, signing: the email a server without SMTPUTF8 gets instead is
    signed too."""
    return signing_settings(dkim_key[0], SELECTOR)


def invite_from(
    ctx: Context, address: str, name: str, emails: list[str], reply_to: bool = False
) -> None:
    register_member(ctx, "m1", address, name, "en", T0, reply_to=reply_to)
    shown = preview_invitations(ctx, "m1", len(emails), "", None, 0)
    request = InviteRequest(
        "m1", tuple(emails), "", None, 0, shown.preview_hash, ConsentInput(shown.consent_text)
    )
    invite(ctx, request, T0)


def state_of(ctx: Context, address: str) -> tuple[str, str, str | None]:
    """The message's state, the invitation's and the recipient's suppression, found by
    the address's digest (a closed invitation forgets the address itself)."""
    digest = ctx.digest_email(address)
    with ctx.engine.connect() as connection:
        row = connection.execute(
            select(messages.c.state, invitations.c.state.label("inv"))
            .join(invitations, invitations.c.id == messages.c.invitation_id)
            .where(invitations.c.recipient_digest == digest)
        ).one()
        suppressed = connection.execute(
            select(recipients.c.suppressed_reason).where(recipients.c.digest == digest)
        ).scalar_one()
    return row.state, row.inv, suppressed


def transport(url: str) -> SmtpTransport:
    return SmtpTransport(replace(parse_smtp_url(url), connections=1, per_domain_per_second=0))


def signed(raw: bytes, record: bytes) -> bool:
    return bool(dkim.verify(raw, dnsfunc=lambda name, timeout=5: record))


@PATHS
@OFFERED
def test_a_reply_to_outside_ascii_asks_for_smtputf8_or_is_left_out(
    ctx: Context, dkim_key: tuple[Path, bytes], offered: bool, pipelining: bool
) -> None:
    invite_from(ctx, "jürg@members.example", "Jürg Müller", ["bo@example.org"], reply_to=True)
    handler = FaultyHandler(pipelining=pipelining)
    with smtp_server(handler, smtputf8=offered) as url:
        report = run_pass(ctx, DUE, transport(url))

    assert (report.sent, report.failed) == (1, 0)
    assert state_of(ctx, "bo@example.org") == ("sent", "sent", None)
    [(rcpts, raw)] = handler.received
    [(sender, options)] = handler.mail
    assert (sender, rcpts) == ("invitations@agora.test", ["bo@example.org"])
    assert signed(raw, dkim_key[1])
    if offered:
        # The header is raw UTF-8 (RFC 6532): only in a transaction that asked for it.
        assert "SMTPUTF8" in options
        assert "Reply-To: Jürg Müller <jürg@members.example>\r\n".encode() in raw
        return
    # No SMTPUTF8 to ask for: the same email without its Reply-To, all ASCII...
    assert "SMTPUTF8" not in options
    assert raw.isascii()
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert "Reply-To" not in parsed
    assert parsed["From"].addresses[0].display_name == "Jürg Müller via Agora"
    # ...and the words the member previewed and consented to (invariant 2).
    shown = preview("en", RenderContext.from_settings(ctx.settings, (Inviter("Jürg Müller"),)))
    assert as_previewed(parsed, tokens_in(parsed, ctx.settings)) == shown.message


@PATHS
@OFFERED
def test_an_ascii_local_part_at_an_international_domain_needs_no_smtputf8(
    ctx: Context, offered: bool, pipelining: bool
) -> None:
    invite_from(ctx, "ana@members.example", "Ana", ["idn@münchen.example", "idn2@bücher.example"])
    handler = FaultyHandler(pipelining=pipelining)
    with smtp_server(handler, smtputf8=offered) as url:
        report = run_pass(ctx, DUE, transport(url))

    assert (report.sent, report.failed) == (2, 0)
    assert state_of(ctx, "idn@münchen.example") == ("sent", "sent", None)
    assert state_of(ctx, "idn2@bücher.example") == ("sent", "sent", None)
    # The envelope names the domain as the To header does, in A-labels (IDNA 2008).
    arrived = {rcpts[0]: raw for rcpts, raw in handler.received}
    assert sorted(arrived) == ["idn2@xn--bcher-kva.example", "idn@xn--mnchen-3ya.example"]
    for address, raw in arrived.items():
        assert raw.isascii()
        assert f"\r\nTo: {address}\r\n".encode() in raw
    assert all("SMTPUTF8" not in options for _, options in handler.mail)


@PATHS
@OFFERED
def test_a_local_part_outside_ascii_needs_smtputf8_and_never_suppresses(
    ctx: Context, offered: bool, pipelining: bool
) -> None:
    invite_from(ctx, "ana@members.example", "Ana", ["bo@example.org", "bö@bücher.example"])
    handler = FaultyHandler(pipelining=pipelining)
    with smtp_server(handler, smtputf8=offered) as url:
        report = run_pass(ctx, DUE, transport(url))

    assert state_of(ctx, "bo@example.org") == ("sent", "sent", None)
    if offered:
        assert report.sent == 2
        assert state_of(ctx, "bö@bücher.example") == ("sent", "sent", None)
        sent = [(r, o) for (r, _), (_, o) in zip(handler.received, handler.mail, strict=True)]
        assert (["bö@xn--bcher-kva.example"], ["SMTPUTF8"]) in sent
        assert (["bo@example.org"], []) in sent
        return
    # Refused by the client: the relay lacks a feature, the address is not dead.
    assert (report.sent, report.failed) == (1, 1)
    assert state_of(ctx, "bö@bücher.example") == ("failed", "bounced", None)
    assert [rcpts for rcpts, _ in handler.received] == [["bo@example.org"]]
    assert handler.sessions == 1


@PATHS
def test_a_server_refusing_an_address_for_want_of_smtputf8_never_suppresses_it(
    ctx: Context, pipelining: bool
) -> None:
    invite_from(ctx, "ana@members.example", "Ana", ["bö@example.org"])
    reply = "553 5.6.7 Invalid recipient address: non-ASCII local part not accepted"
    handler = FaultyHandler(rcpt_replies={"bö@example.org": reply}, pipelining=pipelining)
    with smtp_server(handler, smtputf8=True) as url:
        report = run_pass(ctx, DUE, transport(url))
    assert report.failed == 1
    assert state_of(ctx, "bö@example.org") == ("failed", "bounced", None)
