"""erase_member: a member's right to erasure (GDPR Art. 17), in one transaction.

The member's id stays, with nothing that names the person: the ledger, the decisions and
the sender's record name members by id only, so the history stays whole and the chain
verifiable. What the member gave goes: their address and name, each consent's note, IP
and user agent, the contacts they imported, the API answers stored for them, and their
sessions. What proves a consent was given stays: when, to what preview (its hash), and
the sentence ticked, which names only the platform and a count. Nothing of theirs leaves
afterwards (invariant 5): every waiting email is cancelled, every open invitation
withdrawn, every consent revoked; an email being handed to SMTP at that moment is the one
exception, as when a consent is revoked, and is counted. The recipients' own word
(opt-outs, blocks, suppressions) is theirs, and stays.

An erased id is never a member again (`register_member` refuses it): its history belongs
to the person erased, and a new person under the same id would inherit their invitations,
consents and sender record, and read them in an export.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, literal, or_, select, update

from courtois.domain.errors import NotFound
from courtois.domain.invitations import OPEN_INVITATION_STATES, InvitationState
from courtois.domain.ledger import EventType
from courtois.domain.messages import MessageState
from courtois.services.context import Context
from courtois.services.idempotency import api_scope, api_scopes_under, invite_scope
from courtois.services.lifecycle import sending_now
from courtois.services.locks import lock_recipients
from courtois.services.transitions import cancel_messages, move_invitations
from courtois.services.unit_of_work import UnitOfWork
from courtois.services.webhooks import record_member_erased
from courtois.store.sql import comparable_text
from courtois.store.tables import (
    consents,
    contacts,
    idempotency_keys,
    idempotency_subjects,
    invitations,
    members,
    messages,
)
from courtois.store.wal import truncate_wal

ERASED = "the member's data was erased"

_OPEN = sorted(state.value for state in OPEN_INVITATION_STATES)
_LOCK = select(members.c.erased_at).where(members.c.id == bindparam("b_member")).with_for_update()
# Where the host API keeps answers to the member's keyed requests: its routes under the
# member's path, and registrations, which quote the address and name and are found by the
# id they answered with.
_REGISTRATIONS = api_scope("POST", "/v1/members")


@dataclass(frozen=True, slots=True)
class Erasure:
    """What erasing a member stopped and removed; a repeat finds nothing left (zeros) and
    keeps the first instant."""

    id: str
    erased_at: datetime
    invitations_withdrawn: int
    emails_cancelled: int
    consents_revoked: int
    contacts_deleted: int
    already_leaving: int

    def as_dict(self) -> dict[str, Any]:
        """Plain form for JSON, the instant in ISO 8601."""
        return {**asdict(self), "erased_at": self.erased_at.isoformat()}


def erase_member(ctx: Context, member_id: str, now: datetime) -> Erasure:
    """Stop everything of the member and erase what names them, in one transaction; then,
    on SQLite, truncate the log, so that no old page with their data is left in the files
    when the caller hears back. Idempotent: a repeat erases again whatever came back
    (nothing should), but keeps the first instant and tells nobody twice."""
    if not comparable_text(member_id):
        raise NotFound("No such member.")
    with ctx.unit_of_work(now) as uow:
        found = uow.conn.execute(_LOCK, {"b_member": member_id}).first()
        if found is None:
            raise NotFound(f"No member {member_id!r}.", {"member": member_id[:140]})
        first = found.erased_at is None
        withdrawn, cancelled, leaving = _stop_everything(uow, member_id)
        revoked = _revoke_consents(uow, member_id)
        deleted = uow.conn.execute(delete(contacts).where(contacts.c.member_id == member_id))
        _drop_answers(uow.conn, member_id)
        erased_at: datetime = now if first else found.erased_at
        uow.conn.execute(
            update(members)
            .where(members.c.id == member_id)
            .values(
                email="",
                email_digest="",
                name="",
                reply_to=False,
                updated_at=now,
                sessions_ended_at=now,
                erased_at=erased_at,
            )
        )
        if first:
            uow.record(EventType.MEMBER_ERASED, {"member": member_id, "contacts": deleted.rowcount})
            record_member_erased(uow, member_id)
        uow.commit()
    truncate_wal(ctx.engine)
    return Erasure(
        id=member_id,
        erased_at=erased_at,
        invitations_withdrawn=len(withdrawn),
        emails_cancelled=cancelled,
        consents_revoked=revoked,
        contacts_deleted=int(deleted.rowcount),
        already_leaving=len(leaving),
    )


def _stop_everything(uow: UnitOfWork, member_id: str) -> tuple[list[str], int, set[str]]:
    """Withdraw every open invitation and cancel every waiting email of the member, under
    the locks of every recipient concerned (which a worker's claim takes too). Returns the
    invitations withdrawn, how many emails were cancelled, and the invitations left to
    become sent because their email is being handed to SMTP now."""
    connection = uow.conn
    mine = invitations.c.member_id == member_id
    still_open = mine & invitations.c.state.in_(_OPEN)
    waiting = (messages.c.member_id == member_id) & (
        messages.c.state == MessageState.SCHEDULED.value
    )
    opened = connection.execute(
        select(invitations.c.id, invitations.c.recipient_digest).where(still_open)
    ).all()
    queued = connection.execute(select(messages.c.recipient_digest).where(waiting)).scalars()
    lock_recipients(connection, {r.recipient_digest for r in opened} | set(queued))
    # Read again under the locks: nothing of this member changes from here on.
    emails = int(
        connection.execute(select(func.count()).select_from(messages).where(waiting)).scalar_one()
    )
    leaving = sending_now(connection, [r.id for r in opened])
    if leaving:
        still_open &= invitations.c.id.not_in(sorted(leaving))
    withdrawn = move_invitations(uow, still_open, InvitationState.WITHDRAWN, ERASED)
    # What no withdrawal cancelled: the reminder of an invitation whose email is leaving.
    cancel_messages(uow, messages.c.member_id == member_id, ERASED)
    return withdrawn, emails, leaving


def _revoke_consents(uow: UnitOfWork, member_id: str) -> int:
    """Revoke every consent still active and clear, in all of them, what the member wrote
    (the note, and the words kept with it) and where they clicked from (IP, user agent).
    Returns how many were revoked."""
    mine = consents.c.member_id == member_id
    active = list(
        uow.conn.execute(
            select(consents.c.id).where(mine, consents.c.revoked_at.is_(None))
        ).scalars()
    )
    uow.conn.execute(
        update(consents)
        .where(mine)
        .values(
            note="",
            words=None,
            ip="",
            user_agent="",
            revoked_at=func.coalesce(
                consents.c.revoked_at, literal(uow.now, consents.c.revoked_at.type)
            ),
        )
    )
    for consent_id in active:
        uow.record(EventType.CONSENT_REVOKED, {"consent": consent_id, "member": member_id})
    return len(active)


def _drop_answers(connection: Connection, member_id: str) -> None:
    """Delete the answers kept for the member's keyed requests: `invite`'s (which quote
    their recipients, and the member's name and note in a text to share), those of the
    API's routes under the member's path, and their registrations (address and name). A
    repeat of one of those requests is then answered anew: the member is not found."""
    invited = invite_scope(member_id)
    connection.execute(delete(idempotency_subjects).where(idempotency_subjects.c.scope == invited))
    scope = idempotency_keys.c.scope
    answered_id = idempotency_keys.c.response[("body", "id")]
    connection.execute(
        delete(idempotency_keys).where(
            or_(
                scope == invited,
                scope.like(api_scopes_under(f"/v1/members/{member_id}"), escape="\\"),
                (scope == _REGISTRATIONS) & (answered_id.as_string() == member_id),
            )
        )
    )
