"""The platform and the email the composition tests share, and a wire form whose multipart
boundary (drawn at random per email) is named the same in every email."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from courtois.config import Settings
from courtois.delivery.compose import Carried, ComposeInput
from courtois.domain.messages import MessageKind

SETTINGS = Settings(
    secret_key="test-secret-key-0123456789",
    platform_name="Agora",
    base_url="https://agora.test",
    mail_from="invitations@agora.test",
    platform_postal_address="1 rue de la Paix, 75002 Paris",
)
SENT_AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def message(*carried: Carried, **changes: Any) -> ComposeInput:
    """An invitation from Ana to Bo, sent at SENT_AT, with these changes."""
    values: dict[str, Any] = {
        "message_id": "3f1c2a9e-0000-4000-8000-000000000001",
        "to": "bo@example.com",
        "kind": MessageKind.INVITATION,
        "locale": "en",
        "invitations": carried or (Carried("inv-1", "Ana Lima", "Come and see!"),),
        "sent_at": SENT_AT,
    }
    return ComposeInput(**{**values, **changes})


def boundless(raw: bytes) -> bytes:
    """The wire form with its multipart boundary named the same in every email."""
    found = re.search(rb'boundary="([^"]+)"', raw)
    assert found is not None
    return raw.replace(found.group(1), b"BOUNDARY")
