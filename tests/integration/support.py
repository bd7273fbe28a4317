"""Helpers for the integration tests: members, consented invitations, raw row reads.

Everything here drives the public use cases; the row readers look at raw storage so a test
can see what was really written, not what a use case says it wrote.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, Table, func, select, update

from conftest import T0
from courtois.delivery.transport import MemoryTransport
from courtois.domain.addresses import parse_address
from courtois.policy.chain import CHAIN
from courtois.services.context import Context
from courtois.services.decisions import expand_verdicts
from courtois.services.housekeeping import expire_leases
from courtois.services.invitations import ConsentInput, InviteRequest, invite
from courtois.services.members import register_member
from courtois.services.previews import preview_invitations
from courtois.services.worker import run_pass
from courtois.store.tables import (
    consent_recipients,
    consents,
    contacts,
    decisions,
    idempotency_keys,
    invitations,
    ledger,
    members,
    messages,
    recipient_blocks,
    recipients,
)

__all__ = ["T0"]

RULE_CODES = [rule.code for rule in CHAIN]
# What a member is shown: the two rules that would say why a recipient cannot be reached
# (opted out, bounced) as one verdict where the first of them stands (invariant 11).
MEMBER_RULE_CODES = [
    "recipient-available" if code == "not-unsubscribed" else code
    for code in RULE_CODES
    if code != "not-suppressed"
]
WRITTEN_BY_INVITE = (
    consents,
    consent_recipients,
    invitations,
    messages,
    decisions,
    idempotency_keys,
    recipients,
    ledger,
)
EVERY_TABLE = (
    members,
    contacts,
    consents,
    consent_recipients,
    invitations,
    messages,
    decisions,
    recipients,
    recipient_blocks,
    idempotency_keys,
    ledger,
)


def add_members(ctx: Context, now: datetime = T0) -> None:
    """Ana and Bruno, members of the platform."""
    register_member(ctx, "ana", "ana@example.com", "Ana", "en", now)
    register_member(ctx, "bruno", "bruno@example.com", "Bruno", "en", now)


def distinct(emails: tuple[str, ...] | list[str]) -> int:
    """How many people these addresses name (case and spacing folded)."""
    return len({parse_address(e).key for e in emails})


def request_for(
    ctx: Context,
    member_id: str,
    emails: list[str],
    *,
    reminders: int = 0,
    note: str = "",
    locale: str | None = None,
) -> InviteRequest:
    """The request a member sends after previewing, consenting to the text shown."""
    preview = preview_invitations(ctx, member_id, distinct(emails), note, locale, reminders)
    return InviteRequest(
        member_id=member_id,
        emails=tuple(emails),
        note=note,
        locale=locale,
        reminders=reminders,
        preview_hash=preview.preview_hash,
        consent=ConsentInput(preview.consent_text, "192.0.2.7", "pytest"),
    )


def send_invites(
    ctx: Context,
    member_id: str,
    emails: list[str],
    now: datetime,
    *,
    reminders: int = 0,
    note: str = "",
    key: str | None = None,
) -> dict[str, Any]:
    """Preview, consent and invite in one go; returns the use case's answer."""
    request = request_for(ctx, member_id, emails, reminders=reminders, note=note)
    return invite(ctx, request, now, idempotency_key=key)


def without_kept_words(ctx: Context) -> None:
    """Every consent as one given before schema 0017, which kept only the hash of the words
    previewed: its emails are rendered again before they leave."""
    with ctx.engine.begin() as connection:
        connection.execute(update(consents).values(words=None))


def mailed_before(ctx: Context, email: str, now: datetime, member: str = "zed") -> None:
    """Another member's invitation to `email`, sent a month before `now`: a bounce or a
    complaint about that address is then applied (one about mail we never sent is not)."""
    then = now - timedelta(days=31)
    register_member(ctx, member, f"{member}@members.example", "Zed", "en", then)
    invite(ctx, request_for(ctx, member, [email]), then)
    run_pass(ctx, then + timedelta(minutes=11), MemoryTransport())


def nothing_more_leaves(ctx: Context) -> None:
    """Worker passes past a reminder's day and the expiry hand nothing to SMTP."""
    transport = MemoryTransport()
    for days in (1, 15, 31, 45):
        run_pass(ctx, T0 + timedelta(days=days), transport)
    assert transport.sent == []


def left_in_doubt(ctx: Context, invitation_id: str, now: datetime) -> str:
    """The invitation's waiting email as a worker killed mid-send leaves it: claimed
    (`sending`, its lease run out by `now`), then `unknown` when the next pass finds the
    lease gone (invariant 8). Returns the email's id."""
    with ctx.engine.begin() as connection:
        (message_id,) = connection.execute(
            update(messages)
            .where(messages.c.invitation_id == invitation_id, messages.c.state == "scheduled")
            .values(state="sending", attempts=1, lease_until=now - timedelta(seconds=1))
            .returning(messages.c.id)
        ).scalars()
    assert expire_leases(ctx, now) == 1
    return str(message_id)


def by_email(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The answer's invitations keyed by lower-cased address."""
    return {item["email"].lower(): item for item in answer["invitations"]}


def count(ctx: Context, table: Table, where: ColumnElement[bool] | None = None) -> int:
    """Rows in a table, optionally filtered."""
    query = select(func.count()).select_from(table)
    if where is not None:
        query = query.where(where)
    with ctx.engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def counts(ctx: Context, tables: tuple[Table, ...] = WRITTEN_BY_INVITE) -> dict[str, int]:
    """Row counts of several tables, to show that nothing was written."""
    return {table.name: count(ctx, table) for table in tables}


def rows(ctx: Context, table: Table, where: ColumnElement[bool] | None = None) -> list[Row[Any]]:
    """Every row of a table, optionally filtered."""
    query = select(table)
    if where is not None:
        query = query.where(where)
    with ctx.engine.connect() as connection:
        return list(connection.execute(query).all())


def verdicts_of(ctx: Context, invitation_id: str) -> list[list[dict[str, object]]]:
    """The stored verdict lists of every decision about one invitation, oldest first."""
    found = rows(ctx, decisions, decisions.c.invitation_id == invitation_id)
    return [expand_verdicts(r.verdicts) for r in sorted(found, key=lambda r: r.id)]


def invitation(ctx: Context, invitation_id: str) -> Row[Any]:
    """One invitation row."""
    (row,) = rows(ctx, invitations, invitations.c.id == invitation_id)
    return row


def messages_of(ctx: Context, invitation_id: str) -> list[Row[Any]]:
    """Every message of one invitation, oldest first."""
    found = rows(ctx, messages, messages.c.invitation_id == invitation_id)
    return sorted(found, key=lambda r: (r.created_at, r.kind))


def ledger_events(ctx: Context) -> list[tuple[str, dict[str, Any]]]:
    """The ledger's (event, payload) pairs in order."""
    with ctx.engine.connect() as connection:
        found = connection.execute(
            select(ledger.c.event, ledger.c.payload).order_by(ledger.c.seq)
        ).all()
    return [(r.event, dict(r.payload)) for r in found]


def all_stored_text(ctx: Context) -> str:
    """Every value of every table as text, lower-cased, to search for an address."""
    parts = []
    with ctx.engine.connect() as connection:
        for table in EVERY_TABLE:
            for row in connection.execute(select(table)):
                parts.append(repr(tuple(row)))
    return "\n".join(parts).lower()
