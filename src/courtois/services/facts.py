"""Gather the facts the policy needs, in a handful of set-based queries per batch.

Rules never read the store; this module reads it for them, for many recipients at once,
so a batch of ten thousand recipients costs a few queries rather than tens of thousands.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Connection,
    Select,
    and_,
    bindparam,
    func,
    literal_column,
    null,
    or_,
    select,
    union_all,
)

from courtois.domain.consent import Consent
from courtois.domain.invitations import InvitationState
from courtois.domain.messages import MessageKind, MessageState
from courtois.policy.config import PolicyConfig
from courtois.policy.facts import RecipientFacts, SenderFacts, Stage
from courtois.services.locks import LockedRecipient
from courtois.store.bulk import (
    Among,
    any_array,
    chunked,
    expanding_in,
    per_dialect,
    prebuilt,
    unindexed,
)
from courtois.store.tables import (
    complaints,
    consent_recipients,
    consents,
    invitations,
    members,
    messages,
    recipient_blocks,
    recipients,
    sender_activity,
)
from courtois.store.types import UTCDateTime

CHUNK = 500
# The sender facts' windows (invariant 12).
WEEK = timedelta(days=7)
QUARTER = timedelta(days=90)
SLOT_STATES = (
    MessageState.SCHEDULED.value,
    MessageState.SENDING.value,
    MessageState.SENT.value,
    MessageState.UNKNOWN.value,
)
# Invitations that count as made though not sent: still waiting to go.
_WAITING = (InvitationState.DRAFTED.value, InvitationState.SCHEDULED.value)

# The statements below run for every invitation and every send: each is built once (per
# engine where an IN list differs, see `per_dialect`) and run with a parameters dict, the
# recipients' digests bound as `b_digests`.
_MEMBER = bindparam("b_member", type_=sender_activity.c.member_id.type)
_HORIZON = bindparam("b_horizon", type_=UTCDateTime())
_RECIPIENT_ROWS = per_dialect(
    lambda within: select(
        recipients.c.digest,
        recipients.c.unsubscribed_at,
        recipients.c.suppressed_reason,
        recipients.c.joined_at,
    ).where(within(recipients.c.digest, "b_digests"))
)
# Every stop from one member some recipients asked for: (recipient, member).
MEMBER_STOPS = per_dialect(
    lambda within: select(recipient_blocks.c.recipient_digest, recipient_blocks.c.member_id).where(
        within(recipient_blocks.c.recipient_digest, "b_digests")
    )
)
_JOINED = per_dialect(
    lambda within: select(members.c.email_digest).where(within(members.c.email_digest, "b_digests"))
)


def _slots(within: Among, state: ColumnElement[str]) -> Select[Any]:
    """Each message of the recipients that counts against their quota, with, for a
    scheduled reminder, its invitation's `remind_at`: set, the recipient asked for that
    reminder, whose day is held at every stage (`RecipientFacts.reserved`). The join goes
    through the recipient's digest too, so that it stays on one shard."""
    scheduled_reminder = and_(
        messages.c.kind == MessageKind.REMINDER.value,
        state == MessageState.SCHEDULED.value,
    )
    asked_for = messages.outerjoin(
        invitations,
        and_(
            scheduled_reminder,
            invitations.c.recipient_digest == messages.c.recipient_digest,
            invitations.c.id == messages.c.invitation_id,
        ),
    )
    return (
        select(
            messages.c.id,
            messages.c.recipient_digest,
            messages.c.state,
            messages.c.sent_at,
            messages.c.scheduled_at,
            invitations.c.remind_at,
        )
        .select_from(asked_for)
        .where(
            within(messages.c.recipient_digest, "b_digests"),
            or_(state.in_(bindparam("b_states", expanding=True)), scheduled_reminder),
            messages.c.carried_by.is_(None),
            or_(messages.c.sent_at > _HORIZON, messages.c.scheduled_at > _HORIZON),
        )
    )


_SLOTS = {
    "postgresql": _slots(any_array, messages.c.state),
    # Without statistics SQLite read these through ix_messages_state_scheduled, that is
    # every scheduled or sent message of the platform, on every invitation; kept off the
    # state, it finds the few recipients' messages by the primary key (digest first).
    "sqlite": _slots(expanding_in, unindexed(messages.c.state)),
}
# What deciding needs of a consent, unpacked by position in `load_consents`.
_CONSENTS = per_dialect(
    lambda within: select(
        consents.c.id,
        consents.c.member_id,
        consents.c.kind,
        consents.c.preview_hash,
        consents.c.reminders,
        consents.c.text_shown,
        consents.c.ip,
        consents.c.user_agent,
        consents.c.given_at,
        consents.c.revoked_at,
    ).where(within(consents.c.id, "b_ids"))
)
# Which of its recipients each consent names: all, or those among some.
_NAMED = per_dialect(
    lambda within: select(
        consent_recipients.c.consent_id, consent_recipients.c.recipient_digest
    ).where(within(consent_recipients.c.consent_id, "b_consents"))
)
_NAMED_AMONG = per_dialect(
    lambda within: select(
        consent_recipients.c.consent_id, consent_recipients.c.recipient_digest
    ).where(
        within(consent_recipients.c.consent_id, "b_consents"),
        within(consent_recipients.c.recipient_digest, "b_digests"),
    )
)
# The reminders of some invitations that left (or may have).
_REMINDERS_SENT = per_dialect(
    lambda within: select(messages.c.invitation_id).where(
        within(messages.c.invitation_id, "b_ids"),
        messages.c.kind == MessageKind.REMINDER.value,
        messages.c.state.in_(SLOT_STATES[1:]),
    )
)
_PREVIOUS = per_dialect(
    lambda within: select(invitations.c.recipient_digest).where(
        invitations.c.member_id == _MEMBER,
        within(invitations.c.recipient_digest, "b_digests"),
        or_(invitations.c.sent_at.is_not(None), invitations.c.state.in_(_WAITING)),
    )
)
# The sender facts of a batch's members in two statements, whatever their number (they were
# one statement a member). Each is a lookup by member id on those members' shards
# (invariant 12), the members bound as `b_members`. The first unites two reads of
# `sender_activity`:
#   0: creation time of each member's first emails of the week not cancelled
#      (reminders never count: they are not in `sender_activity`);
#   1: how many of each member's invitations sent within 90 days are in each state;
# the second counts the complaints each member received within 90 days. Apart, because a
# statement naming `complaints` and `sender_activity` for many members would hold them to
# no one member, which a distributed database runs across shards.
_QUARTER = bindparam("b_quarter", type_=UTCDateTime())


def _senders(within: Among) -> CompoundSelect[Any]:
    recent = select(
        literal_column("0").label("part"),
        sender_activity.c.member_id.label("member"),
        sender_activity.c.message_id.label("name"),
        sender_activity.c.created_at.label("at"),
        literal_column("1").label("n"),
    ).where(
        within(sender_activity.c.member_id, "b_members"),
        sender_activity.c.created_at > bindparam("b_week", type_=UTCDateTime()),
        sender_activity.c.message_id.is_not(None),
    )
    outcomes = (
        select(
            literal_column("1"),
            sender_activity.c.member_id,
            sender_activity.c.state,
            null(),
            func.count(),
        )
        .where(
            within(sender_activity.c.member_id, "b_members"), sender_activity.c.sent_at > _QUARTER
        )
        .group_by(sender_activity.c.member_id, sender_activity.c.state)
    )
    return union_all(recent, outcomes)


def _complaints(within: Among) -> Select[tuple[str, int]]:
    return (
        select(complaints.c.member_id, func.count())
        .where(within(complaints.c.member_id, "b_members"), complaints.c.at > _QUARTER)
        .group_by(complaints.c.member_id)
    )


_SENDERS = per_dialect(_senders)
_COMPLAINTS_OF = per_dialect(_complaints)


def chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    """Slices small enough for an IN list on every engine."""
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def recipient_facts(
    connection: Connection,
    digests: Collection[str],
    now: datetime,
    policy: PolicyConfig,
    exclude_messages: Collection[str] = (),
    stage: Stage = Stage.QUEUE,
    locked: Mapping[str, LockedRecipient] | None = None,
) -> dict[str, RecipientFacts]:
    """Opt-outs, suppressions, membership and quota slots for each digest.

    When queueing, scheduled messages are reported as `pending` emails a new invitation can
    join; right before sending, only what left (or may have) counts, and the scheduled
    messages due together are merged into one digest by the worker. A reminder the
    recipient asked for is `reserved` at both stages: its day was promised to them.
    """
    states = SLOT_STATES if stage is Stage.QUEUE else SLOT_STATES[1:]
    scheduled = MessageState.SCHEDULED.value
    ordered = sorted(set(digests))
    rows: dict[str, tuple[bool, str | None, bool]] = {}
    blocks: dict[str, set[str]] = defaultdict(set)
    slots: dict[str, list[datetime]] = defaultdict(list)
    pending: dict[str, list[datetime]] = defaultdict(list)
    reserved: dict[str, list[datetime]] = defaultdict(list)
    joined: set[str] = set()
    horizon = now - policy.long_window
    excluded = set(exclude_messages)
    for r in (locked or {}).values():
        rows[r.digest] = (r.unsubscribed_at is not None, r.suppressed_reason, bool(r.joined_at))
    for chunk in chunked(connection, ordered):
        these = {"b_digests": list(chunk)}
        if locked is None:
            # Rows unpacked by position, in the statements' column order (see
            # `worker_due.due_messages`).
            for digest, unsubscribed_at, suppressed_reason, joined_at in connection.execute(
                prebuilt(_RECIPIENT_ROWS, connection), these
            ):
                rows[digest] = (unsubscribed_at is not None, suppressed_reason, bool(joined_at))
        for digest, member_id in connection.execute(prebuilt(MEMBER_STOPS, connection), these):
            blocks[digest].add(member_id)
        joined.update(connection.execute(prebuilt(_JOINED, connection), these).scalars())
        slot_reads = {**these, "b_states": list(states), "b_horizon": horizon}
        for id_, digest, state, sent_at, scheduled_at, remind_at in connection.execute(
            prebuilt(_SLOTS, connection), slot_reads
        ):
            if id_ in excluded:
                continue
            if remind_at is not None:
                reserved[digest].append(scheduled_at)
            elif state == scheduled:
                if stage is Stage.QUEUE:
                    pending[digest].append(scheduled_at)
            else:
                slots[digest].append(sent_at or scheduled_at)
    facts = {}
    for digest in ordered:
        unsubscribed, suppressed, is_joined = rows.get(digest, (False, None, False))
        facts[digest] = RecipientFacts(
            unsubscribed_all=unsubscribed,
            blocked_members=frozenset(blocks.get(digest, ())),
            suppressed=suppressed,
            is_member=is_joined or digest in joined,
            slots=tuple(sorted(slots.get(digest, ()))),
            pending=tuple(sorted(pending.get(digest, ()))),
            reserved=tuple(sorted(reserved.get(digest, ()))),
        )
    return facts


def sender_facts(connection: Connection, member_id: str, now: datetime) -> SenderFacts:
    """The member's recent volume and how their invitations were received."""
    return senders_facts(connection, [member_id], now)[member_id]


def senders_facts(
    connection: Connection, member_ids: Collection[str], now: datetime
) -> dict[str, SenderFacts]:
    """`sender_facts` of each member, read by member id alone (`sender_activity` and
    `complaints` live on the member's shard) in two statements for all of them: a worker's
    batch holds the emails of many members, which were read with one statement each
    before. Not one statement: see `_COMPLAINTS_OF`."""
    recent: dict[str, list[datetime]] = defaultdict(list)
    by_state: dict[str, dict[str, int]] = defaultdict(dict)
    complained: dict[str, int] = {}
    activity = prebuilt(_SENDERS, connection)
    received = prebuilt(_COMPLAINTS_OF, connection)
    reads = {"b_week": now - WEEK, "b_quarter": now - QUARTER}
    for chunk in chunked(connection, sorted(set(member_ids))):
        these = {**reads, "b_members": list(chunk)}
        for part, member, name, at, n in connection.execute(activity, these):
            if part == 0:
                recent[member].append(at)
            else:
                by_state[member][str(name)] = int(n)
        for member, n in connection.execute(received, these):
            complained[member] = int(n)
    return {
        member: SenderFacts(
            recent_messages=tuple(sorted(recent.get(member, ()))),
            sent_90d=sum(by_state.get(member, {}).values()),
            accepted_90d=by_state.get(member, {}).get(InvitationState.ACCEPTED.value, 0),
            declined_90d=by_state.get(member, {}).get(InvitationState.DECLINED.value, 0),
            complaints_90d=complained.get(member, 0),
        )
        for member in member_ids
    }


def previous_invitations(
    connection: Connection, member_id: str, digests: Collection[str]
) -> dict[str, int]:
    """How many invitations this member already made to each digest that count as "invited":
    sent ones, and ones still waiting to go. One withdrawn or refused before it left may be
    made again."""
    counts: dict[str, int] = defaultdict(int)
    statement = prebuilt(_PREVIOUS, connection)
    for chunk in chunked(connection, sorted(set(digests))):
        these = {"b_member": member_id, "b_digests": list(chunk)}
        for digest in connection.execute(statement, these).scalars():
            counts[digest] += 1
    return counts


def load_consents(
    connection: Connection,
    consent_ids: Collection[str],
    recipients: Collection[str] | None = None,
) -> dict[str, Consent]:
    """Consents with their recipient lists: all of each list, or, when `recipients` is
    given, only those of them each consent names (enough to judge those recipients, and no
    more). A worker's batch asks about a few recipients of consents that may each name
    hundreds: reading every list in full cost rows in proportion to the consents' sizes
    rather than the batch's."""
    found: dict[str, Consent] = {}
    wanted = None if recipients is None else sorted(set(recipients))
    for chunk in chunks(sorted(set(consent_ids))):
        names: dict[str, set[str]] = defaultdict(set)
        for part in [None] if wanted is None else chunks(wanted):
            named = (
                connection.execute(prebuilt(_NAMED, connection), {"b_consents": chunk})
                if part is None
                else connection.execute(
                    prebuilt(_NAMED_AMONG, connection), {"b_consents": chunk, "b_digests": part}
                )
            )
            for consent_id, digest in named:
                names[consent_id].add(digest)
        for (
            id_,
            member_id,
            kind,
            preview_hash,
            reminders,
            text_shown,
            ip,
            user_agent,
            given_at,
            revoked_at,
        ) in connection.execute(prebuilt(_CONSENTS, connection), {"b_ids": chunk}):
            found[id_] = Consent(
                id=id_,
                member_id=member_id,
                recipients=frozenset(names[id_]),
                kind=MessageKind(kind),
                preview_hash=preview_hash,
                reminders=reminders,
                text_shown=text_shown,
                ip=ip,
                user_agent=user_agent,
                given_at=given_at,
                revoked_at=revoked_at,
            )
    return found


def reminders_sent(connection: Connection, invitation_ids: Collection[str]) -> dict[str, int]:
    """Reminders that left (or may have) per invitation."""
    counts: dict[str, int] = defaultdict(int)
    for chunk in chunks(sorted(set(invitation_ids))):
        sent = connection.execute(prebuilt(_REMINDERS_SENT, connection), {"b_ids": chunk})
        for invitation_id in sent.scalars():
            counts[invitation_id] += 1
    return counts
