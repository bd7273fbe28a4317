"""The lease a worker holds on the messages it claimed, and its renewal while they are out.

A claimed message is `sending` until its lease runs out; then any worker's pass takes it
for abandoned and makes it `unknown` (invariant 8: it may have left, a person decides). A
live worker must therefore never let a lease run out: a slow server (replies just under the
client's timeout) can keep one batch out for longer than any fixed lease. While a batch is
with the SMTP transport, a thread renews its leases every third of the lease, as of the
pass's clock moved on by the time really elapsed (a `--now` pass renews in its own time).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import bindparam, update

from courtois.domain.messages import MessageState
from courtois.services.context import Context
from courtois.store.tables import messages

LEASE = timedelta(minutes=5)
# Ids per statement: well under every engine's limit on bound parameters.
_CHUNK = 500
_RENEW = (
    update(messages)
    .where(
        messages.c.id.in_(bindparam("b_ids", expanding=True)),
        messages.c.state == MessageState.SENDING.value,
    )
    .values(lease_until=bindparam("b_until", type_=messages.c.lease_until.type))
)


@contextmanager
def renewed(ctx: Context, ids: Sequence[str], now: datetime) -> Iterator[None]:
    """Keep the leases of these claimed messages alive until the block ends."""
    if not ids:
        yield
        return
    stop = threading.Event()
    started = time.monotonic()
    every = (LEASE / 3).total_seconds()

    def renew() -> None:
        while not stop.wait(every):
            at = now + timedelta(seconds=time.monotonic() - started)
            with ctx.unit_of_work(at) as uow:
                for start in range(0, len(ids), _CHUNK):
                    chunk = list(ids[start : start + _CHUNK])
                    uow.conn.execute(_RENEW, {"b_ids": chunk, "b_until": at + LEASE})
                uow.commit()

    thread = threading.Thread(target=renew, name="courtois-lease", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
