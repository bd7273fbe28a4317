"""One transaction, with the ledger entries it records appended at commit.

Ledger entries are buffered and chained at commit, after every other lock, so the head row
(the one lock every writer shares) is held for the shortest time and always taken last:
a fixed lock order (members, recipients, ledger head) rules out deadlocks between writers.
On PostgreSQL the chaining itself happens inside COMMIT, by a trigger (migration 0009):
the entries go in as one unchained row, and the head is locked with no round trip to this
process in between; on SQLite, whose writers take turns anyway, they are chained here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextlib import ExitStack
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from courtois.domain.ledger import canonical_payload, canonical_prefix, hash_canonical
from courtois.store.bulk import insert_rows
from courtois.store.engine import DURABLE_OPTION, WRITE_OPTION, writer_turn
from courtois.store.tables import ledger, ledger_head, ledger_pending

# Every writing transaction reads and moves the head: the statements are built once.
_HEAD = select(ledger_head.c.seq, ledger_head.c.hash).where(ledger_head.c.id == 1).with_for_update()
_MOVE_HEAD = update(ledger_head).where(ledger_head.c.id == 1)
_PENDING = insert(ledger_pending)


class UnitOfWork:
    """`with ctx.unit_of_work(now) as uow: ...; uow.commit()`; anything else rolls back."""

    def __init__(
        self, engine: Engine, now: datetime, *, durable: bool = False, webhooks: bool = False
    ) -> None:
        self.engine = engine
        self.now = now.astimezone(UTC)
        self.durable = durable
        # Whether webhook events are written: only with a receiver configured.
        self.webhooks = webhooks
        self._pending: list[tuple[str, dict[str, Any]]] = []
        self._connection: Connection | None = None
        self._turn = ExitStack()
        self.committed = False

    @property
    def conn(self) -> Connection:
        """The open connection (inside the `with` block only)."""
        if self._connection is None:
            raise RuntimeError("the unit of work is not open")
        return self._connection

    def __enter__(self) -> UnitOfWork:
        options = {WRITE_OPTION: True, DURABLE_OPTION: self.durable}
        with ExitStack() as stack:
            # This process's writers take turns before SQLite's lock (store/engine.py).
            stack.enter_context(writer_turn(self.engine))
            self._connection = self.engine.connect().execution_options(**options)
            self._connection.begin()
            self._turn = stack.pop_all()  # held until __exit__
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection = self.conn
        try:
            if not self.committed:
                connection.rollback()
        finally:
            try:
                connection.close()
            finally:
                self._connection = None
                self._turn.close()

    def record(self, event: str, payload: Mapping[str, Any]) -> None:
        """Queue a ledger entry; it is written with the change, in the same transaction."""
        self._pending.append((event, dict(payload)))

    def commit(self) -> None:
        """Chain the queued ledger entries onto the head, then commit everything at once."""
        if self._pending:
            if self.conn.dialect.name == "postgresql":
                self._chain_at_commit()
            else:
                self._append_ledger()
        self.conn.commit()
        self.committed = True
        # SQLite's lock went with the COMMIT: the next writer may go, even while this block
        # goes on (some use cases start another unit of work once this one is committed).
        self._turn.close()

    def _chain_at_commit(self) -> None:
        """PostgreSQL: the entries as one `ledger_pending` row, which the trigger chains
        onto the head inside this transaction's COMMIT, exactly as `_append_ledger` would."""
        entries = []
        for event, payload in self._pending:
            payload_json = canonical_payload(payload)
            entries.append([event, canonical_prefix(self.now, event, payload_json), payload_json])
        text = json.dumps(entries, ensure_ascii=False, separators=(",", ":"))
        self.conn.execute(_PENDING, {"at": self.now, "entries": text})
        self._pending.clear()

    def _append_ledger(self) -> None:
        head = self.conn.execute(_HEAD).one()
        seq, prev = int(head.seq), str(head.hash)
        rows = []
        for event, payload in self._pending:
            seq += 1
            payload_json = canonical_payload(payload)
            digest = hash_canonical(prev, seq, self.now, event, payload_json)
            rows.append(
                {
                    "seq": seq,
                    "at": self.now,
                    "event": event,
                    "payload": payload_json,
                    "prev_hash": prev,
                    "hash": digest,
                }
            )
            prev = digest
        insert_rows(self.conn, ledger, rows)
        self.conn.execute(_MOVE_HEAD, {"seq": seq, "hash": prev})
        self._pending.clear()
