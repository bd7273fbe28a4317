"""Invitations and their state machine.

An invitation is one member asking one recipient once. Its reminder and any digest that
carries it are messages of the invitation, never new invitations (invariant 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from courtois.domain.states import StateMachine


class InvitationState(StrEnum):
    """Where an invitation stands."""

    DRAFTED = "drafted"
    SCHEDULED = "scheduled"
    SENT = "sent"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"
    BLOCKED = "blocked"
    BOUNCED = "bounced"


_I = InvitationState

INVITATION_MACHINE: StateMachine[InvitationState] = StateMachine(
    "invitation",
    {
        _I.DRAFTED: frozenset({_I.SCHEDULED, _I.BLOCKED, _I.WITHDRAWN}),
        # A scheduled invitation may still be stopped by anyone: the member (withdrawn), the
        # policy at send time (blocked: unsubscribed, joined meanwhile, revoked consent), or
        # the recipient answering another member's invitation (declined), or the receiving
        # server refusing it for good (bounced).
        _I.SCHEDULED: frozenset(
            {_I.SENT, _I.WITHDRAWN, _I.BLOCKED, _I.DECLINED, _I.EXPIRED, _I.BOUNCED}
        ),
        _I.SENT: frozenset(
            {_I.ACCEPTED, _I.DECLINED, _I.EXPIRED, _I.WITHDRAWN, _I.BLOCKED, _I.BOUNCED}
        ),
        _I.ACCEPTED: frozenset(),
        _I.DECLINED: frozenset(),
        _I.EXPIRED: frozenset(),
        _I.WITHDRAWN: frozenset(),
        _I.BLOCKED: frozenset(),
        _I.BOUNCED: frozenset(),
    },
)

OPEN_INVITATION_STATES = frozenset({_I.DRAFTED, _I.SCHEDULED, _I.SENT})


@dataclass(frozen=True, slots=True)
class Invitation:
    """One member inviting one recipient, under one consent."""

    id: str
    member_id: str
    consent_id: str
    recipient_digest: str
    address: str | None
    locale: str
    state: InvitationState
    created_at: datetime
    expires_at: datetime
    sent_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        """Still waiting for something: a send or an answer."""
        return self.state in OPEN_INVITATION_STATES
