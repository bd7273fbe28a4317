"""import_contacts, select_contacts, delete_contacts: a member's address book.

Imported contacts start unselected (invariant 1) and are purged 24 hours after their
import, selected or not (invariant 10; `services/housekeeping`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, delete, select, update

from courtois.domain.addresses import ROLE_MAILBOX, is_role_mailbox, parse_address
from courtois.domain.contacts import ContactInput, ReadLimit, RecordProblem, search_key
from courtois.domain.errors import InvalidInput, NotFound
from courtois.domain.ledger import EventType
from courtois.domain.members import MAX_NAME_LENGTH
from courtois.services.context import Context
from courtois.services.locks import lock_member
from courtois.store.bulk import insert_rows
from courtois.store.tables import contacts, members, recipient_blocks, recipients
from courtois.store.wal import truncate_wal

# Different contacts one import may hold.
MAX_CONTACTS_PER_IMPORT = 100_000
# Records one import may read, repeats and rejected ones included: a Sent folder mails the
# same few people again and again, yet every record read is a note held in memory and
# listed in the answer (a million repeats took 330 MB more and a 59 MB answer; this many,
# 85 MB and 14 MB).
MAX_RECORDS_PER_IMPORT = 250_000

Note = dict[str, str]
Record = ContactInput | RecordProblem | ReadLimit


@dataclass
class ImportReport:
    """Every record accounted for: records = imported + duplicates + flagged + rejected.

    Each entry that is not imported names where it was in the source ("line 12", "card 3")
    and why, so the member can fix the file instead of wondering who went missing.
    """

    records: int = 0
    imported: int = 0
    duplicates: list[Note] = field(default_factory=list)
    flagged: list[Note] = field(default_factory=list)
    rejected: list[Note] = field(default_factory=list)
    # What the source held beyond what its reader's bounds let it read.
    limits: list[ReadLimit] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        """Plain form for JSON: the counts first, then the entries behind them."""
        return {
            "records": self.records,
            "imported": self.imported,
            "duplicates": len(self.duplicates),
            "flagged": len(self.flagged),
            "rejected": len(self.rejected),
            "duplicate_records": self.duplicates,
            "flagged_records": self.flagged,
            "rejected_records": self.rejected,
            "not_read": [
                {"where": cut.where, "read": cut.read, "total": cut.total, "reason": cut.sentence}
                for cut in self.limits
            ],
        }


def _clean_name(name: str) -> str:
    """Display names from address books: control characters become spaces, length bounded."""
    if not name.isprintable():  # rare: only then is each character looked at
        name = "".join(c if c.isprintable() else " " for c in name)
    return " ".join(name.split())[:MAX_NAME_LENGTH]


def _note(where: str, number: int, reason: str) -> Note:
    return {"where": where or f"record {number}", "reason": reason}


def import_contacts(
    ctx: Context,
    member_id: str,
    records: Iterable[Record],
    source: str,
    now: datetime,
) -> ImportReport:
    """Read and validate every record, then store the new ones unselected, in one transaction.

    The records are all read before the transaction opens: readers are lazy, and parsing a
    big file or waiting on a slow CardDAV or IMAP server inside it would hold SQLite's one
    write lock (or the member's row on PostgreSQL) for as long, and every unsubscribe with
    it (invariant 4). One transaction means a failed import changes nothing: a file that
    turns out to be too big or unreadable halfway leaves the address book as it was. The
    member's own address and addresses of existing members are flagged, not stored: nobody
    is invited to a platform they are on.
    """
    report = ImportReport()
    rows, places = _read_records(ctx, member_id, records, source, now, report)
    with ctx.unit_of_work(now) as uow:
        if not lock_member(uow.conn, member_id):
            raise NotFound(f"No member {member_id!r}.", {"member": member_id[:140]})
        existing: set[str] = set()
        member_digests: set[str] = set()
        stopped, joined = unavailable_recipients(uow.conn, member_id, list(rows))
        digests = list(rows)
        for start in range(0, len(digests), 500):
            chunk = digests[start : start + 500]
            existing.update(
                uow.conn.execute(
                    select(contacts.c.recipient_digest).where(
                        contacts.c.member_id == member_id, contacts.c.recipient_digest.in_(chunk)
                    )
                ).scalars()
            )
            member_digests.update(
                uow.conn.execute(
                    select(members.c.email_digest).where(members.c.email_digest.in_(chunk))
                ).scalars()
            )
        fresh = []
        for digest, row in rows.items():
            where = places[digest]
            if digest in stopped:
                # An opt-out or an erasure keeps only the digest: the address is not stored
                # again. Whether this person opted out, bounced or complained, the member
                # learns only that they are unavailable (invariants 4, 10, 11), as the
                # decision on an invitation would tell them: a bounced address stored again
                # while an opted-out one was not told the two apart. First, before "already
                # in your contacts": a contact left over from before the stop would tell it
                # apart too.
                report.flagged.append(_note(where, 0, "unavailable"))
            elif digest in existing:
                report.duplicates.append(_note(where, 0, "already in your contacts"))
            elif digest in member_digests or digest in joined:
                report.flagged.append(_note(where, 0, "already a member"))
            else:
                fresh.append(
                    {**row, "search_key": search_key(str(row["address"]), str(row["display_name"]))}
                )
        if fresh:
            insert_rows(uow.conn, contacts, fresh)
        report.imported = len(fresh)
        uow.record(
            EventType.CONTACTS_IMPORTED,
            {"member": member_id, "source": source[:40], "imported": report.imported},
        )
        uow.commit()
    return report


def _read_records(
    ctx: Context,
    member_id: str,
    records: Iterable[Record],
    source: str,
    now: datetime,
    report: ImportReport,
) -> tuple[dict[str, dict[str, object]], dict[str, str]]:
    """Every record read, checked and de-duplicated, with no transaction open: the rows to
    store keyed by digest, and where each was first found. Refused at once for a member
    who does not exist, before the source is read."""
    with ctx.engine.connect() as connection:
        own = connection.execute(
            select(members.c.email_digest).where(members.c.id == member_id)
        ).scalar_one_or_none()
    if own is None:
        raise NotFound(f"No member {member_id!r}.", {"member": member_id[:140]})
    rows: dict[str, dict[str, object]] = {}
    places: dict[str, str] = {}
    for record in records:
        if isinstance(record, ReadLimit):
            report.limits.append(record)
            continue
        report.records += 1
        number = report.records
        if number > MAX_RECORDS_PER_IMPORT:
            raise InvalidInput(
                f"An import reads at most {MAX_RECORDS_PER_IMPORT:,} records (addresses, "
                "repeats and unreadable entries together).",
                {"records": "too many"},
            )
        if isinstance(record, RecordProblem):
            report.rejected.append(_note(record.where, number, record.reason))
            continue
        where = record.where or f"record {number}"
        try:
            address = parse_address(record.email)
        except InvalidInput as error:
            report.rejected.append(_note(where, number, f"invalid address: {error.message}"))
            continue
        if is_role_mailbox(address):
            report.rejected.append(_note(where, number, ROLE_MAILBOX))
            continue
        digest = ctx.digest(address)
        if digest == own:
            report.flagged.append(_note(where, number, "your own address"))
            continue
        if digest in rows:
            report.duplicates.append(_note(where, number, f"duplicate of {places[digest]}"))
            continue
        if len(rows) == MAX_CONTACTS_PER_IMPORT:
            raise InvalidInput(
                f"An import holds at most {MAX_CONTACTS_PER_IMPORT:,} different contacts.",
                {"records": "too many"},
            )
        places[digest] = where
        rows[digest] = {
            "member_id": member_id,
            "recipient_digest": digest,
            "address": address.normalized,
            "display_name": _clean_name(record.name),
            "source": source[:40],
            "selected": False,
            "imported_at": now,
        }
    return rows, places


def unavailable_recipients(
    connection: Connection, member_id: str, digests: list[str]
) -> tuple[set[str], set[str]]:
    """Digests no invitation may reach: those stopped (opted out of everyone or of this
    member, forgotten, suppressed after a hard bounce or a complaint), and those that
    joined the platform."""
    stopped: set[str] = set()
    joined: set[str] = set()
    for start in range(0, len(digests), 500):
        chunk = digests[start : start + 500]
        for row in connection.execute(
            select(
                recipients.c.digest,
                (
                    recipients.c.unsubscribed_at.is_not(None)
                    | recipients.c.suppressed_at.is_not(None)
                ).label("stopped"),
            ).where(
                recipients.c.digest.in_(chunk),
                recipients.c.unsubscribed_at.is_not(None)
                | recipients.c.suppressed_at.is_not(None)
                | recipients.c.joined_at.is_not(None),
            )
        ):
            (stopped if row.stopped else joined).add(row.digest)
        stopped.update(
            connection.execute(
                select(recipient_blocks.c.recipient_digest).where(
                    recipient_blocks.c.recipient_digest.in_(chunk),
                    recipient_blocks.c.member_id == member_id,
                )
            ).scalars()
        )
    return stopped, joined - stopped


def select_contacts(
    ctx: Context, member_id: str, emails: Iterable[str], now: datetime, selected: bool = True
) -> int:
    """Mark the named contacts as chosen (or not): whom the member means to invite. Chosen
    or not, a contact goes 24 hours after its import (`housekeeping.purge_expired_data`)."""
    digests = [ctx.digest_email(e) for e in emails]
    with ctx.unit_of_work(now) as uow:
        if not lock_member(uow.conn, member_id):
            raise NotFound(f"No member {member_id!r}.", {"member": member_id[:140]})
        changed = uow.conn.execute(
            update(contacts)
            .where(contacts.c.member_id == member_id, contacts.c.recipient_digest.in_(digests))
            .values(selected=selected)
        ).rowcount
        uow.commit()
    return int(changed)


def delete_contacts(ctx: Context, member_id: str, now: datetime) -> int:
    """Delete everything the member imported (invariant 5). Like every erasure, it returns
    once SQLite's log is truncated: "deleted" means gone from the files, not only from the
    next read, while the old pages would otherwise wait in the log for the worker's pass."""
    with ctx.unit_of_work(now) as uow:
        if not lock_member(uow.conn, member_id):
            raise NotFound(f"No member {member_id!r}.", {"member": member_id[:140]})
        deleted = uow.conn.execute(delete(contacts).where(contacts.c.member_id == member_id))
        uow.record(EventType.CONTACTS_DELETED, {"member": member_id, "count": deleted.rowcount})
        uow.commit()
    if deleted.rowcount:
        truncate_wal(ctx.engine)
    return int(deleted.rowcount)


def list_contacts(ctx: Context, member_id: str) -> list[dict[str, object]]:
    """The member's contacts, for the member."""
    with ctx.engine.connect() as connection:
        rows = connection.execute(
            select(contacts).where(contacts.c.member_id == member_id).order_by(contacts.c.id)
        ).all()
    return [
        {
            "id": r.id,
            "email": r.address,
            "name": r.display_name,
            "source": r.source,
            "selected": r.selected,
        }
        for r in rows
    ]
