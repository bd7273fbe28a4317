"""Ids of the rows courtois creates (consents, invitations, messages, webhook events):
UUIDs of version 7 (RFC 9562), whose first 48 bits are the Unix time in milliseconds.

Every table keyed by such an id also indexes it, and an invitation's id is indexed again
where its message and its decisions point to it. With random ids (version 4) each new row
lands on a random leaf of every one of those indexes, so a call inviting ten people
rewrote a hundred-odd scattered pages; ids that grow with time land on the rightmost leaf,
which is already in memory. Measured on SQLite, `invite()` of ten recipients: 15 to 20% less
CPU and time a call, a quarter less written to the write-ahead log.

What the time prefix reveals: when the row was made, to the millisecond. An invitation's id
travels in its links (the token carries it readable, signed, not encrypted), so a recipient
can read when the member invited them, which the `/why` page shows them anyway. The other
74 bits are random: ids are not guessable, and tokens, not ids, grant anything.
"""

from __future__ import annotations

import os
import time
import uuid

__all__ = ["new_id"]

_VERSION = 0x7
_VARIANT = 0b10


def new_id(now_ns: int | None = None) -> str:
    """A new UUIDv7 as text (36 characters, the columns' width), for the given instant in
    nanoseconds since the epoch (the clock's by default)."""
    millis = (time.time_ns() if now_ns is None else now_ns) // 1_000_000
    random = int.from_bytes(os.urandom(10), "big")
    rand_a = random >> 68  # 12 bits
    rand_b = random & ((1 << 62) - 1)  # 62 bits
    value = (
        (millis & ((1 << 48) - 1)) << 80 | _VERSION << 76 | rand_a << 64 | _VARIANT << 62 | rand_b
    )
    return str(uuid.UUID(int=value))
