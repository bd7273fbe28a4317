"""A worker pass with DKIM configured: every email of a batch leaves signed, each with its
own signature over its own headers, and an email held for differing from its preview is
neither signed nor sent."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes
from email.policy import SMTP
from pathlib import Path

import dkim
import pytest

from conftest import DKIM_DOMAIN, T0, signing_settings
from courtois.config import Settings
from courtois.delivery.transport import MemoryTransport
from courtois.services.context import Context
from courtois.services.invitations import ConsentInput, InviteRequest, invite
from courtois.services.members import register_member
from courtois.services.previews import preview_invitations
from courtois.services.worker import run_pass

SELECTOR, DOMAIN = "worker2026", DKIM_DOMAIN


@pytest.fixture
def settings(dkim_key: tuple[Path, bytes]) -> Settings:
    """The test platform, signing with the module's key (overrides the shared fixture)."""
    return signing_settings(dkim_key[0], SELECTOR)


def invite_all(ctx: Context, member: str, name: str, emails: tuple[str, ...]) -> None:
    register_member(ctx, member, f"{member}@members.example", name, "en", T0)
    preview = preview_invitations(ctx, member, len(emails), "", None, 0)
    request = InviteRequest(
        member, emails, "", None, 0, preview.preview_hash, ConsentInput(preview.consent_text)
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
