"""A worker pass with DKIM configured: every email of a batch leaves signed, each with its
own signature over its own headers, and an email held for differing from its preview is
neither signed nor sent; a 4096-bit signature and an Ed25519 one cross a real SMTP server."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes
from email.policy import SMTP
from pathlib import Path

import dkim
import pytest
from smtp_server import FaultyHandler, smtp_server
from sqlalchemy import Engine, select

from conftest import DKIM_DOMAIN, T0, make_dkim_key, make_ed25519_key, signing_settings
from courtois.config import Settings
from courtois.delivery.smtp import SmtpTransport, parse_smtp_url
from courtois.delivery.transport import MemoryTransport
from courtois.services.context import Context
from courtois.services.invitations import ConsentInput, InviteRequest, invite
from courtois.services.members import register_member
from courtois.services.previews import preview_invitations
from courtois.services.worker import run_pass
from courtois.store.tables import messages

SELECTOR, DOMAIN = "worker2026", DKIM_DOMAIN


@pytest.fixture
def settings(dkim_key: tuple[Path, bytes]) -> Settings:
    """The test platform, signing with the module's key (overrides the shared fixture)."""
    return signing_settings(dkim_key[0], SELECTOR)


def invite_all(
    ctx: Context, member: str, name: str, emails: tuple[str, ...], reminders: int = 0
) -> None:
    register_member(ctx, member, f"{member}@members.example", name, "en", T0)
    preview = preview_invitations(ctx, member, len(emails), "", None, reminders)
    request = InviteRequest(
        member,
        emails,
        "",
        None,
        reminders,
        preview.preview_hash,
        ConsentInput(preview.consent_text),
    )
    invite(ctx, request, T0)


def verifies(raw: bytes, record: bytes) -> bool:
    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        assert name == f"{SELECTOR}._domainkey.{DOMAIN}.".encode()
        return record

    return bool(dkim.verify(raw, dnsfunc=dnsfunc))


def test_every_email_of_a_batch_leaves_with_its_own_valid_signature(
    ctx: Context, dkim_key: tuple[Path, bytes]
) -> None:
    ana = tuple(f"ana-{i}@example.org" for i in range(4))
    cy = tuple(f"cy-{i}@example.net" for i in range(3))
    invite_all(ctx, "ana", "Ana", ana)
    invite_all(ctx, "bo", "Bo", ("bo-0@example.com", "bo-1@example.com"))
    invite_all(ctx, "cy", "Cy", cy)
    # Bo renames after consenting: Bo's emails, between Ana's and Cy's in the batch, differ
    # from the preview and are held.
    register_member(ctx, "bo", "bo@members.example", "Bo Renamed", "en", T0 + timedelta(minutes=5))

    transport = MemoryTransport()
    report = run_pass(ctx, T0 + timedelta(minutes=11), transport)

    assert report.sent == len(ana) + len(cy)
    assert report.failed == 2
    assert sorted(sent.to for sent in transport.sent) == sorted(ana + cy)
    for sent in transport.sent:
        assert sent.raw.startswith(b"DKIM-Signature: ")
        assert verifies(sent.raw, dkim_key[1])
        email = message_from_bytes(sent.raw, policy=SMTP)
        assert str(email["To"]) == sent.to
        assert str(email["Message-ID"]) == f"<{sent.message_id}@{DOMAIN}>"
    signatures = {sent.raw.split(b"\r\n\r\n", 1)[0].split(b"b=")[-1] for sent in transport.sent}
    assert len(signatures) == len(transport.sent)


@pytest.mark.parametrize("kind", ["rsa-4096", "ed25519"])
def test_a_signature_crosses_a_real_smtp_server_and_verifies(
    engine: Engine, tmp_path_factory: pytest.TempPathFactory, kind: str
) -> None:
    """Unfolded, the DKIM-Signature of a 4096-bit key was one line of 1,106 octets: the
    server (aiosmtpd, 998 at most, as SMTP allows) answered 500 and the invitations failed
    for good. Folded, they are accepted, and verify on the bytes the server received; so
    do those an Ed25519 key signs (ed25519-sha256, RFC 8463), as a worker configured with
    one sends them."""
    folder = tmp_path_factory.mktemp("dkim")
    key, record = make_dkim_key(folder, 4096) if kind == "rsa-4096" else make_ed25519_key(folder)
    ctx = Context(engine=engine, settings=signing_settings(key, SELECTOR))
    emails = ("ana-0@example.org", "ana-1@example.org")
    invite_all(ctx, "ana", "Ána Lima", emails)
    handler = FaultyHandler()
    with smtp_server(handler) as url:
        report = run_pass(ctx, T0 + timedelta(minutes=11), SmtpTransport(parse_smtp_url(url)))
    assert (report.sent, report.failed) == (2, 0)
    assert sorted(rcpt for rcpts, _ in handler.received for rcpt in rcpts) == list(emails)
    algorithm = "ed25519-sha256" if kind == "ed25519" else "rsa-sha256"
    for _, raw in handler.received:
        assert raw.startswith(b"DKIM-Signature: ")
        assert f"a={algorithm};".encode() in raw.split(b"\r\n\r\n", 1)[0]
        assert max(len(line) for line in raw.split(b"\r\n")) <= 998
        assert verifies(raw, record)
    with engine.connect() as connection:
        assert set(connection.execute(select(messages.c.state)).scalars()) == {"sent"}


def test_rsa_and_ed25519_signatures_both_cross_a_real_smtp_server_and_verify(
    engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Two selectors, an RSA key and an Ed25519 one: every email the server receives holds
    one signature of each, and each verifies against its own selector's record, so a
    receiver that checks only one of the algorithms still finds the domain's signature."""
    folder = tmp_path_factory.mktemp("dkim")
    records = {"r2026": make_dkim_key(folder), "e2026": make_ed25519_key(folder)}
    files = ",".join(str(path) for path, _ in records.values())
    ctx = Context(engine=engine, settings=signing_settings(Path(files), ",".join(records)))
    emails = ("ana-0@example.org", "ana-1@example.org", "ana-2@example.org")
    invite_all(ctx, "ana", "Ána Lima", emails)
    handler = FaultyHandler()
    with smtp_server(handler) as url:
        report = run_pass(ctx, T0 + timedelta(minutes=11), SmtpTransport(parse_smtp_url(url)))
    assert (report.sent, report.failed) == (3, 0)
    assert len(handler.received) == 3

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        selector, _, domain = name.decode().partition("._domainkey.")
        assert domain == f"{DOMAIN}."
        return records[selector][1]

    for _, raw in handler.received:
        head = raw.split(b"\r\n\r\n", 1)[0]
        assert head.count(b"DKIM-Signature:") == 2
        assert b"a=rsa-sha256;" in head
        assert b"a=ed25519-sha256;" in head
        checked = dkim.DKIM(raw)
        assert checked.verify(idx=0, dnsfunc=dnsfunc)
        assert checked.verify(idx=1, dnsfunc=dnsfunc)
