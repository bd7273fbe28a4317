"""invitations_overview, consents_overview: what the member's dashboard shows.

Each invitation comes with what the member can still do about it: when its email leaves
(the undo window's end, or later when a quota defers it), whether an email of it is in
doubt (it may have left unrecorded: not to be withdrawn until an admin settles it) and,
when it was refused, the rule that refused it, never the recipient's own reason
(invariant 11: "unavailable").
Reads only; each page is one indexed range query plus lookups keyed by the page's ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, and_, func, or_, select

from courtois.domain.invitations import OPEN_INVITATION_STATES, InvitationState
from courtois.domain.messages import MessageState
from courtois.policy.verdict import Outcome
from courtois.services.context import Context
from courtois.services.lifecycle import in_doubt_now
from courtois.services.listings import check_member, public_verdicts
from courtois.services.shared_texts import open_shares
from courtois.store.tables import (
    CONSENT_FACTS,
    consent_recipients,
    consents,
    contacts,
    decisions,
    invitations,
    messages,
)

Position = tuple[datetime, str]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class InvitationLine:
    """One invitation on the dashboard."""

    id: str
    consent_id: str
    email: str | None
    state: str
    created_at: datetime
    sent_at: datetime | None
    leaves_at: datetime | None
    undo_ends: datetime | None
    refused_by: str | None
    # Held back past the undo window: it leaves when the limits on emails allow.
    spaced: bool = False
    # The name in the member's own contact of that recipient, while they still hold it.
    name: str | None = None
    # An email of it may have left unrecorded (`unknown`): whatever its state says, its
    # delivery is uncertain until an admin settles it, and it cannot be withdrawn.
    in_doubt: bool = False
    # strict-eu, while the member may still send it themselves: its personal link and the
    # subject and text they send, as the invitation's answer gave them (`open_shares`).
    share_link: str | None = None
    share_subject: str | None = None
    share_text: str | None = None

    @property
    def can_withdraw(self) -> bool:
        """Still open and nothing of it in doubt: withdrawing stops its email or its
        reminder (`lifecycle.withdraw` refuses while an email may be in the inbox)."""
        return InvitationState(self.state) in OPEN_INVITATION_STATES and not self.in_doubt


def _line(
    row: Any,
    leaves_at: datetime | None,
    undo_ends: datetime,
    refused_by: str | None,
    contact: Any | None,
    in_doubt: bool,
    share: dict[str, str],
) -> InvitationLine:
    """One dashboard line. An email held back past the undo window (by the recipient's
    quota, or the sender's own caps) shows no day: the day the recipient's quota frees
    would tell the member when someone else's invitation reached that person. The
    member's own contact of the recipient, while it lasts, names whom an open invitation
    went to where the invitation keeps no address (strict-eu keeps none)."""
    spaced = leaves_at is not None and leaves_at > undo_ends
    return InvitationLine(
        id=row.id,
        consent_id=row.consent_id,
        email=row.address or (contact.address if contact is not None else None),
        name=(contact.display_name or None) if contact is not None else None,
        state=row.state,
        created_at=row.created_at,
        sent_at=row.sent_at,
        leaves_at=None if spaced else leaves_at,
        undo_ends=undo_ends,
        refused_by=refused_by,
        spaced=spaced,
        in_doubt=in_doubt,
        share_link=share.get("share_link"),
        share_subject=share.get("share_subject"),
        share_text=share.get("share_text"),
    )


@dataclass(frozen=True, slots=True)
class ConsentLine:
    """One consent on the dashboard."""

    id: str
    given_at: datetime
    recipients: int
    reminders: int
    locale: str
    revoked_at: datetime | None
    open_invitations: int


@dataclass(frozen=True, slots=True)
class Lines(Generic[T]):
    """A page of lines and the position after its last one, if more follow."""

    items: list[T]
    after: Position | None


def _before(column_at: Any, column_id: Any, before: Position | None) -> Any:
    if before is None:
        return None
    at, last_id = before
    return or_(column_at < at, and_(column_at == at, column_id < last_id))


def invitations_overview(
    ctx: Context,
    member_id: str,
    before: Position | None,
    limit: int,
    now: datetime | None = None,
) -> Lines[InvitationLine]:
    """The member's invitations, newest first, older than `before`; as of `now`, with the
    text of each they still have to send themselves (strict-eu). The page is read from
    `invitations` alone, then its consents by key (`member_id`, `id`): invitations live
    with their recipient, consents with their member (docs/scaling.md), and a join of the
    two would reshuffle rows across shards."""
    query = select(invitations).where(invitations.c.member_id == member_id)
    older = _before(invitations.c.created_at, invitations.c.id, before)
    if older is not None:
        query = query.where(older)
    query = query.order_by(invitations.c.created_at.desc(), invitations.c.id.desc())
    with ctx.engine.connect() as connection:
        check_member(connection, member_id)
        found = connection.execute(query.limit(limit + 1)).all()
        page = found[:limit]
        items = _lines(ctx, connection, member_id, page, now)
    after = (page[-1].created_at, page[-1].id) if len(found) > limit and page else None
    return Lines(items, after)


def invitation_lines(ctx: Context, member_id: str, ids: list[str]) -> dict[str, InvitationLine]:
    """The dashboard lines of these invitations of the member, as they stand now (a page
    showing an earlier answer again must not show a withdrawn invitation as leaving)."""
    with ctx.engine.connect() as connection:
        rows = connection.execute(
            select(invitations).where(
                invitations.c.member_id == member_id, invitations.c.id.in_(sorted(set(ids)))
            )
        ).all()
        return {line.id: line for line in _lines(ctx, connection, member_id, rows)}


def _lines(
    ctx: Context,
    connection: Connection,
    member_id: str,
    page: Sequence[Any],
    now: datetime | None = None,
) -> list[InvitationLine]:
    """The lines of these invitation rows: their consents, emails, contacts and refusals
    read by key; as of `now`, the texts their member still sends themselves."""
    ids = [row.id for row in page]
    given_at: dict[str, datetime] = {
        consent.id: consent.given_at
        for consent in connection.execute(
            select(consents.c.id, consents.c.given_at).where(
                consents.c.member_id == member_id,
                consents.c.id.in_(sorted({row.consent_id for row in page})),
            )
        )
    }
    leaving: dict[str, datetime] = {
        row[0]: row[1]
        for row in connection.execute(
            select(messages.c.invitation_id, func.min(messages.c.scheduled_at))
            .where(
                messages.c.invitation_id.in_(ids),
                messages.c.state == MessageState.SCHEDULED.value,
            )
            .group_by(messages.c.invitation_id)
        )
    }
    # The member's own contacts of the recipients of open invitations, by key. Only
    # open ones: a closed invitation reads "address no longer kept" whatever closed it.
    # Every stop and suppression deletes the contact, so an open invitation to someone
    # unavailable reads alike whichever of them it was (invariant 11).
    still_open = {s.value for s in OPEN_INVITATION_STATES}
    own: dict[str, Any] = {
        contact.recipient_digest: contact
        for contact in connection.execute(
            select(contacts.c.recipient_digest, contacts.c.address, contacts.c.display_name).where(
                contacts.c.member_id == member_id,
                contacts.c.recipient_digest.in_(
                    sorted({row.recipient_digest for row in page if row.state in still_open})
                ),
            )
        )
    }
    refused: dict[str, str] = {}
    for decided in connection.execute(
        select(decisions.c.invitation_id, decisions.c.verdicts)
        .where(decisions.c.invitation_id.in_(ids), decisions.c.outcome == Outcome.DENY.value)
        .order_by(decisions.c.id)
    ):
        # As the member may see them: an opt-out and a bounce are one "unavailable".
        denying = [v["rule"] for v in public_verdicts(decided.verdicts) if v["outcome"] == "deny"]
        if denying:
            refused[decided.invitation_id] = denying[0]
    doubtful = in_doubt_now(connection, ids)
    shares = open_shares(ctx, connection, page, now) if now is not None else {}
    window = ctx.settings.policy.undo_window
    return [
        _line(
            row,
            leaving.get(row.id),
            given_at[row.consent_id] + window,
            refused.get(row.id),
            own.get(row.recipient_digest) if row.state in still_open else None,
            row.id in doubtful,
            shares.get(row.id, {}),
        )
        for row in page
    ]


def consents_overview(
    ctx: Context, member_id: str, before: Position | None, limit: int
) -> Lines[ConsentLine]:
    """The member's consents, newest first, older than `before`, with how many people each
    names and how many of its invitations are still open."""
    query = select(*CONSENT_FACTS).where(consents.c.member_id == member_id)
    older = _before(consents.c.given_at, consents.c.id, before)
    if older is not None:
        query = query.where(older)
    query = query.order_by(consents.c.given_at.desc(), consents.c.id.desc()).limit(limit + 1)
    with ctx.engine.connect() as connection:
        found = connection.execute(query).all()
        page = found[:limit]
        ids = [row.id for row in page]
        named: dict[str, int] = {
            row[0]: int(row[1])
            for row in connection.execute(
                select(consent_recipients.c.consent_id, func.count())
                .where(consent_recipients.c.consent_id.in_(ids))
                .group_by(consent_recipients.c.consent_id)
            )
        }
        still_open: dict[str, int] = {
            row[0]: int(row[1])
            for row in connection.execute(
                select(invitations.c.consent_id, func.count())
                .where(
                    invitations.c.consent_id.in_(ids),
                    invitations.c.state.in_([s.value for s in OPEN_INVITATION_STATES]),
                )
                .group_by(invitations.c.consent_id)
            )
        }
    items = [
        ConsentLine(
            id=row.id,
            given_at=row.given_at,
            recipients=named.get(row.id, 0),
            reminders=row.reminders,
            locale=row.locale,
            revoked_at=row.revoked_at,
            open_invitations=still_open.get(row.id, 0),
        )
        for row in page
    ]
    after = (page[-1].given_at, page[-1].id) if len(found) > limit and page else None
    return Lines(items, after)
