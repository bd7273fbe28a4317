"""The ledger's health for the admin pages: the whole chain checked, and how long it took
(a long ledger takes a while, and the admin should know what the answer cost)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import select

from courtois.domain.ledger import ChainReport, LedgerEntry
from courtois.services.audit import verify_ledger
from courtois.services.context import Context
from courtois.store.tables import ledger


@dataclass(frozen=True)
class LedgerStatus:
    """The chain check's report, its duration, and the first entry that does not hold
    (None when the chain holds, or when the broken entry was cut away)."""

    report: ChainReport
    seconds: float
    broken: LedgerEntry | None


def check_ledger(ctx: Context) -> LedgerStatus:
    """Verify the whole chain now, as `courtois audit verify` does."""
    started = time.perf_counter()
    try:
        report = verify_ledger(ctx.engine)
    except ValueError:
        # An entry whose payload is not even JSON: edited by hand, so the chain is broken,
        # and the first bad entry cannot be told without reading the rows raw.
        report = ChainReport(False, 0, None, "an entry is not readable JSON")
    seconds = time.perf_counter() - started
    broken = None
    if report.first_broken_seq is not None:
        with ctx.engine.connect() as connection:
            row = connection.execute(
                select(ledger).where(ledger.c.seq == report.first_broken_seq)
            ).first()
        if row is not None:
            broken = LedgerEntry(row.seq, row.at, row.event, row.payload, row.prev_hash, row.hash)
    return LedgerStatus(report, seconds, broken)
