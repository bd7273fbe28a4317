"""The one reminder a member ticked, put in the queue once the first email has left.

Both ways an email is known to have left schedule it: the server's acceptance
(`send_outcomes`) and the recipient following a link of an email still being recorded
(`email_arrived`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from courtois.domain.ids import new_id
from courtois.domain.messages import MessageKind
from courtois.services.transitions import scheduled_message
from courtois.services.unit_of_work import UnitOfWork
from courtois.store.bulk import per_dialect, prebuilt
from courtois.store.tables import consents, invitations, messages

__all__ = ["schedule_reminders"]


# The invitations whose email left, with what scheduling needs: (id, member, recipient,
# consent), unpacked by position.
_SENT = per_dialect(
    lambda within: select(
        invitations.c.id,
        invitations.c.member_id,
        invitations.c.recipient_digest,
        invitations.c.consent_id,
    ).where(within(invitations.c.id, "b_ids"))
)
# Those of some consents whose member ticked a reminder and did not revoke them.
_TICKED = per_dialect(
    lambda within: select(consents.c.id).where(
        within(consents.c.member_id, "b_members"),
        within(consents.c.id, "b_ids"),
        consents.c.reminders >= 1,
        consents.c.revoked_at.is_(None),
    )
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
    sent = uow.conn.execute(prebuilt(_SENT, uow.conn), {"b_ids": list(invitation_ids)}).all()
    ticked = set(
        uow.conn.execute(
            prebuilt(_TICKED, uow.conn),
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
