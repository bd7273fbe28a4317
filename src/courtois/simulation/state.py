"""The simulated world's collections, and how messages and invitations move in it.

The moves mirror `courtois.services.transitions`: a final state cancels what the invitation
still had waiting; a cancelled first message stops counting against its sender's caps; an
invitation that never left stops counting as "already invited".
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from heapq import heappush

from courtois.domain.messages import MessageKind
from courtois.policy.config import PolicyConfig
from courtois.simulation.tally import Tally
from courtois.simulation.world import (
    CLOSED,
    SCHEDULED,
    UNANSWERED,
    Consent,
    Invitation,
    Message,
    Recipient,
    Sender,
)

_REMINDER = MessageKind.REMINDER


class State:
    """Recipients, senders, consents and open invitations, with the timers of the
    messages waiting to be decided and of the invitations waiting to expire."""

    def __init__(self, policy: PolicyConfig, count_from: datetime | None) -> None:
        self.policy = policy
        self.count_from = count_from
        self.tally = Tally()
        self._expiry = timedelta(days=policy.invitation_expiry_days)
        self._unsent_expiry = policy.long_window + self._expiry
        self._recipients: dict[str, Recipient] = {}
        self._senders: dict[str, Sender] = {}
        self._consents: dict[str, Consent] = {}
        self._open: dict[str, Invitation] = {}
        self._due: list[tuple[datetime, int, Message]] = []
        # Allowed at a pass but not carried (a reminder beside a digest): decided again at
        # the next pass.
        self._left_behind: list[Message] = []
        self._expiries: list[tuple[datetime, int, Invitation]] = []
        self._order = itertools.count()
        # During a pass, what changes the senders' facts waits for the pass's end: the
        # worker reads them once per batch.
        self._in_pass = False
        self._dropped: list[tuple[Sender, datetime]] = []
        self._sent: list[tuple[Sender, Invitation]] = []

    def _counting(self, now: datetime) -> bool:
        return self.count_from is None or now >= self.count_from

    def _recipient(self, digest: str) -> Recipient:
        found = self._recipients.get(digest)
        if found is None:
            found = self._recipients[digest] = Recipient(digest)
        return found

    def _sender(self, member: str) -> Sender:
        found = self._senders.get(member)
        if found is None:
            found = self._senders[member] = Sender()
        return found

    def _open_invitation(self, invitation: Invitation, at: datetime) -> None:
        recipient = invitation.recipient
        recipient.count_invitation(invitation.member, 1)
        recipient.add_open(invitation)
        invitation.consent.open[invitation.id] = invitation
        self._open[invitation.id] = invitation
        self._expire_at(invitation, at + self._unsent_expiry)

    def _schedule(
        self, invitation: Invitation, kind: MessageKind, created_at: datetime, due: datetime
    ) -> None:
        message = Message(invitation, kind, created_at, due)
        invitation.messages.append(message)
        invitation.recipient.add_pending(due)
        heappush(self._due, (due, next(self._order), message))

    def _reschedule(self, message: Message, due: datetime) -> None:
        recipient = message.invitation.recipient
        recipient.drop_pending(message.due)
        recipient.add_pending(due)
        message.due = due
        heappush(self._due, (due, next(self._order), message))

    def _unschedule(self, message: Message) -> None:
        """The message is no longer waiting (sent or cancelled)."""
        message.alive = False
        message.invitation.recipient.drop_pending(message.due)

    def _cancel(self, message: Message) -> None:
        self._unschedule(message)
        invitation = message.invitation
        invitation.messages.remove(message)
        self._forget_message(invitation, message)

    def _forget_message(self, invitation: Invitation, message: Message) -> None:
        if message.kind is _REMINDER:
            return
        sender = self._senders[invitation.member]
        if self._in_pass:
            self._dropped.append((sender, message.created_at))
        else:
            sender.drop_message(message.created_at)

    def _cancel_all(self, invitation: Invitation, kind: MessageKind | None = None) -> None:
        for message in [m for m in invitation.messages if kind is None or m.kind is kind]:
            self._cancel(message)

    def _expire_at(self, invitation: Invitation, when: datetime) -> None:
        invitation.expires_at = when
        heappush(self._expiries, (when, next(self._order), invitation))

    def _close(self, invitation: Invitation, answer: int) -> None:
        """The invitation reached a final state; what it still had waiting is cancelled."""
        if invitation.state == CLOSED:
            return
        self._cancel_all(invitation)
        recipient, member = invitation.recipient, invitation.member
        if invitation.state == SCHEDULED:
            recipient.count_invitation(member, -1)
        elif answer != UNANSWERED:
            self._senders[member].answered(invitation, answer)
        invitation.state = CLOSED
        del self._open[invitation.id]
        recipient.drop_open(invitation)
        consent = invitation.consent
        del consent.open[invitation.id]
        if not consent.open and self._consents.get(consent.id) is consent:
            del self._consents[consent.id]
