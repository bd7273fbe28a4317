"""A composed, DKIM-signed message crosses a real SMTP server (aiosmtpd, in process) and
still verifies on the bytes the server received."""

from __future__ import annotations

import email
import smtplib
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import dkim
import pytest
from aiosmtpd.controller import Controller

from conftest import make_dkim_key, signing_settings
from courtois.delivery.compose import (
    Carried,
    ComposeInput,
    as_previewed,
    compose,
    make_tokens,
    to_bytes,
)
from courtois.delivery.dkim import sign
from courtois.delivery.render import Inviter, RenderContext, preview
from courtois.domain.messages import MessageKind


class Capture:
    """An aiosmtpd handler keeping each envelope as received."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def smtp_server() -> Iterator[tuple[Capture, int]]:
    handler = Capture()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield handler, controller.port
    finally:
        controller.stop()


def test_signed_message_survives_a_real_smtp_hop(
    smtp_server: tuple[Capture, int], tmp_path: Path
) -> None:
    handler, port = smtp_server
    key, record = make_dkim_key(tmp_path)
    settings = signing_settings(key, "s1", platform_postal_address="1 rue de la Paix, 75002 Paris")
    # A note with a line holding only a dot: SMTP must dot-stuff it and the server unstuff it.
    note = "Come and see!\n.\nÀ bientôt"
    outgoing = ComposeInput(
        message_id="3f1c2a9e-0000-4000-8000-000000000001",
        to="bo@example.com",
        kind=MessageKind.INVITATION,
        locale="fr",
        invitations=(Carried("inv-1", "Ana Lima", note, 1),),
        sent_at=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
    )
    tokens = make_tokens(settings, outgoing.invitation_ids)
    raw = sign(to_bytes(compose(settings, outgoing, tokens)), settings)

    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        refused = client.sendmail(settings.mail_from, [outgoing.to], raw)
    assert refused == {}

    ((mail_from, rcpt_tos, received),) = handler.received
    assert (mail_from, rcpt_tos) == (settings.mail_from, [outgoing.to])
    assert dkim.verify(received, dnsfunc=lambda name, timeout=5: record)
    assert not dkim.verify(
        received.replace(b"Auto-Submitted: auto-generated", b"Auto-Submitted: no"),
        dnsfunc=lambda name, timeout=5: record,
    )
    # What arrived is what the member previewed (invariant 2), bar the tokens.
    parsed = email.message_from_bytes(received, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    shown = preview("fr", RenderContext.from_settings(settings, (Inviter("Ana Lima", note, 1),)))
    assert as_previewed(parsed, tokens) == shown.message
