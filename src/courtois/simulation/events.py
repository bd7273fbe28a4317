"""The history a replay reads: what members, recipients and the worker did, in order.

Named tuples rather than dataclasses: a year of a large platform is millions of them, and
a tuple is built several times faster. Two families: what a simulated world replays (a
member asking, a recipient stopping mail, a worker pass) and what only the baseline
counts (the decisions, first sends and deliveries that were recorded).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import NamedTuple


class Requested(NamedTuple):
    """A member asked to invite a recipient under a consent; the queue stage decided then."""

    at: datetime
    invitation: str
    consent: str
    member: str
    recipient: str
    reminders: int


class Withdrawn(NamedTuple):
    """The member withdrew one invitation."""

    at: datetime
    invitation: str


class Revoked(NamedTuple):
    """The member revoked a consent: nothing unsent under it may leave."""

    at: datetime
    consent: str


class Answered(NamedTuple):
    """The recipient accepted (followed the join link) or declined one invitation."""

    at: datetime
    invitation: str
    accepted: bool


class Unsubscribed(NamedTuple):
    """The recipient stopped all mail (`member` None) or mail from one member."""

    at: datetime
    recipient: str
    member: str | None


class Joined(NamedTuple):
    """The platform reported the recipient joined: sent invitations count as accepted."""

    at: datetime
    recipient: str


class BecameMember(NamedTuple):
    """A member registered with this address: it is no longer anyone's invitee."""

    at: datetime
    recipient: str


class Forgotten(NamedTuple):
    """The recipient asked to be forgotten: opted out for good."""

    at: datetime
    recipient: str


class Suppressed(NamedTuple):
    """A hard bounce or a spam complaint. `member` is the member a complaint was charged to;
    `reported` tells a bounce or complaint report (which also stops what was waiting) from
    a refusal during an SMTP transaction (which only marks the address)."""

    at: datetime
    recipient: str
    reason: str
    member: str | None
    reported: bool


class WorkerPass(NamedTuple):
    """The worker ran at this instant (it left a trace in the ledger)."""

    at: datetime


class AlreadyInvited(NamedTuple):
    """Before the replay starts, this member's invitation reached this recipient."""

    at: datetime
    member: str
    recipient: str


class Recorded(NamedTuple):
    """A stored decision: every rule's outcome, as the baseline counts it."""

    at: datetime
    stage: str
    kind: str
    outcome: str
    rules: Mapping[str, str]
    shared: bool


class RecordedFirstSend(NamedTuple):
    """An invitation's first email left."""

    at: datetime


class RecordedDelivery(NamedTuple):
    """A message was accepted by the receiving server. A message carried in another's
    digest is not an email of its own; `digest` marks the email that carried others."""

    at: datetime
    carried: bool
    reminder: bool
    digest: bool


Replayed = (
    Requested
    | Withdrawn
    | Revoked
    | Answered
    | Unsubscribed
    | Joined
    | BecameMember
    | Forgotten
    | Suppressed
    | WorkerPass
    | AlreadyInvited
)
Baseline = Recorded | RecordedFirstSend | RecordedDelivery
Event = Replayed | Baseline
