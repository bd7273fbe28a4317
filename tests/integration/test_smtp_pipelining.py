"""SMTP PIPELINING against a real server (aiosmtpd in this process): commands really go
out in groups, and every outcome is placed as it is one command at a time. Refusals per
recipient, a connection dropped mid-pipeline or after a body, a server too slow to answer:
nothing is lost, nothing arrives twice, a body that may have been accepted is `unknown`."""

from __future__ import annotations

import email
import ssl
import subprocess
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from smtp_server import FaultyHandler, Script, recording_proxy, scripted_server, smtp_server
from sqlalchemy import select

from conftest import T0
from courtois.delivery.smtp import SmtpTransport, parse_smtp_url
from courtois.services.context import Context
from courtois.services.invitations import ConsentInput, InviteRequest, invite
from courtois.services.members import register_member
from courtois.services.previews import preview_invitations
from courtois.services.worker import run_pass
from courtois.store.tables import invitations, messages, recipients

DUE = T0 + timedelta(minutes=11)
# A member sends at most this many before their acceptance rate starts to scale their caps.
PER_MEMBER = 20


def invite_all(ctx: Context, emails: list[str]) -> None:
    """Invitations from as many members as the sender caps need, all due at DUE."""
    for start in range(0, len(emails), PER_MEMBER):
        member = f"m{start // PER_MEMBER}"
        chunk = tuple(emails[start : start + PER_MEMBER])
        register_member(ctx, member, f"{member}@members.example", f"Member {member}", "en", T0)
        preview = preview_invitations(ctx, member, len(chunk), "", None, 0)
        request = InviteRequest(
            member, chunk, "", None, 0, preview.preview_hash, ConsentInput(preview.consent_text)
        )
        invite(ctx, request, T0)


def state_of(ctx: Context, address: str) -> tuple[str, str]:
    """The message's state and the invitation's, found by the address's digest (a closed
    invitation forgets the address itself)."""
    with ctx.engine.connect() as connection:
        row = connection.execute(
            select(messages.c.state, invitations.c.state.label("inv"))
            .join(invitations, invitations.c.id == messages.c.invitation_id)
            .where(invitations.c.recipient_digest == ctx.digest_email(address))
        ).one()
    return row.state, row.inv


def transport(url: str, **overrides: Any) -> SmtpTransport:
    """One connection unless told otherwise, and no pacing per domain: these tests send
    to one domain and are about what the server says."""
    settings = replace(parse_smtp_url(url), connections=1, per_domain_per_second=0)
    return SmtpTransport(replace(settings, **overrides))


def arrived(handler: FaultyHandler) -> Counter[str]:
    """How many times each Message-ID reached the server."""
    return Counter(str(email.message_from_bytes(raw)["Message-ID"]) for _, raw in handler.received)


def port_of(url: str) -> int:
    return int(url.rpartition(":")[2])


@pytest.mark.parametrize("offered", [True, False])
def test_commands_go_out_in_groups_only_when_the_server_offers_pipelining(
    ctx: Context, offered: bool
) -> None:
    emails = [f"r{i}@example.org" for i in range(4)]
    invite_all(ctx, emails)
    handler = FaultyHandler(pipelining=offered)
    with smtp_server(handler) as url, recording_proxy(port_of(url)) as (port, recording):
        report = run_pass(ctx, DUE, transport(f"smtp://127.0.0.1:{port}"))
    assert report.sent == 4
    assert sorted(r for rcpts, _ in handler.received for r in rcpts) == emails
    together = recording.holding(b"MAIL FROM:", b"RCPT TO:", b"DATA\r\n")
    # The end of one body and the next envelope in one write.
    chained = recording.holding(b"\r\n.\r\nMAIL FROM:")
    if offered:
        assert together == 4
        assert chained == 3
    else:
        assert together == chained == 0


@pytest.mark.parametrize("offered", [True, False])
def test_refusals_are_placed_per_recipient_pipelined_or_not(ctx: Context, offered: bool) -> None:
    emails = [f"r{i}@example.org" for i in range(8)]
    invite_all(ctx, emails)
    handler = FaultyHandler(
        rcpt_replies={
            "r2@example.org": "451 4.7.1 try again later",
            "r4@example.org": "550 5.1.1 <r4@example.org>: Recipient address rejected: "
            "User unknown",
            "r6@example.org": "552 5.2.2 Mailbox full",
        },
        data_replies={"r5@example.org": "451 4.3.0 queue full, try later"},
        pipelining=offered,
    )
    with smtp_server(handler) as url:
        report = run_pass(ctx, DUE, transport(url))
    assert (report.sent, report.retried, report.failed, report.unknown) == (4, 2, 2, 0)
    for sent in ("r0", "r1", "r3", "r7"):
        assert state_of(ctx, f"{sent}@example.org") == ("sent", "sent")
    assert state_of(ctx, "r2@example.org") == ("scheduled", "scheduled")
    assert state_of(ctx, "r5@example.org") == ("scheduled", "scheduled")
    with ctx.engine.connect() as connection:
        suppressed = dict(
            connection.execute(select(recipients.c.digest, recipients.c.suppressed_reason)).all()
        )
    assert suppressed[ctx.digest_email("r4@example.org")] == "hard-bounce"
    assert suppressed[ctx.digest_email("r6@example.org")] is None
    # After each refusal RSET kept the one connection going.
    assert handler.sessions == 1
    assert max(arrived(handler).values()) == 1


def test_a_connection_dropped_mid_pipeline_loses_nothing_and_doubles_nothing(
    ctx: Context,
) -> None:
    emails = [f"r{i}@example.org" for i in range(6)]
    invite_all(ctx, emails)
    # r3's envelope goes out with the body before it; the server answers that body, then
    # hangs up.
    handler = FaultyHandler(drop_at_rcpt={"r3@example.org"})
    with smtp_server(handler) as url:
        report = run_pass(ctx, DUE, transport(url))
        later = run_pass(ctx, DUE + timedelta(minutes=1), transport(url))
    assert (report.sent, report.retried, report.unknown) == (5, 1, 0)
    assert later.sent == 0
    # Nothing of r3 left: tried once more on a new connection, then kept for later.
    assert state_of(ctx, "r3@example.org") == ("scheduled", "scheduled")
    assert all(state_of(ctx, f"r{i}@example.org") == ("sent", "sent") for i in (0, 1, 4, 5))
    # Hung up on twice; a third connection for what came after r3, if anything did.
    assert handler.sessions in (2, 3)
    assert max(arrived(handler).values()) == 1
    assert len(arrived(handler)) == 5


def test_a_connection_dropped_after_a_body_leaves_it_unknown_and_the_next_is_sent(
    ctx: Context,
) -> None:
    emails = [f"r{i}@example.org" for i in range(3)]
    invite_all(ctx, emails)
    handler = FaultyHandler(drop_after_data={"r1@example.org"})
    with smtp_server(handler) as url:
        report = run_pass(ctx, DUE, transport(url))
        later = run_pass(ctx, DUE + timedelta(days=1), transport(url))
    assert (report.sent, report.unknown) == (2, 1)
    assert later.sent == 0
    assert state_of(ctx, "r1@example.org") == ("unknown", "scheduled")
    # The envelope that went with r1's body was never answered: sent on a new connection.
    assert state_of(ctx, "r0@example.org") == state_of(ctx, "r2@example.org") == ("sent", "sent")
    assert len(arrived(handler)) == 3
    assert max(arrived(handler).values()) == 1


def test_a_server_too_slow_to_answer_a_body_leaves_it_unknown(ctx: Context) -> None:
    emails = [f"r{i}@example.org" for i in range(2)]
    invite_all(ctx, emails)
    handler = FaultyHandler(data_delay=1.0)
    with smtp_server(handler) as url:
        report = run_pass(ctx, DUE, transport(url, timeout=0.3))
        later = run_pass(ctx, DUE + timedelta(days=1), transport(url, timeout=0.3))
    assert (report.sent, report.unknown) == (0, 2)
    assert later.sent == 0
    assert {state_of(ctx, e) for e in emails} == {("unknown", "scheduled")}


def test_connections_are_kept_from_one_batch_to_the_next(ctx: Context) -> None:
    emails = [f"r{i}@example{i % 7}.org" for i in range(220)]  # two batches of the worker
    invite_all(ctx, emails)
    handler = FaultyHandler()
    with smtp_server(handler) as url:
        report = run_pass(ctx, DUE, transport(url, connections=2))
    assert report.sent == 220
    assert handler.sessions == 2
    assert len(arrived(handler)) == 220
    assert max(arrived(handler).values()) == 1


@pytest.mark.parametrize("pipelining", [True, False])
@pytest.mark.parametrize("offered", [True, False])
def test_an_international_address_needs_smtputf8(
    ctx: Context, offered: bool, pipelining: bool
) -> None:
    invite_all(ctx, ["bo@example.org", "bö@example.org", "cy@example.org"])
    handler = FaultyHandler(pipelining=pipelining)
    with smtp_server(handler, smtputf8=offered) as url:
        report = run_pass(ctx, DUE, transport(url))
    assert state_of(ctx, "bo@example.org") == state_of(ctx, "cy@example.org") == ("sent", "sent")
    if offered:
        assert report.sent == 3
        assert state_of(ctx, "bö@example.org") == ("sent", "sent")
    else:
        assert (report.sent, report.failed) == (2, 1)
        assert state_of(ctx, "bö@example.org") == ("failed", "bounced")
        assert handler.sessions == 1


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made by openssl."""
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return key, cert


@pytest.fixture(scope="module")
def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    """The server side of TLS, with that certificate."""
    key, cert = certificate
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    return tls


FIVE = [f"r{i}@example.org" for i in range(5)]


def test_tls_from_the_first_byte_then_pipelined(
    ctx: Context, certificate: tuple[Path, Path], server_tls: ssl.SSLContext
) -> None:
    _key, cert = certificate
    emails = FIVE
    invite_all(ctx, emails)
    handler = FaultyHandler()
    with smtp_server(handler, tls=server_tls) as url:
        assert url.startswith("smtps://")
        report = run_pass(ctx, DUE, transport(url, ca_file=str(cert)))
        # Without trusting that certificate, nothing goes: a temporary failure.
        untrusted = run_pass(ctx, DUE, transport(url))
    assert report.sent == 5
    assert untrusted.sent == 0
    assert sorted(r for rcpts, _ in handler.received for r in rcpts) == emails


def test_starttls_when_offered_then_pipelined(
    ctx: Context, certificate: tuple[Path, Path], server_tls: ssl.SSLContext
) -> None:
    """A relay on smtp:// that offers STARTTLS (and refuses mail without it) gets TLS and
    then the pipelined path; its certificate is checked like any other."""
    _key, cert = certificate
    emails = FIVE
    invite_all(ctx, emails)
    handler = FaultyHandler()
    with smtp_server(handler, starttls=server_tls) as url:
        assert url.startswith("smtp://")
        # Trusting nobody's certificate, nothing goes: a temporary failure, nothing sent.
        untrusted = run_pass(ctx, DUE, transport(url))
        assert (untrusted.sent, untrusted.retried) == (0, 5)
        # Told never to use STARTTLS, the server refuses the mail: nothing leaves in clear.
        with ctx.engine.connect() as connection:
            retry_at = max(connection.execute(select(messages.c.scheduled_at)).scalars())
        clear = run_pass(ctx, retry_at, transport(f"{url}?starttls=off"))
        # 530: the session's fault, not the messages': they wait, none is failed.
        assert (clear.sent, clear.failed, clear.retried) == (0, 0, 5)
        assert handler.received == []
        with ctx.engine.connect() as connection:
            retry_at = max(connection.execute(select(messages.c.scheduled_at)).scalars())
        report = run_pass(ctx, retry_at, transport(url, ca_file=str(cert)))
    assert report.sent == 5
    assert sorted(r for rcpts, _ in handler.received for r in rcpts) == emails


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://relay.example", (False, None)),
        ("smtp://relay.example?starttls=required", (False, True)),
        ("smtp://relay.example?starttls=off", (False, False)),
        ("smtp://user:pw@relay.example:587", (False, True)),
        ("smtp://user:pw@127.0.0.1:25?starttls=off", (False, False)),
        ("smtps://user:pw@relay.example", (True, None)),
    ],
)
def test_the_url_says_how_tls_is_used(url: str, expected: tuple[bool, bool | None]) -> None:
    settings = parse_smtp_url(url)
    assert (settings.use_tls, settings.starttls) == expected


@pytest.mark.parametrize(
    "url",
    [
        "smtp://relay.example?starttls=maybe",
        "smtp://relay.example?tls=1",
        "smtps://relay.example?starttls=off",
        "http://relay.example",
    ],
)
def test_a_url_with_an_unknown_tls_option_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"starttls|unknown option|smtp"):
        parse_smtp_url(url)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_auth_with_the_credentials_of_the_url(ctx: Context) -> None:
    invite_all(ctx, ["bo@example.org", "cy@example.org"])
    handler = FaultyHandler()
    with smtp_server(handler, auth=("courtois", "s3cret")) as url:
        host = url.removeprefix("smtp://")
        # Credentials require TLS unless the URL says this relay is spoken to in clear.
        cleartext = run_pass(ctx, DUE, transport(f"smtp://courtois:s3cret@{host}"))
        assert (cleartext.sent, cleartext.retried) == (0, 2)
        assert handler.received == []
        host = f"{host}?starttls=off"
        with ctx.engine.connect() as connection:
            retry_at = max(connection.execute(select(messages.c.scheduled_at)).scalars())
        refused = run_pass(ctx, retry_at, transport(f"smtp://courtois:wrong@{host}"))
        assert (refused.sent, refused.retried) == (0, 2)
        assert handler.received == []
        with ctx.engine.connect() as connection:
            retry_at = connection.execute(select(messages.c.scheduled_at)).scalars().first()
        assert retry_at is not None
        report = run_pass(
            ctx, retry_at + timedelta(hours=7), transport(f"smtp://courtois:s3cret@{host}")
        )
    assert report.sent == 2
    assert len(arrived(handler)) == 2


def test_a_data_command_answered_without_354_sends_no_body(ctx: Context) -> None:
    invite_all(ctx, ["bo@example.org", "cy@example.org"])
    script = Script(replies={"DATA": ["250 odd, but fine?"]})
    with scripted_server(script) as url:
        report = run_pass(ctx, DUE, transport(url))
    # Nothing of the first message left: retried later; RSET kept the connection going.
    assert (report.sent, report.retried) == (1, 1)
    assert {state_of(ctx, "bo@example.org"), state_of(ctx, "cy@example.org")} == {
        ("scheduled", "scheduled"),
        ("sent", "sent"),
    }
    assert len(script.bodies) == 1
    assert script.sessions == 1


def test_a_body_asked_for_a_refused_recipient_is_never_sent(ctx: Context) -> None:
    invite_all(ctx, ["bo@example.org", "cy@example.org"])
    script = Script(replies={"RCPT": ["550 5.1.1 no such user"], "DATA": ["354 send it anyway"]})
    with scripted_server(script) as url:
        report = run_pass(ctx, DUE, transport(url))
    assert (report.sent, report.failed) == (1, 1)
    assert {state_of(ctx, "bo@example.org"), state_of(ctx, "cy@example.org")} == {
        ("failed", "bounced"),
        ("sent", "sent"),
    }
    # The connection was dropped instead: the other message went on a second one.
    assert len(script.bodies) == 1
    assert script.sessions == 2
