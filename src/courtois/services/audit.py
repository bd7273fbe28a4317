"""audit verify and audit export: the ledger as evidence (invariant 11)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import TextIO

from sqlalchemy import Engine, select

from courtois.domain.ledger import ChainReport, LedgerEntry, verify_chain
from courtois.store.tables import ledger, ledger_head

PAGE = 5000


def iter_entries(engine: Engine) -> Iterator[LedgerEntry]:
    """Every entry in order, read page by page so memory stays flat on long ledgers."""
    last = 0
    with engine.connect() as connection:
        while True:
            rows = connection.execute(
                select(ledger).where(ledger.c.seq > last).order_by(ledger.c.seq).limit(PAGE)
            ).all()
            if not rows:
                return
            for r in rows:
                yield LedgerEntry(r.seq, r.at, r.event, r.payload, r.prev_hash, r.hash)
            last = rows[-1].seq


def verify_ledger(engine: Engine) -> ChainReport:
    """Recompute the chain from the first entry; name the first one that does not hold.

    The head row records the last sequence number and hash written, so entries cut from
    the end of the chain, which leave a shorter but consistent chain, are caught too.
    """
    report = verify_chain(iter_entries(engine))
    if not report.ok:
        return report
    with engine.connect() as connection:
        head = connection.execute(select(ledger_head.c.seq, ledger_head.c.hash)).one()
    if head.seq != report.entries or head.hash != report.last_hash:
        return replace(
            report,
            ok=False,
            first_broken_seq=report.entries + 1,
            problem=f"the head records {head.seq} entries; the chain stops at {report.entries}",
        )
    return report


def export_ledger(engine: Engine, out: TextIO) -> int:
    """Write the ledger as JSON Lines, one entry per line, exactly as hashed."""
    count = 0
    for entry in iter_entries(engine):
        line = {
            "seq": entry.seq,
            "at": entry.at.isoformat(),
            "event": entry.event,
            "payload": entry.payload,
            "prev_hash": entry.prev_hash,
            "hash": entry.hash,
        }
        out.write(json.dumps(line, sort_keys=True, ensure_ascii=False) + "\n")
        count += 1
    return count
