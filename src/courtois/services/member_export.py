"""export_member: everything held about and for one member (an access request, a move).

The member's record, their contacts, consents (each with the words the member previewed
and consented to, as kept to be sent), invitations with every email and decision (as the
member may see them: never why a recipient is unavailable, nor that an email of theirs was
a digest carrying other members' invitations, invariant 11), and the ledger entries that
name them. Recipients appear by the address the member gave while an invitation is open,
by digest afterwards.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from courtois.delivery import consented_words
from courtois.domain.errors import NotFound
from courtois.domain.ledger import EventType
from courtois.domain.messages import kind_as_member_sees
from courtois.policy.config import PolicyConfig
from courtois.services.context import Context
from courtois.services.decisions import member_verdicts
from courtois.services.listings import (
    consent_row,
    invitation_summary,
    planned_at,
    public_verdicts,
    stored_verdict,
)
from courtois.store.bulk import among, chunked
from courtois.store.tables import (
    CONSENT_FACTS,
    complaints,
    consent_recipients,
    consents,
    contacts,
    decisions,
    invitations,
    ledger,
    members,
    messages,
)


def export_member(ctx: Context, member_id: str, now: datetime) -> dict[str, Any]:
    """Everything about the member, read in one transaction (one snapshot on PostgreSQL
    too, so the parts agree with each other)."""
    with ctx.engine.connect() as opened:
        connection = opened
        if opened.dialect.name == "postgresql":
            connection = opened.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            return _export(connection, member_id, now, ctx.settings.policy)


def _export(
    connection: Connection, member_id: str, now: datetime, policy: PolicyConfig
) -> dict[str, Any]:
    member = connection.execute(
        select(members).where(members.c.id == member_id, members.c.erased_at.is_(None))
    ).first()
    if member is None:  # never was, or was erased: nothing is held about them to hand over
        raise NotFound("No such member.")
    contact_rows = connection.execute(
        select(contacts).where(contacts.c.member_id == member_id).order_by(contacts.c.id)
    ).all()
    consent_rows = connection.execute(
        select(*CONSENT_FACTS, consents.c.words)
        .where(consents.c.member_id == member_id)
        .order_by(consents.c.given_at)
    ).all()
    named = _named_counts(connection, [c.id for c in consent_rows])
    invitation_rows = connection.execute(
        select(invitations)
        .where(invitations.c.member_id == member_id)
        .order_by(invitations.c.created_at, invitations.c.id)
    ).all()
    message_rows = connection.execute(
        select(messages)
        .where(messages.c.member_id == member_id)
        .order_by(messages.c.created_at, messages.c.id)
    ).all()
    decision_rows = connection.execute(
        select(decisions).where(decisions.c.member_id == member_id).order_by(decisions.c.id)
    ).all()
    complaint_count = connection.execute(
        select(func.count()).select_from(complaints).where(complaints.c.member_id == member_id)
    ).scalar_one()
    entries = _ledger_entries(connection, member_id)
    by_consent: dict[str, list[str]] = defaultdict(list)
    mails: dict[str, list[dict[str, Any]]] = defaultdict(list)
    decided: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for invitation in invitation_rows:
        by_consent[invitation.consent_id].append(invitation.id)
    for message in message_rows:
        mails[message.invitation_id].append(
            {
                "id": message.id,
                "kind": kind_as_member_sees(message.kind),
                "status": message.state,
                "scheduled_at": planned_at(message, policy),
                "sent_at": message.sent_at,
                "attempts": message.attempts,
            }
        )
    for decision in decision_rows:
        decided[decision.invitation_id or ""].append(
            {
                "stage": decision.stage,
                "kind": decision.kind,
                "message_id": decision.message_id,
                **stored_verdict(decision.outcome, decision.verdicts),
                "decided_at": decision.decided_at,
                "verdicts": public_verdicts(decision.verdicts),
            }
        )
    return {
        "exported_at": now,
        "member": {
            "id": member.id,
            "email": member.email,
            "name": member.name,
            "locale": member.locale,
            "reply_to": member.reply_to,
            "created_at": member.created_at,
            "updated_at": member.updated_at,
        },
        "contacts": [
            {
                "id": c.id,
                "email": c.address,
                "name": c.display_name,
                "source": c.source,
                "selected": c.selected,
                "imported_at": c.imported_at,
            }
            for c in contact_rows
        ],
        "consents": [
            {
                **consent_row(c, int(named.get(c.id, 0)), by_consent.get(c.id, [])),
                "previewed": _previewed(c.words),
            }
            for c in consent_rows
        ],
        "invitations": [
            {
                **invitation_summary(i, [m["status"] for m in mails.get(i.id, [])]),
                "messages": mails.get(i.id, []),
                "decisions": decided.get(i.id, []),
            }
            for i in invitation_rows
        ],
        "complaints": int(complaint_count),
        "ledger": entries,
    }


def _previewed(stored: str | None) -> dict[str, Any] | None:
    """The words kept with a consent, as the member previewed them (each recipient's own
    links as placeholders); None when none are kept."""
    words = consented_words.read(stored)
    if words is None:
        return None
    return {
        "name": words.name,
        "invitation": asdict(words.invitation),
        "reminder": None if words.reminder is None else asdict(words.reminder),
    }


def _named_counts(connection: Connection, consent_ids: list[str]) -> dict[str, int]:
    """How many people each consent names, by consent id. Counted by the ids already read
    rather than joined to `consents`: consent_recipients live with their recipient and
    consents with their member (docs/scaling.md), so a join would reshuffle rows across
    shards, while `consent_id` leads consent_recipients' primary key on every shard."""
    named: dict[str, int] = {}
    for chunk in chunked(connection, consent_ids):
        named.update(
            (str(row[0]), int(row[1]))
            for row in connection.execute(
                select(consent_recipients.c.consent_id, func.count())
                .where(among(connection, consent_recipients.c.consent_id, chunk))
                .group_by(consent_recipients.c.consent_id)
            )
        )
    return named


def _ledger_entries(connection: Connection, member_id: str) -> list[dict[str, Any]]:
    """Ledger entries whose payload names the member. Payloads are canonical JSON (sorted
    keys, no spaces), so the member field reads exactly `"member":"<id>"`; LIKE's own
    wildcards in the id are escaped, and each candidate is checked once decoded."""
    needle = '"member":"' + member_id + '"'
    pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = connection.execute(
        select(ledger)
        .where(ledger.c.seq > 0, ledger.c.payload.like(pattern, escape="\\"))
        .order_by(ledger.c.seq)
    ).all()
    entries = []
    for r in rows:
        if not isinstance(r.payload, dict) or r.payload.get("member") != member_id:
            continue
        payload = _as_the_member_sees(r.event, r.payload)
        if payload is None:
            continue
        # No hash: a redacted entry's is that of the full entry, and the next entries'
        # chain on it, so with two hashes and what lies between a member could try each
        # hidden reason in turn until one matched (which admins' `courtois audit export`
        # and `verify` keep). `seq` names the entry in the platform's audit.
        entry = {"seq": r.seq, "at": r.at, "event": r.event, "payload": payload}
        if payload != r.payload:
            entry["redacted"] = True
        entries.append(entry)
    return entries


def _as_the_member_sees(event: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    """A ledger payload as its member may read it (invariant 11): a decision without the
    reasons kept for admins, its rules as the member sees verdicts (an opt-out and a bounce
    one "recipient-available"); a suppression is none of theirs (who complained about them
    is not told, only how many, in `complaints`)."""
    if event == EventType.SUPPRESSED.value:
        return None
    if event != EventType.DECISION.value:
        return payload
    rules = payload.get("rules", {})
    shown = member_verdicts((rule, outcome, "") for rule, outcome in rules.items())
    kept = {key: value for key, value in payload.items() if key not in ("rules", "reasons")}
    return {**kept, "rules": {v["rule"]: v["outcome"] for v in shown}}
