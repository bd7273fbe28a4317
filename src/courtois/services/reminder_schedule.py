"""The one reminder a member ticked, put in the queue once the first email has left.

Both ways an email is known to have left schedule it: the server's acceptance
(`send_outcomes`) and the recipient following a link of an email still being recorded
(`email_arrived`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, select

from courtois.domain.ids import new_id
from courtois.domain.messages import MessageKind
from courtois.services.transitions import scheduled_message
from courtois.services.unit_of_work import UnitOfWork
from courtois.store.tables import consents, invitations, messages

__all__ = ["schedule_reminders"]


# The invitations whose email left, with what scheduling needs. These statements are built
# once, their lists bound at execution: built with a list of hundreds of ids, a statement
# costs SQLAlchemy about 3 us an id to build and cache-key.
_SENT = select(
    invitations.c.id,
    invitations.c.member_id,
    invitations.c.recipient_digest,
    invitations.c.consent_id,
).where(invitations.c.id.in_(bindparam("b_ids", expanding=True)))
# Those of some consents whose member ticked a reminder and did not revoke them.
_TICKED = select(consents.c.id).where(
    consents.c.member_id.in_(bindparam("b_members", expanding=True)),
    consents.c.id.in_(bindparam("b_ids", expanding=True)),
    consents.c.reminders >= 1,
    consents.c.revoked_at.is_(None),
)


def schedule_reminders(
    uow: UnitOfWork, invitation_ids: list[str], at: datetime, now: datetime
) -> None:
    """The one reminder a member ticked, for `at`, scheduled once the first email left so
    that it shows; the policy decides again when it is due. Only invitations whose consent
    ticked the reminder, and is not revoked, get one: a consent revoked while its email was
    being handed to SMTP leaves nothing queued under it (invariant 5)."""
    if not invitation_ids:
        return
    # Two lookups, not a join: invitations live with their recipient, consents with their
    # member (docs/scaling.md).
    # Plain tuples (id, member, recipient, consent), read by position: a SQLAlchemy row's
    # fields read by name cost an AttributeError raised and caught each (0.7 us).
    sent = [tuple(row) for row in uow.conn.execute(_SENT, {"b_ids": list(invitation_ids)})]
    ticked = set(
        uow.conn.execute(
            _TICKED,
            {
                "b_members": sorted({member for _, member, _, _ in sent}),
                "b_ids": sorted({consent for _, _, _, consent in sent}),
            },
        ).scalars()
    )
    rows = [
        (invitation, member, digest)
        for invitation, member, digest, consent in sent
        if consent in ticked
    ]
    if rows:
        uow.conn.execute(
            messages.insert(),
            [
                scheduled_message(
                    new_id(), invitation, member, digest, MessageKind.REMINDER, at, now
                )
                for invitation, member, digest in rows
            ],
        )
