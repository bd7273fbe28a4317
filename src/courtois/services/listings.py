"""Read models for the host API: pages of contacts and invitations, one invitation with
every decision, one consent. Reads only; each page is one indexed range query.

Decisions are shown as a member may see them (invariant 11): every rule and outcome, with
the member-facing reason, never why a recipient is unavailable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select

from courtois.domain.errors import NotFound
from courtois.domain.messages import MessageKind, MessageState, standing
from courtois.policy.config import PolicyConfig
from courtois.services.context import Context
from courtois.services.decisions import (
    expand_verdicts,
    member_verdicts,
    stored_refusals,
    verdict_of,
)
from courtois.services.shared_texts import open_shares
from courtois.store.sql import comparable_text
from courtois.store.tables import (
    CONSENT_FACTS,
    consent_recipients,
    consents,
    contacts,
    decisions,
    invitations,
    members,
    messages,
)


@dataclass(frozen=True, slots=True)
class Slice:
    """One page of rows and whether more follow."""

    items: list[dict[str, Any]]
    more: bool


def check_member(connection: Connection, member_id: str) -> None:
    """NotFound unless the member exists (an erased member does not)."""
    found = connection.execute(
        select(members.c.id).where(members.c.id == member_id, members.c.erased_at.is_(None))
    ).first()
    if found is None:
        raise NotFound("No such member.")


def contacts_page(ctx: Context, member_id: str, after: int | None, limit: int) -> Slice:
    """The member's contacts in import order, after contact id `after`."""
    query = select(contacts).where(contacts.c.member_id == member_id)
    if after is not None:
        query = query.where(contacts.c.id > after)
    with ctx.engine.connect() as connection:
        check_member(connection, member_id)
        found = connection.execute(query.order_by(contacts.c.id).limit(limit + 1)).all()
    items = [
        {
            "id": r.id,
            "email": r.address,
            "name": r.display_name,
            "source": r.source,
            "selected": r.selected,
            "imported_at": r.imported_at,
        }
        for r in found[:limit]
    ]
    return Slice(items, len(found) > limit)


def invitation_summary(row: Any, emails: Sequence[str]) -> dict[str, Any]:
    """An invitations-table row in the API's words, with where its emails (their states,
    oldest first) stand: `unknown` says the delivery is in doubt, which the invitation's
    own state (still `scheduled`, or `sent` for a reminder) cannot say."""
    shown = standing([MessageState(state) for state in emails])
    return {
        "id": row.id,
        "consent_id": row.consent_id,
        "email": row.address,
        "recipient_digest": row.recipient_digest,
        "status": row.state,
        "message_status": shown.value if shown is not None else None,
        "locale": row.locale,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "sent_at": row.sent_at,
        "answered_at": row.answered_at,
        "expires_at": row.expires_at,
    }


def invitations_page(
    ctx: Context,
    member_id: str,
    before: tuple[datetime, str] | None,
    limit: int,
    states: Sequence[str] = (),
) -> Slice:
    """The member's invitations, newest first, older than the position `before`."""
    query = select(invitations).where(invitations.c.member_id == member_id)
    if states:
        query = query.where(invitations.c.state.in_(list(states)))
    if before is not None:
        at, last_id = before
        query = query.where(
            or_(
                invitations.c.created_at < at,
                and_(invitations.c.created_at == at, invitations.c.id < last_id),
            )
        )
    query = query.order_by(invitations.c.created_at.desc(), invitations.c.id.desc())
    with ctx.engine.connect() as connection:
        check_member(connection, member_id)
        found = connection.execute(query.limit(limit + 1)).all()
        page = found[:limit]
        emails = email_states(connection, [r.id for r in page])
    items = [invitation_summary(r, emails.get(r.id, [])) for r in page]
    return Slice(items, len(found) > limit)


def email_states(connection: Connection, invitation_ids: list[str]) -> dict[str, list[str]]:
    """The states of each of these invitations' emails, oldest first, read by the
    invitations' ids (a page's, bounded by its limit)."""
    found: dict[str, list[str]] = {}
    if not invitation_ids:
        return found
    for invitation_id, state in connection.execute(
        select(messages.c.invitation_id, messages.c.state)
        .where(messages.c.invitation_id.in_(invitation_ids))
        .order_by(messages.c.created_at, messages.c.id)
    ):
        found.setdefault(invitation_id, []).append(state)
    return found


def public_verdicts(stored: list[list[str]]) -> list[dict[str, str]]:
    """Stored verdicts as a member may see them: what `invite` answered."""
    return member_verdicts(
        (v["rule"], v["outcome"], v.get("public_reason", "")) for v in expand_verdicts(stored)
    )


def stored_verdict(outcome: str, stored: list[list[str]]) -> dict[str, Any]:
    """A stored decision's `allowed` and `outcome`, as `invite` answered them
    (`verdict_of`)."""
    return verdict_of(outcome, stored_refusals(stored))


def planned_at(message: Any, policy: PolicyConfig) -> datetime | None:
    """When a message leaves or was to leave, as the member may read it: an email held
    back past its own time (the undo window's end, or its reminder's day) waited for the
    recipient's quota, or for the day the recipient picked; that day would tell the member
    when someone else's email reached that person, or the recipient's own choice. It stays
    unsaid whatever became of the email: sent later (its own `sent_at` says when), or
    cancelled before its day came (withdrawn, refused, expired)."""
    at: datetime = message.scheduled_at
    own = policy.reminder_interval if message.kind == MessageKind.REMINDER.value else None
    due: datetime = message.created_at + (own or policy.undo_window)
    return at if at <= due + _SLACK else None


# A decision stamps its message a moment after the message was made.
_SLACK = timedelta(minutes=1)


def invitation_detail(
    ctx: Context, invitation_id: str, now: datetime | None = None
) -> dict[str, Any]:
    """One invitation, its messages (when each leaves as its member may read it, as
    `planned_at` says) and every decision taken about it, oldest first; as of `now`, the
    link, subject and text of a strict-eu invitation its member sends themselves, while it
    is open (`open_shares`), so that they are not lost with the POST's answer."""
    if not comparable_text(invitation_id):
        raise NotFound("No such invitation.")
    with ctx.engine.connect() as connection:
        row = connection.execute(
            select(invitations).where(invitations.c.id == invitation_id)
        ).first()
        if row is None:
            raise NotFound("No such invitation.")
        sent = connection.execute(
            select(messages)
            .where(messages.c.invitation_id == invitation_id)
            .order_by(messages.c.created_at, messages.c.id)
        ).all()
        taken = connection.execute(
            select(decisions)
            .where(decisions.c.invitation_id == invitation_id)
            .order_by(decisions.c.id)
        ).all()
        shares = open_shares(ctx, connection, [row], now) if now is not None else {}
    return {
        **invitation_summary(row, [m.state for m in sent]),
        "member_id": row.member_id,
        "messages": [
            {
                "id": m.id,
                "kind": m.kind,
                "status": m.state,
                "scheduled_at": planned_at(m, ctx.settings.policy),
                "sent_at": m.sent_at,
                "attempts": m.attempts,
            }
            for m in sent
        ],
        "decisions": [
            {
                "stage": d.stage,
                "kind": d.kind,
                "message_id": d.message_id,
                **stored_verdict(d.outcome, d.verdicts),
                "decided_at": d.decided_at,
                "verdicts": public_verdicts(d.verdicts),
            }
            for d in taken
        ],
        **shares.get(row.id, {}),
    }


def consent_detail(ctx: Context, consent_id: str) -> dict[str, Any]:
    """One consent: what the member agreed to, when, from where, for how many."""
    if not comparable_text(consent_id):
        raise NotFound("No such consent.")
    with ctx.engine.connect() as connection:
        row = connection.execute(select(*CONSENT_FACTS).where(consents.c.id == consent_id)).first()
        if row is None:
            raise NotFound("No such consent.")
        recipients = connection.execute(
            select(func.count())
            .select_from(consent_recipients)
            .where(consent_recipients.c.consent_id == consent_id)
        ).scalar_one()
        ids = connection.execute(
            select(invitations.c.id)
            .where(invitations.c.consent_id == consent_id)
            .order_by(invitations.c.id)
        ).scalars()
        invitation_ids = list(ids)
    return consent_row(row, int(recipients), invitation_ids)


def consent_row(row: Any, recipients: int, invitation_ids: list[str]) -> dict[str, Any]:
    """A consents-table row in the API's words."""
    return {
        "id": row.id,
        "member_id": row.member_id,
        "kind": row.kind,
        "preview_hash": row.preview_hash,
        "reminders": row.reminders,
        "locale": row.locale,
        "note": row.note,
        "text_shown": row.text_shown,
        "ip": row.ip,
        "user_agent": row.user_agent,
        "given_at": row.given_at,
        "revoked_at": row.revoked_at,
        "recipients": recipients,
        "invitation_ids": invitation_ids,
    }
