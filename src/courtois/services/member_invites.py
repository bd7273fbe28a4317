"""invite_chosen: the member pages' consent, sent as `invite` to the contacts chosen.

Once invited, the chosen contacts are unticked, so the next invitation starts again from
nobody (invariant 1); the invitations keep the addresses they need while they are open.
The page's idempotency key makes a double click or a reload return the first answer; a
form posted again after the member ticked people anew (the back button) replays that
answer and leaves the new ticks as they are, since they were not what it invited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from courtois.services.context import Context
from courtois.services.idempotency import invite_scope
from courtois.services.invitations import ConsentInput, Invited, InviteRequest, invite_once
from courtois.services.member_contacts import ContactRow, choose_contacts
from courtois.store.tables import idempotency_keys


@dataclass(frozen=True, slots=True)
class Consented:
    """What the member saw and agreed to on the preview page."""

    note: str
    locale: str
    reminders: int
    preview_hash: str
    consent: ConsentInput


def invite_chosen(
    ctx: Context,
    member_id: str,
    chosen: list[ContactRow],
    consented: Consented,
    now: datetime,
    key: str,
) -> Invited:
    """Invite the chosen contacts under this consent (refused as `invite` refuses: a stale
    preview or consent text is a Conflict), then untick them, unless the key's first
    answer is replayed."""
    invited = invite_once(
        ctx,
        InviteRequest(
            member_id=member_id,
            emails=tuple(row.email for row in chosen),
            note=consented.note,
            locale=consented.locale,
            reminders=consented.reminders,
            preview_hash=consented.preview_hash,
            consent=consented.consent,
        ),
        now,
        idempotency_key=key,
    )
    if not invited.replayed:
        choose_contacts(ctx, member_id, [row.id for row in chosen], [], now)
    return invited


def earlier_answer(ctx: Context, member_id: str, key: str) -> dict[str, Any] | None:
    """The answer `invite` gave this member's page key before, if it did (a reload)."""
    with ctx.engine.connect() as connection:
        row = connection.execute(
            select(idempotency_keys.c.response).where(
                idempotency_keys.c.scope == invite_scope(member_id), idempotency_keys.c.key == key
            )
        ).first()
    if row is None:
        return None
    answer: dict[str, Any] = row.response
    return answer
