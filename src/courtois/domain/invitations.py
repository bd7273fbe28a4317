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
# On its way or waiting for an answer: the states a recipient may still answer an invitation
# in, and the ones its expiry ends (the worker's pass moves them to `expired`).
ANSWERABLE_STATES = frozenset({_I.SCHEDULED, _I.SENT})


def state_as_of(state: InvitationState, expires_at: datetime, now: datetime) -> InvitationState:
    """The state as a recipient must meet it at `now`: an invitation past its expiry is
    expired, whether or not a worker pass has written so yet. Silence means stop
    (invariant 3) from the expiry on, not from the next pass: no answer, reminder or
    extension reaches an invitation in between (invariant 10 then drops its address)."""
    if state in ANSWERABLE_STATES and expires_at <= now:
        return _I.EXPIRED
    return state


def word_given_while_leaving(
    joined_at: datetime | None, forgotten_at: datetime | None
) -> tuple[InvitationState, datetime] | None:
    """What a recipient's standing word makes of an invitation whose email is recorded sent
    after they gave it, while the email was being handed over (the platform reported the
    join, or they asked to be forgotten, by no link of that email): the word an invitation
    sent at that moment would have met first, with when it was given. Joined, accepted;
    forgotten, declined, as an invitation already sent is by either; neither, None (the
    invitation waits for its answer). An opt-out alone answers nothing: it stops mail."""
    words = [
        (at, state)
        for at, state in ((joined_at, _I.ACCEPTED), (forgotten_at, _I.DECLINED))
        if at is not None
    ]
    if not words:
        return None
    at, state = min(words)
    return state, at


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
