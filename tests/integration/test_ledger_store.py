"""The hash-chained ledger as stored (both engines): verify, export, tampering, no addresses."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update
from support import T0, add_members, by_email, count, send_invites

from courtois.delivery.transport import MemoryTransport
from courtois.domain.contacts import ContactInput
from courtois.domain.ledger import GENESIS_HASH, entry_hash
from courtois.services.audit import export_ledger, verify_ledger
from courtois.services.contacts import delete_contacts, import_contacts, select_contacts
from courtois.services.context import Context
from courtois.services.lifecycle import revoke_consent, withdraw
from courtois.services.recipients import forget_recipient, mark_joined, unsubscribe
from courtois.services.worker import run_pass
from courtois.store.tables import ledger

ADDRESSES = (
    "ana@example.com",
    "bruno@example.com",
    "bo@example.com",
    "cy@example.net",
    "dee@example.org",
    "Eve.Upper@Example.com",
    "fay@example.com",
)
EMAIL_LIKE = re.compile(r"[^\s\"'@]+@[^\s\"'@]+\.[a-z]{2,}", re.IGNORECASE)


def run_flow(ctx: Context) -> None:
    """Every kind of ledger entry the use cases write."""
    add_members(ctx)
    bo, cy, dee, eve, fay = ADDRESSES[2:]
    import_contacts(ctx, "ana", [ContactInput(a) for a in (bo, cy, dee, eve)], "csv", T0)
    import_contacts(ctx, "bruno", [ContactInput(dee, "Dee")], "vcard", T0)
    select_contacts(ctx, "ana", [bo, cy], T0)
    ana = by_email(send_invites(ctx, "ana", [bo, cy, dee], T0, reminders=1, key="k1"))
    bruno = send_invites(ctx, "bruno", [eve, fay], T0 + timedelta(minutes=1), note="Hi!")
    withdraw(ctx, ana[dee]["id"], T0 + timedelta(minutes=2))
    unsubscribe(ctx, ctx.digest_email(eve), T0 + timedelta(minutes=3), from_member="bruno")
    transport = MemoryTransport()
    run_pass(ctx, T0 + timedelta(minutes=11), transport)
    mark_joined(ctx, ctx.digest_email(bo), T0 + timedelta(hours=1))
    forget_recipient(ctx, ctx.digest_email(cy), T0 + timedelta(hours=2))
    revoke_consent(ctx, bruno["consent_id"], T0 + timedelta(hours=3))
    delete_contacts(ctx, "ana", T0 + timedelta(hours=4))
    run_pass(ctx, T0 + timedelta(days=40), transport)
    assert len(transport.sent) >= 3


def exported(ctx: Context) -> list[dict[str, Any]]:
    buffer = io.StringIO()
    written = export_ledger(ctx.engine, buffer)
    lines = buffer.getvalue().splitlines()
    assert written == len(lines)
    return [json.loads(line) for line in lines]


def test_the_ledger_of_a_whole_flow_verifies_and_exports_line_for_line(ctx: Context) -> None:
    run_flow(ctx)
    report = verify_ledger(ctx.engine)
    assert report.ok, report
    assert report.entries > 0
    assert report.entries == count(ctx, ledger)
    assert report.first_broken_seq is None

    entries = exported(ctx)
    assert len(entries) == report.entries
    events = {str(e["event"]) for e in entries}
    assert {
        "member.registered",
        "contacts.imported",
        "contacts.deleted",
        "consent.given",
        "consent.revoked",
        "decision",
        "invitation.state",
        "message.state",
        "recipient.unsubscribed",
        "recipient.joined",
        "recipient.forgotten",
        "data.purged",
    } <= events
    # The export is exactly what was hashed: anyone can recompute the chain from it alone.
    prev = GENESIS_HASH
    for number, entry in enumerate(entries, start=1):
        assert entry["seq"] == number
        assert entry["prev_hash"] == prev
        at = datetime.fromisoformat(str(entry["at"]))
        payload = entry["payload"]
        assert isinstance(payload, dict)
        assert entry_hash(prev, number, at, str(entry["event"]), payload) == entry["hash"]
        prev = str(entry["hash"])


def test_a_tampered_payload_is_named_by_its_seq(ctx: Context) -> None:
    run_flow(ctx)
    entries = exported(ctx)
    target = [e for e in entries if e["event"] == "decision"][-1]
    seq = int(target["seq"])
    assert seq > 1
    payload = dict(target["payload"])
    payload["outcome"] = "allow" if payload["outcome"] != "allow" else "deny"
    with ctx.engine.begin() as connection:
        connection.execute(update(ledger).where(ledger.c.seq == seq).values(payload=payload))

    report = verify_ledger(ctx.engine)
    assert not report.ok
    assert report.first_broken_seq == seq
    assert report.entries == seq - 1
    assert report.problem


def test_a_rewritten_chain_from_a_forged_entry_is_caught_by_the_next_one(ctx: Context) -> None:
    """Recomputing the forged entry's own hash does not help: the next entry points back at
    the original hash."""
    run_flow(ctx)
    entries = exported(ctx)
    target = entries[3]
    seq = int(target["seq"])
    payload = {**target["payload"], "member": "mallory"}
    at = datetime.fromisoformat(str(target["at"]))
    forged = entry_hash(str(target["prev_hash"]), seq, at, str(target["event"]), payload)
    with ctx.engine.begin() as connection:
        connection.execute(
            update(ledger).where(ledger.c.seq == seq).values(payload=payload, hash=forged)
        )
    report = verify_ledger(ctx.engine)
    assert not report.ok
    assert report.first_broken_seq == seq + 1


@pytest.mark.parametrize("where", ["middle", "last"])
def test_a_removed_entry_is_caught(ctx: Context, where: str) -> None:
    run_flow(ctx)
    with ctx.engine.connect() as connection:
        last = int(connection.execute(select(func.max(ledger.c.seq))).scalar_one())
    seq = last // 2 if where == "middle" else last
    with ctx.engine.begin() as connection:
        connection.execute(delete(ledger).where(ledger.c.seq == seq))
    report = verify_ledger(ctx.engine)
    assert not report.ok
    assert report.first_broken_seq == seq + (1 if where == "middle" else 0)


def test_no_ledger_payload_holds_an_email_address(ctx: Context) -> None:
    run_flow(ctx)
    with ctx.engine.connect() as connection:
        payloads = [
            json.dumps(p, ensure_ascii=False)
            for p in connection.execute(select(ledger.c.payload)).scalars()
        ]
    assert payloads
    for text in payloads:
        assert "@" not in text, text
        assert not EMAIL_LIKE.search(text), text
        for address in ADDRESSES:
            assert address.lower() not in text.lower()
            assert address.split("@")[0].lower() + "@" not in text.lower()
