"""The hash-chained ledger as stored (both engines): verify, export, tampering, no addresses."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy import text as sql
from support import T0, add_members, by_email, count, send_invites

from courtois.delivery.transport import MemoryTransport
from courtois.domain.contacts import ContactInput
from courtois.domain.ledger import GENESIS_HASH, entry_hash
from courtois.services import audit
from courtois.services.audit import export_ledger, iter_entries, verify_ledger
from courtois.services.contacts import delete_contacts, import_contacts, select_contacts
from courtois.services.context import Context
from courtois.services.lifecycle import revoke_consent, withdraw
from courtois.services.recipients import forget_recipient, mark_joined, unsubscribe
from courtois.services.worker import run_pass
from courtois.store.tables import ledger, ledger_head

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


def _last_seq(ctx: Context) -> int:
    with ctx.engine.connect() as connection:
        return int(connection.execute(select(func.max(ledger.c.seq))).scalar_one())


def _raw_insert(ctx: Context, **values: Any) -> None:
    """A row written past the application, as someone with the database file would."""
    with ctx.engine.begin() as connection:
        connection.execute(insert(ledger).values(**values))


@pytest.mark.parametrize("seq", [0, -1])
def test_an_entry_before_the_first_is_caught(ctx: Context, seq: int) -> None:
    run_flow(ctx)
    _raw_insert(
        ctx,
        seq=seq,
        at=T0,
        event="consent.given",
        payload={"consent": "forged"},
        prev_hash=GENESIS_HASH,
        hash="0" * 64,
    )
    report = verify_ledger(ctx.engine)
    assert (report.ok, report.first_broken_seq) == (False, seq)


def test_an_entry_appended_past_the_head_is_caught(ctx: Context) -> None:
    run_flow(ctx)
    last = _last_seq(ctx)
    _raw_insert(
        ctx,
        seq=last + 1,
        at=T0,
        event="consent.given",
        payload={"consent": "forged"},
        prev_hash="0" * 64,
        hash="1" * 64,
    )
    report = verify_ledger(ctx.engine)
    assert (report.ok, report.first_broken_seq) == (False, last + 1)
    assert "past the head" in str(report.problem)


def test_a_payload_that_is_not_json_is_named_not_raised(ctx: Context) -> None:
    run_flow(ctx)
    seq = _last_seq(ctx) // 2
    with ctx.engine.begin() as connection:
        connection.execute(
            sql("UPDATE ledger SET payload = :junk WHERE seq = :seq"),
            {"junk": "{not json", "seq": seq},
        )
    report = verify_ledger(ctx.engine)
    assert (report.ok, report.first_broken_seq, report.entries) == (False, seq, seq - 1)
    assert report.problem == "its payload is not JSON"


def test_a_missing_head_is_named_not_raised(ctx: Context) -> None:
    run_flow(ctx)
    with ctx.engine.begin() as connection:
        connection.execute(delete(ledger_head))
    report = verify_ledger(ctx.engine)
    assert (report.ok, report.problem) == (False, "the head row is missing")


def test_entries_committed_during_a_check_are_for_the_next_one(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A live system writes while the chain is read: the check covers the chain up to the
    head it read first, and does not call later commits a break."""
    run_flow(ctx)
    seen: list[int] = []

    def writing_meanwhile(engine: Any, upto: int | None = None) -> Any:
        for number, entry in enumerate(iter_entries(engine, upto)):
            if number == 0:
                unsubscribe(ctx, ctx.digest_email("late@example.org"), T0 + timedelta(days=9))
            seen.append(entry.seq)
            yield entry

    before = _last_seq(ctx)
    monkeypatch.setattr(audit, "iter_entries", writing_meanwhile)
    report = verify_ledger(ctx.engine)
    monkeypatch.undo()
    assert report.ok, report
    assert (report.entries, max(seen)) == (before, before)
    assert _last_seq(ctx) > before
    assert verify_ledger(ctx.engine).entries == _last_seq(ctx)


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


def test_an_export_verifies_on_its_own_and_names_what_was_changed(ctx: Context) -> None:
    run_flow(ctx)
    buffer = io.StringIO()
    export_ledger(ctx.engine, buffer)
    lines = buffer.getvalue().splitlines()
    live = verify_ledger(ctx.engine)
    handed = audit.verify_export(lines)
    assert handed.ok
    assert (handed.entries, handed.last_hash) == (live.entries, live.last_hash)

    entry = json.loads(lines[5])
    entry["payload"]["reason"] = "edited"
    edited = audit.verify_export([*lines[:5], json.dumps(entry), *lines[6:]])
    assert (edited.ok, edited.entries, edited.first_broken_seq) == (False, 5, 6)
    assert edited.problem == "its content does not match its hash"

    for bad in ("not json", "[]", json.dumps({**json.loads(lines[2]), "seq": "3"}), "{}"):
        broken = audit.verify_export([*lines[:2], bad, *lines[3:]])
        assert (broken.ok, broken.entries, broken.first_broken_seq) == (False, 2, 3), bad
        assert broken.problem == "line 3 is not a ledger entry"

    # Cutting the end leaves a chain that holds: only the live last hash shows the cut.
    shorter = audit.verify_export(lines[:-1])
    assert shorter.ok
    assert shorter.last_hash != live.last_hash


def test_an_export_stops_at_the_head_read_when_it_began(ctx: Context) -> None:
    """Entries whose head was not yet moved (a commit in flight) are for the next export."""
    run_flow(ctx)
    with ctx.engine.begin() as connection:
        head = connection.execute(select(ledger_head.c.seq)).scalar_one()
        connection.execute(update(ledger_head).values(seq=head - 2))
    assert [e["seq"] for e in exported(ctx)] == list(range(1, head - 1))
