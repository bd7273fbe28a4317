"""An email in doubt that arrived after all, recorded as its worker would have recorded it.

Two kinds of word settle it: an admin's, who read the mail server's logs (`admin_unknown`),
and the recipient's own, who followed a link that only that email carried
(`recipient_actions`: joining, and every choice made from its other links). Both go
through `record_arrived`, so the email, the invitations it brought and their reminders
end up as one accepted email leaves them. The recipient's word settles an email still
`sending` too: the server took it, the inbox has it, and only its worker's write of what
the server said is still to come (`SETTLED_BY_ARRIVAL`); that write then finds it settled
and leaves it alone (`send_outcomes`), so the answer made from its link is never lost.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, select

from courtois.domain.invitations import InvitationState
from courtois.domain.messages import SETTLED_BY_ARRIVAL, MessageKind, MessageState
from courtois.services.context import Context
from courtois.services.reminder_schedule import schedule_reminders
from courtois.services.transitions import move_invitations, record_digests, set_messages
from courtois.services.unit_of_work import UnitOfWork
from courtois.store.tables import invitations, messages

_UNKNOWN = MessageState.UNKNOWN.value
_SETTLED_BY_ARRIVAL = frozenset(state.value for state in SETTLED_BY_ARRIVAL)
# Run by every choice made from a link (the one-click unsubscribe too): built once, as
# building and cache-keying a statement costs several times running it.
_RECIPIENT_MESSAGES = (
    select(messages).where(messages.c.recipient_digest == bindparam("b_digest")).with_for_update()
)
_STILL_SCHEDULED = select(invitations.c.id).where(
    invitations.c.recipient_digest == bindparam("b_digest"),
    invitations.c.id == bindparam("b_invitation"),
    invitations.c.state == InvitationState.SCHEDULED.value,
    invitations.c.expires_at > bindparam("b_now"),
)
# Why an email in doubt is recorded sent when its recipient follows its join link.
FOLLOWED_LINK = "the recipient followed the link, so the email arrived"


def handed_over_at(attempts: int, first_attempt_at: datetime | None) -> datetime | None:
    """When an email was handed to the mail server, as far as its row tells: the claim of
    its only attempt. After earlier attempts refused for now, the first attempt is not the
    one that may have arrived, and no later one is stored: None."""
    return first_attempt_at if attempts == 1 else None


def email_in_doubt(
    connection: Connection,
    digest: str,
    invitation_id: str,
    states: frozenset[str] = frozenset({_UNKNOWN}),
) -> list[Any]:
    """The messages of the email that was this invitation's first (its digest's carrier
    and every part it carried, itself included) while that email is in one of `states`
    (by default `unknown`), or none when it is not. Read among the recipient's own
    messages, a handful (docs/scaling.md), by their key alone: the state is checked here,
    so the busy state index is never walked. Locked as read (PostgreSQL): a worker's
    outcome or an expired lease written meanwhile is waited for, and then read."""
    rows = [
        row
        for row in connection.execute(_RECIPIENT_MESSAGES, {"b_digest": digest})
        if row.state in states
    ]
    first = next(
        (
            r
            for r in rows
            if r.invitation_id == invitation_id and r.kind != MessageKind.REMINDER.value
        ),
        None,
    )
    if first is None:
        return []
    carrier = first.carried_by or first.id
    return [r for r in rows if carrier in (r.id, r.carried_by)]


def record_arrived(
    uow: UnitOfWork,
    ctx: Context,
    rows: Sequence[Any],
    reason: str,
    answered: Collection[str] = (),
) -> int:
    """These `unknown` emails (or, from a recipient's link, `sending` ones) arrived: sent
    when they were handed to the mail server, as a worker recording the server's answer
    would have said, their first invitations sent from then, with the reminder a member
    ticked, as after any accepted email (none for the `answered` invitations, whose
    recipient is answering them now: a reminder would ask them again). The sending time
    feeds the charts' day, the recipient's quota, the reminder and the expiry: when it is
    not known (an email tried more than once), the instant its outcome became unknown
    stands for it, the latest it can have left (for one still `sending`, its claim, when
    it was handed over). A digest's parts left with their carrier. Returns how many
    invitations became sent."""
    left = {r.id: handed_over_at(r.attempts, r.first_attempt_at) or r.updated_at for r in rows}
    messages_at: dict[tuple[datetime, str], list[str]] = defaultdict(list)
    by_instant: dict[datetime, list[str]] = defaultdict(list)
    for r in rows:
        instant = left.get(r.carried_by or r.id, left[r.id])
        messages_at[(instant, r.state)].append(r.id)
        if r.kind != MessageKind.REMINDER.value:
            by_instant[instant].append(r.invitation_id)
    for (instant, state), message_ids in sorted(messages_at.items()):
        set_messages(
            uow,
            message_ids,
            MessageState(state),
            MessageState.SENT,
            reason,
            sent_at=instant,
            lease_until=None,
        )
    # One still `sending` is not yet a digest, and its worker, finding it settled, leaves
    # it alone: recorded here.
    record_digests(uow, (r.carried_by for r in rows if r.carried_by))
    expiry = timedelta(days=ctx.settings.policy.invitation_expiry_days)
    moved = 0
    for instant, invitation_ids in sorted(by_instant.items()):
        sent = move_invitations(
            uow,
            invitations.c.id.in_(invitation_ids)
            & (invitations.c.state == InvitationState.SCHEDULED.value),
            InvitationState.SENT,
            reason,
            extra={"sent_at": instant, "expires_at": instant + expiry},
        )
        reminded = [i for i in sent if i not in answered]
        schedule_reminders(uow, reminded, instant + ctx.settings.policy.reminder_interval, uow.now)
        moved += len(sent)
    return moved


def arrived_by_link(
    uow: UnitOfWork,
    ctx: Context,
    invitation_id: str,
    digest: str,
    *,
    shared: bool,
    answered: Collection[str] | None = None,
) -> None:
    """The recipient followed a link of this invitation (join, why, unsubscribe, each only
    ever in its emails) while it is still scheduled: the link came in its first email (a
    reminder, with the same links, only ever follows an email recorded sent). When that
    email's fate is `unknown`, or still being recorded (`sending`: the server took it and
    its worker has not yet written so), it arrived, and is recorded so, with every
    invitation it carried, before the click is answered (the caller holds the recipient's
    lock, which the worker takes too before it writes an outcome). Not
    from a text the member sent by hand (`shared`: it proves nothing of an email), nor for
    an invitation past its expiry, which a click must not reopen. The `answered`
    invitations (by default this one) get no reminder: the click is answering them."""
    if shared:
        return
    # By its key: every choice from a link runs this, the one-click unsubscribe too.
    waiting = (
        uow.conn.execute(
            _STILL_SCHEDULED,
            {"b_digest": digest, "b_invitation": invitation_id, "b_now": uow.now},
        ).first()
        is not None
    )
    rows = email_in_doubt(uow.conn, digest, invitation_id, _SETTLED_BY_ARRIVAL) if waiting else []
    if rows:
        answering = {invitation_id} if answered is None else answered
        record_arrived(uow, ctx, rows, FOLLOWED_LINK, answered=answering)
