"""audit verify and audit export: the ledger as evidence (invariant 11)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TextIO

from sqlalchemy import Engine, Text, func, select, type_coerce

from courtois.domain.errors import DomainError
from courtois.domain.ledger import ChainReport, LedgerEntry, verify_chain
from courtois.store.tables import ledger, ledger_head

PAGE = 5000


class UnreadableEntry(DomainError):
    """An entry that cannot even be read as one (a payload that is not JSON, a time that is
    not a date, a hash that is not text): tampered with outside the application. Named by
    its sequence number, so `audit verify`, `audit export` and `simulate` all point at it."""

    def __init__(self, seq: int, problem: str) -> None:
        super().__init__(f"ledger broken at entry {seq}: {problem}")
        self.seq = seq
        self.problem = problem


# Every column as stored, decoded here: a row whose text is not what the application
# writes is a broken entry to report, not an error inside the driver's row processing.
# The admin page reads the first broken entry with the same columns, for the same reason.
RAW_ENTRIES = select(
    ledger.c.seq,
    type_coerce(ledger.c.at, Text).label("at"),
    ledger.c.event,
    type_coerce(ledger.c.payload, Text).label("payload"),
    ledger.c.prev_hash,
    ledger.c.hash,
)
_ORDERED = RAW_ENTRIES.order_by(ledger.c.seq)


def read_at(seq: int, stored: object) -> datetime:
    """An entry's time as the application wrote it (naive UTC: a PostgreSQL timestamp, or
    SQLite's text), aware; anything else names the entry."""
    at: datetime | None = None
    if isinstance(stored, datetime):
        at = stored
    else:
        try:
            at = datetime.fromisoformat(stored) if isinstance(stored, str) else None
        except ValueError:
            at = None
    if at is None:
        raise UnreadableEntry(seq, "its time is not a date")
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def read_payload(seq: int, stored: object) -> Any:
    """An entry's payload decoded from its stored text; text that is not JSON names the
    entry."""
    try:
        if isinstance(stored, str):
            return json.loads(stored)
    except ValueError:
        pass
    raise UnreadableEntry(seq, "its payload is not JSON")


def iter_entries(engine: Engine, upto: int | None = None) -> Iterator[LedgerEntry]:
    """Every entry in order, from the lowest sequence number (so one below 1 is seen and
    refused), up to `upto` when given; read page by page so memory stays flat. An entry
    that cannot be read raises UnreadableEntry naming it."""
    last: int | None = None
    with engine.connect() as connection:
        while True:
            query = _ORDERED.limit(PAGE)
            if last is not None:
                query = query.where(ledger.c.seq > last)
            if upto is not None:
                query = query.where(ledger.c.seq <= upto)
            rows = connection.execute(query).all()
            if not rows:
                return
            for r in rows:
                at, payload = read_at(r.seq, r.at), read_payload(r.seq, r.payload)
                if not isinstance(r.event, str):
                    raise UnreadableEntry(r.seq, "its event is not text")
                if not isinstance(r.hash, str) or not isinstance(r.prev_hash, str):
                    raise UnreadableEntry(r.seq, "its hash is not text")
                yield LedgerEntry(r.seq, at, r.event, payload, r.prev_hash, r.hash)
            last = rows[-1].seq


def verify_ledger(engine: Engine) -> ChainReport:
    """Recompute the chain from the first entry; name the first one that does not hold.

    The head row records the last sequence number and hash written, so entries cut from
    the end of the chain, which leave a shorter but consistent chain, are caught too. The
    head is read first and the chain up to it: entries committed meanwhile (a live system)
    come after it and are for the next check, not a mismatch.
    """
    with engine.connect() as connection:
        head = connection.execute(select(ledger_head.c.seq, ledger_head.c.hash)).first()
    if head is None:
        return ChainReport(False, 0, 1, "the head row is missing")
    try:
        report = verify_chain(iter_entries(engine, upto=head.seq))
    except UnreadableEntry as unreadable:
        return ChainReport(False, max(unreadable.seq - 1, 0), unreadable.seq, unreadable.problem)
    if not report.ok:
        return report
    if head.seq != report.entries or head.hash != report.last_hash:
        return replace(
            report,
            ok=False,
            first_broken_seq=report.entries + 1,
            problem=f"the head records {head.seq} entries; the chain stops at {report.entries}",
        )
    # Every commit moves the head with its entries: an entry past the head, read together
    # with it, was put there some other way.
    with engine.connect() as connection:
        now_head, highest = connection.execute(
            select(ledger_head.c.seq, select(func.max(ledger.c.seq)).scalar_subquery())
        ).one()
    if highest is not None and highest > now_head:
        return replace(
            report,
            ok=False,
            first_broken_seq=now_head + 1,
            problem=f"entries past the head, which records {now_head}",
        )
    return report


def export_ledger(engine: Engine, out: TextIO) -> int:
    """Write the ledger as JSON Lines, one entry per line, exactly as hashed, up to the
    head as it stood when the export began (as `verify_ledger` reads it), so the export of
    a live system is one consistent chain whose last hash `audit verify` also reports."""
    with engine.connect() as connection:
        upto = connection.execute(select(ledger_head.c.seq)).scalar()
    count = 0
    for entry in iter_entries(engine, upto=upto):
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


EXPORT_FIELDS = frozenset({"seq", "at", "event", "payload", "prev_hash", "hash"})


def _exported_entry(line: str) -> LedgerEntry | None:
    """One line of an export as an entry, or None when it is not one."""
    try:
        item = json.loads(line)
        if not isinstance(item, dict) or set(item) != EXPORT_FIELDS:
            return None
        seq, at, event = item["seq"], datetime.fromisoformat(item["at"]), item["event"]
        payload, prev_hash, digest = item["payload"], item["prev_hash"], item["hash"]
    except (TypeError, ValueError):
        return None
    if (
        type(seq) is not int
        or not isinstance(event, str)
        or not isinstance(payload, dict)
        or not isinstance(prev_hash, str)
        or not isinstance(digest, str)
    ):
        return None
    return LedgerEntry(seq, at, event, payload, prev_hash, digest)


# An export with no entry proves nothing: the output of an `audit export > file` that
# failed is just as empty.
NO_ENTRY = "the file holds no ledger entry (an export that failed writes none)"


def verify_export(
    lines: Iterable[str], each: Callable[[LedgerEntry], None] | None = None
) -> ChainReport:
    """Recompute the chain of an `audit export` file, with no database: what a third party
    holding only the file can check. The chain shows that nothing inside it was changed,
    removed or reordered; that nothing was cut from its end shows only against a last hash
    taken from the live system (`audit verify` prints it), so publish or timestamp that.
    A file with no entry is not intact but unverified (`NO_ENTRY`, no entry named).

    `each` sees every entry as it is read, before the chain has been checked past it: a
    caller keeps what it saw only when the report is ok."""

    read = 0

    def entries() -> Iterator[LedgerEntry]:
        nonlocal read
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            entry = _exported_entry(line)
            if entry is None:
                raise UnreadableEntry(number, "not a ledger entry")
            read += 1
            if each is not None:
                each(entry)
            yield entry

    try:
        report = verify_chain(entries())
    except UnreadableEntry as unreadable:
        # verify_chain stops at the first bad entry, so every entry read before held.
        return ChainReport(False, read, read + 1, f"line {unreadable.seq} is not a ledger entry")
    if report.ok and report.entries == 0:
        return replace(report, ok=False, problem=NO_ENTRY)
    return report
