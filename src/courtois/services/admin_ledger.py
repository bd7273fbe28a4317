"""The ledger's health for the admin pages: the whole chain checked, and how long it took
(a long ledger takes a while, and the admin should know what the answer cost)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from courtois.domain.ledger import ChainReport
from courtois.services.audit import RAW_ENTRIES, UnreadableEntry, read_at, verify_ledger
from courtois.services.context import Context
from courtois.store.tables import ledger

# Enough of a tampered column to recognise it; a row changed by hand may hold anything.
SHOWN = 200


@dataclass(frozen=True)
class BrokenEntry:
    """The first entry that does not hold, each column as stored: a row changed outside
    the application may hold anything in any column, and the page shows it, never fails on
    it. `at` is None when the stored time is not a date (`stored_at` says what it is)."""

    seq: int
    at: datetime | None
    stored_at: str
    event: str
    hash: str


@dataclass(frozen=True)
class LedgerStatus:
    """The chain check's report, its duration, and the first entry that does not hold
    (None when the chain holds, or when the broken entry was cut away)."""

    report: ChainReport
    seconds: float
    broken: BrokenEntry | None


def check_ledger(ctx: Context) -> LedgerStatus:
    """Verify the whole chain now, as `courtois audit verify` does."""
    started = time.perf_counter()
    report = verify_ledger(ctx.engine)
    seconds = time.perf_counter() - started
    broken = None
    if report.first_broken_seq is not None:
        # Read raw, as the check does: the broken entry may be the one whose time is not a
        # date or whose payload is not JSON, which the columns' own types would fail on.
        with ctx.engine.connect() as connection:
            row = connection.execute(
                RAW_ENTRIES.where(ledger.c.seq == report.first_broken_seq)
            ).first()
        if row is not None:
            broken = BrokenEntry(
                row.seq, _date(row.seq, row.at), _text(row.at), _text(row.event), _text(row.hash)
            )
    return LedgerStatus(report, seconds, broken)


def _date(seq: int, stored: object) -> datetime | None:
    """The stored time, or None when it is not a date."""
    try:
        return read_at(seq, stored)
    except UnreadableEntry:
        return None


def _text(stored: object) -> str:
    """A stored column as text to show: text as is, bytes in hexadecimal, a time in ISO
    form, anything else as Python writes it; cut to what identifies it."""
    if stored is None:
        return ""
    if isinstance(stored, datetime):
        return stored.isoformat()
    if isinstance(stored, bytes | bytearray | memoryview):
        return bytes(stored).hex()[:SHOWN]
    return str(stored)[:SHOWN]
