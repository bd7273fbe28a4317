"""What a rule may know: the candidate message and the facts gathered for it.

Facts are gathered by the service layer from the store and handed over whole, so a rule
never reads anything itself and every decision can be replayed from its inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from courtois.domain.consent import Consent
from courtois.domain.messages import MessageKind
from courtois.policy.config import PolicyConfig


class Stage(StrEnum):
    """When the policy is asked (invariant 7): on queueing, and right before sending."""

    QUEUE = "queue"
    SEND = "send"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A message someone wants to send."""

    member_id: str
    recipient_digest: str
    kind: MessageKind
    stage: Stage
    invitation_id: str | None = None


@dataclass(frozen=True, slots=True)
class RecipientFacts:
    """What is known of the recipient, across all senders."""

    unsubscribed_all: bool = False
    blocked_members: frozenset[str] = frozenset()
    suppressed: str | None = None
    is_member: bool = False
    # Send times of every other message to this recipient that left or may have left.
    slots: tuple[datetime, ...] = ()
    # Times at which other messages to this recipient are scheduled: each is one email to
    # come, which a new invitation may join as a digest instead of adding an email.
    pending: tuple[datetime, ...] = ()
    # Days of the reminders the recipient asked for ("remind me later") still to leave:
    # each holds its place in the quota, which no other email may take or join, since a
    # reminder never leaves in a digest and the recipient was told that day.
    reserved: tuple[datetime, ...] = ()
    reminder_requested_for: datetime | None = None


@dataclass(frozen=True, slots=True)
class SenderFacts:
    """What is known of the member as a sender."""

    # Creation times of this member's other live messages in the last 7 days, sorted
    # ascending (the sender-quota rule counts its windows by bisection).
    recent_messages: tuple[datetime, ...] = ()
    sent_90d: int = 0
    accepted_90d: int = 0
    declined_90d: int = 0
    complaints_90d: int = 0


@dataclass(frozen=True, slots=True)
class InvitationFacts:
    """What is known of the invitation the message belongs to."""

    consent: Consent | None = None
    other_invitations_by_sender: int = 0
    reminders_sent: int = 0
    last_sent_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything a rule may use, with the policy parameters in force."""

    policy: PolicyConfig = field(default_factory=PolicyConfig)
    recipient: RecipientFacts = field(default_factory=RecipientFacts)
    sender: SenderFacts = field(default_factory=SenderFacts)
    invitation: InvitationFacts = field(default_factory=InvitationFacts)
