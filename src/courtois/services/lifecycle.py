"""withdraw, revoke_consent and stop_everything: the member can stop everything
(invariant 5), one invitation, one consent, or all of it in one click."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, select, update

from courtois.domain.errors import Conflict, NotFound
from courtois.domain.invitations import InvitationState
from courtois.domain.ledger import EventType
from courtois.domain.messages import MessageKind, MessageState
from courtois.services.context import Context
from courtois.services.locks import lock_member, lock_recipients
from courtois.services.transitions import cancel_messages, move_invitations
from courtois.services.unit_of_work import UnitOfWork
from courtois.store.bulk import among, chunked
from courtois.store.sql import comparable_text
from courtois.store.tables import consents, invitations, messages


def withdraw(ctx: Context, invitation_id: str, now: datetime, member_id: str | None = None) -> str:
    """Withdraw an open invitation: nothing more of it leaves. Returns the new state."""
    if not comparable_text(invitation_id):
        raise NotFound("No such invitation.")
    with ctx.unit_of_work(now) as uow:
        row = uow.conn.execute(
            select(
                invitations.c.member_id, invitations.c.recipient_digest, invitations.c.state
            ).where(invitations.c.id == invitation_id)
        ).first()
        if row is None or (member_id is not None and row.member_id != member_id):
            raise NotFound(f"No invitation {invitation_id!r}.", {"invitation": invitation_id[:40]})
        lock_member(uow.conn, row.member_id, erased_too=True)
        lock_recipients(uow.conn, [row.recipient_digest])
        if sending_now(uow.conn, [invitation_id]):
            raise Conflict(
                "Its email is being handed to the mail server right now and may already have "
                "left; once it has, withdrawing the invitation stops any reminder.",
                {"state": SENDING},
            )
        # An email in doubt may be in the recipient's inbox, its join link with it: a
        # withdrawal now would leave them holding a link to an invitation said withdrawn.
        # It waits for an admin's word, after which the usual states apply.
        if in_doubt_now(uow.conn, [invitation_id]):
            raise Conflict(
                "Its email may already have left: a worker stopped while handing it to the "
                "mail server, and an admin is checking what became of it. It can be withdrawn "
                "once that is settled, if it is still open then.",
                {"state": UNKNOWN},
            )
        moved = move_invitations(
            uow,
            invitations.c.id == invitation_id,
            InvitationState.WITHDRAWN,
            "withdrawn by the member",
        )
        if not moved:
            raise Conflict(
                f"The invitation is {row.state} and can no longer be withdrawn.",
                {"state": row.state},
            )
        uow.commit()
    return InvitationState.WITHDRAWN.value


def revoke_consent(
    ctx: Context, consent_id: str, now: datetime, member_id: str | None = None
) -> dict[str, int]:
    """Revoke a consent: every unsent message under it is cancelled, invitations not yet sent
    are withdrawn, and sent ones get no reminder."""
    if not comparable_text(consent_id):
        raise NotFound("No such consent.")
    with ctx.unit_of_work(now) as uow:
        row = uow.conn.execute(
            select(consents.c.member_id, consents.c.revoked_at).where(consents.c.id == consent_id)
        ).first()
        if row is None or (member_id is not None and row.member_id != member_id):
            raise NotFound(f"No consent {consent_id!r}.", {"consent": consent_id[:40]})
        if row.revoked_at is not None:
            raise Conflict("This consent is already revoked.", {"consent": consent_id})
        lock_member(uow.conn, row.member_id, erased_too=True)
        stopped = _revoke(uow, row.member_id, [consent_id])
        uow.commit()
    stopped.pop("consents_revoked")
    return stopped


def stop_everything(ctx: Context, member_id: str, now: datetime) -> dict[str, int]:
    """The member's one click (invariant 5): every consent still active is revoked at once,
    in one transaction, as `revoke_consent` revokes one; so nothing the member asked for is
    left to leave but the emails already being handed over. Invitations already sent stay
    open (their email is in the recipient's inbox, its join link still good) with no
    reminder. Repeating it is harmless: nothing is left, zeros are answered and nothing is
    written."""
    if not comparable_text(member_id):
        raise NotFound("No such member.")
    with ctx.unit_of_work(now) as uow:
        if not lock_member(uow.conn, member_id):
            raise NotFound(f"No member {member_id!r}.", {"member": member_id[:140]})
        active = list(
            uow.conn.execute(
                select(consents.c.id)
                .where(consents.c.member_id == member_id, consents.c.revoked_at.is_(None))
                .order_by(consents.c.id)
            ).scalars()
        )
        stopped = _revoke(uow, member_id, active)
        if active:
            uow.commit()
    return stopped


def _revoke(uow: UnitOfWork, member_id: str, consent_ids: list[str]) -> dict[str, int]:
    """Revoke these consents of the member, under the member's lock: their recipients are
    locked first, all at once and in digest order (as every writer locks them, so two
    revocations never wait on each other crosswise), then the consents are marked, their
    scheduled invitations withdrawn and their reminders cancelled."""
    connection = uow.conn
    under: list[Row[Any]] = []
    for chunk in chunked(connection, consent_ids):
        under += connection.execute(
            select(invitations.c.recipient_digest, invitations.c.id).where(
                among(connection, invitations.c.consent_id, chunk)
            )
        ).all()
    lock_recipients(connection, [r.recipient_digest for r in under])
    for chunk in chunked(connection, consent_ids):
        connection.execute(
            update(consents)
            .where(among(connection, consents.c.id, chunk))
            .values(revoked_at=uow.now)
        )
    for consent_id in consent_ids:
        uow.record(EventType.CONSENT_REVOKED, {"consent": consent_id, "member": member_id})
    # An invitation whose email the worker is handing to SMTP right now cannot be
    # stopped: it is left to become sent (its reminder is then refused, the consent
    # being revoked) and counted, rather than said withdrawn while its email arrives.
    # One whose email is in doubt is left alike, for an admin to settle: sent (no
    # reminder follows) or not delivered.
    opened = [r.id for r in under]
    leaving = sending_now(connection, opened) | in_doubt_now(connection, opened)
    withdrawn: list[str] = []
    for chunk in chunked(connection, consent_ids):
        unsent = among(connection, invitations.c.consent_id, chunk) & (
            invitations.c.state == InvitationState.SCHEDULED.value
        )
        if leaving:
            unsent &= invitations.c.id.not_in(sorted(leaving))
        withdrawn += move_invitations(uow, unsent, InvitationState.WITHDRAWN, "consent revoked")
    # The invitations' reminders, found by each message's own key (digest, invitation),
    # not through a subquery: on a distributed database each statement stays on the
    # shards of the recipients named.
    cancelled = []
    reminder = messages.c.kind == MessageKind.REMINDER.value
    by_id = {r.id: r.recipient_digest for r in under}
    for chunk in chunked(connection, sorted(by_id)):
        digests = sorted({by_id[i] for i in chunk})
        cancelled += cancel_messages(
            uow,
            among(connection, messages.c.recipient_digest, digests)
            & among(connection, messages.c.invitation_id, chunk)
            & reminder,
            "consent revoked",
        )
    return {
        "consents_revoked": len(consent_ids),
        "withdrawn": len(withdrawn),
        "reminders_cancelled": len(cancelled),
        "already_leaving": len(leaving),
    }


SENDING = MessageState.SENDING.value
UNKNOWN = MessageState.UNKNOWN.value


def sending_now(connection: Connection, invitation_ids: list[str]) -> set[str]:
    """Those of these invitations with an email being handed to SMTP now (claimed, its
    outcome not yet recorded); read under the recipients' locks, which a claim takes too."""
    return _with_an_email_in(connection, invitation_ids, SENDING)


def in_doubt_now(connection: Connection, invitation_ids: list[str]) -> set[str]:
    """Those of these invitations with an email whose fate nobody knows (`unknown`: it may
    have arrived, invariant 8) until an admin says; read under the recipients' locks, which
    the admin's resolution takes too."""
    return _with_an_email_in(connection, invitation_ids, UNKNOWN)


def _with_an_email_in(connection: Connection, invitation_ids: list[str], state: str) -> set[str]:
    found: set[str] = set()
    for chunk in chunked(connection, invitation_ids):
        found.update(
            connection.execute(
                select(messages.c.invitation_id).where(
                    among(connection, messages.c.invitation_id, chunk),
                    messages.c.state == state,
                )
            ).scalars()
        )
    return found
