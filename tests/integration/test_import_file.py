"""import_file: a whole export in one transaction, bounded in size, reported record by record."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select
from support import T0, add_members, count, counts

from courtois.domain.contacts import ContactInput
from courtois.domain.errors import InvalidInput
from courtois.services import contacts as contacts_service
from courtois.services.contacts import import_contacts
from courtois.services.context import Context
from courtois.services.imports import import_file
from courtois.store.tables import contacts, ledger

SAMPLES = Path(__file__).parent.parent / "data" / "imports"


def small_limit(ctx: Context, limit: int) -> Context:
    return replace(ctx, settings=replace(ctx.settings, import_max_bytes=limit))


def vcards(n: int) -> bytes:
    cards = (
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Person {i}\r\nEMAIL:p{i}@example.org\r\nEND:VCARD\r\n"
        for i in range(n)
    )
    return "".join(cards).encode()


def test_every_sample_imports_and_its_counts_add_up(ctx: Context) -> None:
    add_members(ctx)
    for sample in sorted(SAMPLES.glob("*")):
        if sample.name.endswith((".json", ".md")):
            continue
        with sample.open("rb") as stream:
            report = import_file(ctx, "ana", stream, T0, size=sample.stat().st_size)
        total = report.imported + len(report.duplicates) + len(report.flagged)
        assert total + len(report.rejected) == report.records, sample.name
        assert all(note["where"] and note["reason"] for note in report.rejected), sample.name
    assert count(ctx, contacts) > 20
    assert count(ctx, contacts, contacts.c.selected.is_(True)) == 0


def test_a_stream_of_unknown_length_past_the_limit_keeps_nothing(ctx: Context) -> None:
    add_members(ctx)
    before = counts(ctx, (contacts, ledger))
    data = vcards(2000)
    limited = small_limit(ctx, len(data) // 2)
    with pytest.raises(InvalidInput, match="bigger than"):
        import_file(limited, "ana", io.BytesIO(data), T0)  # no size: found out while reading
    assert counts(ctx, (contacts, ledger)) == before
    # The same stream under a limit it fits is imported whole.
    report = import_file(small_limit(ctx, len(data)), "ana", io.BytesIO(data), T0)
    assert report.imported == 2000


def test_a_known_size_past_the_limit_is_refused_before_reading(ctx: Context) -> None:
    add_members(ctx)

    class Unreadable(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, _buffer: object) -> int:
            raise AssertionError("read although the size was known to be too big")

    with pytest.raises(InvalidInput, match="bigger than"):
        import_file(small_limit(ctx, 10), "ana", Unreadable(), T0, size=11)  # type: ignore[arg-type]


def test_a_file_that_is_not_the_named_format_changes_nothing(ctx: Context) -> None:
    add_members(ctx)
    before = counts(ctx, (contacts, ledger))
    with pytest.raises(InvalidInput):
        import_file(ctx, "ana", io.BytesIO(vcards(3)), T0, file_format="ldif")
    assert counts(ctx, (contacts, ledger)) == before


def test_reimporting_reports_duplicates_with_where_they_were(ctx: Context) -> None:
    add_members(ctx)
    import_file(ctx, "ana", io.BytesIO(vcards(3)), T0)
    again = import_file(ctx, "ana", io.BytesIO(vcards(4)), T0)
    assert again.imported == 1
    assert [d["reason"] for d in again.duplicates] == ["already in your contacts"] * 3
    assert [d["where"] for d in again.duplicates] == ["card 1", "card 2", "card 3"]
    with ctx.engine.connect() as connection:
        names = connection.execute(select(contacts.c.display_name).order_by(contacts.c.id)).all()
    assert [n[0] for n in names] == ["Person 0", "Person 1", "Person 2", "Person 3"]


def test_the_contact_cap_counts_people_not_records(ctx: Context) -> None:
    """5,000 sent messages to the same 21 people: 105,000 records, 21 contacts, imported."""
    add_members(ctx)
    records = [
        ContactInput(f"friend{n % 21}@example.org", "", f"message {n // 21 + 1}")
        for n in range(105_000)
    ]

    report = import_contacts(ctx, "ana", records, "imap-sent", T0)

    assert (report.records, report.imported, len(report.duplicates)) == (105_000, 21, 104_979)
    assert count(ctx, contacts) == 21


def test_different_contacts_and_records_read_are_each_bounded(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lowered here: the real bounds are 100,000 contacts and 250,000 records."""
    monkeypatch.setattr(contacts_service, "MAX_CONTACTS_PER_IMPORT", 20)
    monkeypatch.setattr(contacts_service, "MAX_RECORDS_PER_IMPORT", 1_000)
    add_members(ctx)
    before = counts(ctx, (contacts, ledger))

    def people(n: int, among: int) -> list[ContactInput]:
        return [ContactInput(f"p{i % among}@example.org") for i in range(n)]

    with pytest.raises(InvalidInput, match="at most 20 different contacts"):
        import_contacts(ctx, "ana", people(21, 21), "file", T0)
    with pytest.raises(InvalidInput, match="reads at most 1,000 records"):
        import_contacts(ctx, "ana", people(1_001, 20), "file", T0)
    assert counts(ctx, (contacts, ledger)) == before
    assert import_contacts(ctx, "ana", people(1_000, 20), "file", T0).imported == 20
