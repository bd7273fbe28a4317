"""The ledger's health for the admin pages: the whole chain checked, and how long it took
(a long ledger takes a while, and the admin should know what the answer cost)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Text, select, type_coerce

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
    report = verify_ledger(ctx.engine)
    seconds = time.perf_counter() - started
    broken = None
    if report.first_broken_seq is not None:
        # Read raw: the broken entry may be the one whose payload is no longer JSON, which
        # the column's own type would fail to decode.
        with ctx.engine.connect() as connection:
            row = connection.execute(
                select(
                    ledger.c.seq,
                    ledger.c.at,
                    ledger.c.event,
                    type_coerce(ledger.c.payload, Text).label("payload"),
                    ledger.c.prev_hash,
                    ledger.c.hash,
                ).where(ledger.c.seq == report.first_broken_seq)
            ).first()
        if row is not None:
            broken = LedgerEntry(
                row.seq, row.at, row.event, _payload(row.payload), row.prev_hash, row.hash
            )
    return LedgerStatus(report, seconds, broken)


def _payload(text: str | None) -> Mapping[str, Any]:
    """The stored payload, or what is left of it when it is not a JSON object."""
    try:
        payload = json.loads(text or "")
    except ValueError:
        return {"unreadable": (text or "")[:2000]}
    return payload if isinstance(payload, dict) else {"unreadable": (text or "")[:2000]}
