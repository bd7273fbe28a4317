"""The simulated world's state: what the rules' facts are made of, kept up to date event by
event instead of queried, so each decision costs what the chain costs.

Every class mirrors what `courtois.services.facts` reads from the store, and says which
query it stands for. Slotted, because a year of history holds hundreds of thousands.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from datetime import datetime, timedelta

from courtois.domain.messages import MessageKind

WEEK = timedelta(days=7)
QUARTER = timedelta(days=90)

# Where an invitation stands in the simulated world.
SCHEDULED, SENT, CLOSED = 0, 1, 2
# How a sent invitation was answered, for the sender's acceptance and decline rates.
UNANSWERED, ACCEPTED, DECLINED = 0, 1, 2


class Message:
    """A scheduled email of an invitation: its first one, or its reminder."""

    __slots__ = ("alive", "created_at", "due", "invitation", "kind")

    def __init__(
        self, invitation: Invitation, kind: MessageKind, created_at: datetime, due: datetime
    ) -> None:
        self.invitation = invitation
        self.kind = kind
        self.created_at = created_at
        self.due = due
        self.alive = True


class Invitation:
    """One member inviting one recipient, as the simulated world has it."""

    __slots__ = (
        "answer",
        "consent",
        "expires_at",
        "id",
        "in_window",
        "member",
        "messages",
        "recipient",
        "reminders_sent",
        "sent_at",
        "state",
    )

    def __init__(self, id: str, consent: Consent, recipient: Recipient) -> None:
        self.id = id
        self.consent = consent
        self.member = consent.member
        self.recipient = recipient
        self.state = SCHEDULED
        self.sent_at: datetime | None = None
        self.expires_at: datetime | None = None
        self.messages: list[Message] = []
        self.reminders_sent = 0
        self.answer = UNANSWERED
        self.in_window = False


class Consent:
    """A member's consent, with its invitations still open (revoking reaches them)."""

    __slots__ = ("given_at", "id", "member", "open", "reminders", "revoked_at")

    def __init__(self, id: str, member: str, reminders: int, given_at: datetime) -> None:
        self.id = id
        self.member = member
        self.reminders = reminders
        self.given_at = given_at
        self.revoked_at: datetime | None = None
        self.open: dict[str, Invitation] = {}


class Recipient:
    """What `recipient_facts` reads for one digest, and the invitations still open to it.

    A year of history holds one per address ever invited, in each simulated world, so
    each container is created when first needed and dropped when empty: most recipients
    end with one member's invitation answered or expired and nothing else.
    """

    __slots__ = (
        "_emails",
        "_members",
        "_open",
        "_pending",
        "blocked",
        "digest",
        "is_member",
        "suppressed",
        "unsubscribed",
    )

    def __init__(self, digest: str) -> None:
        self.digest = digest
        self.unsubscribed = False
        self.blocked: frozenset[str] = frozenset()
        self.suppressed: str | None = None
        self.is_member = False
        # Send times of the emails that left (a digest is one), ascending.
        self._emails: list[datetime] | None = None
        # Due times of the messages scheduled to this recipient, one per message, ascending.
        self._pending: list[datetime] | None = None
        # Per member: twice the invitations sent or still waiting to go
        # (`previous_invitations`), plus one if their mail reached this recipient.
        self._members: dict[str, int] | None = None
        self._open: dict[str, Invitation] | None = None

    def slots(self, now: datetime, window: timedelta) -> tuple[datetime, ...]:
        """Emails sent within `window` before now (older ones no rule looks at)."""
        emails = self._emails
        if emails is None:
            return ()
        old = bisect_right(emails, now - window)
        if old:
            del emails[:old]
        return tuple(emails)

    def add_email(self, now: datetime) -> None:
        if self._emails is None:
            self._emails = [now]
        else:
            insort(self._emails, now)

    def pending_after(self, horizon: datetime) -> tuple[datetime, ...]:
        """Due times of the scheduled messages, those after `horizon`."""
        return () if self._pending is None else tuple(p for p in self._pending if p > horizon)

    def add_pending(self, due: datetime) -> None:
        if self._pending is None:
            self._pending = [due]
        else:
            insort(self._pending, due)

    def drop_pending(self, due: datetime) -> None:
        pending = self._pending
        assert pending is not None
        del pending[bisect_left(pending, due)]
        if not pending:
            self._pending = None

    def invited_by(self, member: str) -> int:
        """This member's invitations sent or still waiting to go."""
        return 0 if self._members is None else self._members.get(member, 0) >> 1

    def count_invitation(self, member: str, change: int) -> None:
        self._set(member, self._get(member) + 2 * change)

    def mailed(self, member: str) -> None:
        """Mail of this member reached this recipient."""
        self._set(member, self._get(member) | 1)

    def was_mailed_by(self, member: str) -> bool:
        return bool(self._get(member) & 1)

    def _get(self, member: str) -> int:
        return 0 if self._members is None else self._members.get(member, 0)

    def _set(self, member: str, value: int) -> None:
        if value:
            if self._members is None:
                self._members = {}
            self._members[member] = value
        elif self._members is not None:
            self._members.pop(member, None)
            if not self._members:
                self._members = None

    def open_invitations(self) -> list[Invitation]:
        """The open invitations, as a list that may be changed while walked."""
        return [] if self._open is None else list(self._open.values())

    def add_open(self, invitation: Invitation) -> None:
        if self._open is None:
            self._open = {}
        self._open[invitation.id] = invitation

    def drop_open(self, invitation: Invitation) -> None:
        assert self._open is not None
        del self._open[invitation.id]
        if not self._open:
            self._open = None


class Sender:
    """What `sender_facts` reads for one member.

    The 90-day windows are lists read from a moving head rather than deques: a deque
    costs 760 bytes empty, and a year of history has tens of thousands of members.
    """

    __slots__ = (
        "_complaints",
        "_first",
        "_sent",
        "accepted",
        "declined",
        "frozen",
        "recent",
        "sent_count",
    )

    def __init__(self) -> None:
        # Creation times of live first messages (not reminders, not cancelled), ascending.
        self.recent: list[datetime] = []
        self.frozen: tuple[datetime, ...] | None = None
        # Invitations first sent, oldest first, from `_first` on in the last 90 days, and
        # how those fared.
        self._sent: list[Invitation] = []
        self._first = 0
        self.sent_count = 0
        self.accepted = 0
        self.declined = 0
        self._complaints: list[datetime] | None = None

    def add_message(self, created_at: datetime) -> None:
        """A first message now counts against the caps."""
        insort(self.recent, created_at)
        self.frozen = None

    def drop_message(self, created_at: datetime) -> None:
        """A cancelled first message no longer counts."""
        recent = self.recent
        index = bisect_left(recent, created_at)
        if index < len(recent) and recent[index] == created_at:
            del recent[index]
            self.frozen = None

    def recent_messages(self, now: datetime) -> tuple[datetime, ...]:
        """Creation times in the seven days before now, as a tuple the rule bisects."""
        recent = self.recent
        old = bisect_right(recent, now - WEEK)
        if old:
            del recent[:old]
            self.frozen = None
        if self.frozen is None:
            self.frozen = tuple(recent)
        return self.frozen

    def add_sent(self, invitation: Invitation) -> None:
        """An invitation of this member was sent (or shared by the member)."""
        invitation.in_window = True
        self._sent.append(invitation)
        self.sent_count += 1

    def answered(self, invitation: Invitation, answer: int) -> None:
        """A sent invitation was accepted or declined."""
        invitation.answer = answer
        if invitation.in_window:
            if answer == ACCEPTED:
                self.accepted += 1
            elif answer == DECLINED:
                self.declined += 1

    def complained(self, at: datetime) -> None:
        """A recipient reported this member's mail as spam."""
        if self._complaints is None:
            self._complaints = [at]
        else:
            insort(self._complaints, at)

    def window(self, now: datetime) -> tuple[int, int, int, int]:
        """Sent, accepted, declined and complaints in the 90 days before now."""
        horizon = now - QUARTER
        sent, first = self._sent, self._first
        while first < len(sent):
            oldest = sent[first]
            sent_at = oldest.sent_at
            if sent_at is not None and sent_at > horizon:
                break
            first += 1
            oldest.in_window = False
            self.sent_count -= 1
            if oldest.answer == ACCEPTED:
                self.accepted -= 1
            elif oldest.answer == DECLINED:
                self.declined -= 1
        if first > 32 and first * 2 > len(sent):
            del sent[:first]
            first = 0
        self._first = first
        complaints = self._complaints
        if complaints is None:
            return self.sent_count, self.accepted, self.declined, 0
        old = bisect_right(complaints, horizon)
        if old:
            del complaints[:old]
        return self.sent_count, self.accepted, self.declined, len(complaints)
