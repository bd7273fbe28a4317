"""Consent: what a member agreed to, pinned to the exact message they previewed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from courtois.domain.messages import MessageKind


@dataclass(frozen=True, slots=True)
class Consent:
    """A member's consent to send one message (and at most the reminders they ticked)."""

    id: str
    member_id: str
    recipients: frozenset[str]
    kind: MessageKind
    preview_hash: str
    reminders: int
    text_shown: str
    ip: str
    user_agent: str
    given_at: datetime
    revoked_at: datetime | None = None

    @property
    def is_active(self) -> bool:
        """Not revoked."""
        return self.revoked_at is None

    def covers(self, recipient_digest: str, kind: MessageKind) -> bool:
        """Whether this consent, as it stands, allows this kind of message to this recipient.

        A reminder is covered only when the member ticked it; a digest carries the same
        invitation the member consented to, so it is covered like the invitation.
        """
        if not self.is_active or recipient_digest not in self.recipients:
            return False
        if kind is MessageKind.REMINDER:
            return self.reminders >= 1
        return kind in (MessageKind.INVITATION, MessageKind.DIGEST)
