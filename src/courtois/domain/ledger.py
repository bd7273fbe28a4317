"""The audit ledger's entries and their hash chain (invariant 11).

Each entry carries the SHA-256 of the previous one; changing, removing or reordering any
entry breaks every hash after it, which `verify_chain` finds and names.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any

GENESIS_HASH = "0" * 64
# The `from` of an `unsubscribed` entry that stops mail from the whole platform (otherwise
# the member's id): written by the opt-out, read by the replay and by a restore.
FROM_EVERYONE = "everyone"


class EventType(StrEnum):
    """Everything the ledger records."""

    MEMBER_REGISTERED = "member.registered"
    MEMBER_ERASED = "member.erased"
    CONTACTS_IMPORTED = "contacts.imported"
    CONTACTS_DELETED = "contacts.deleted"
    CONSENT_GIVEN = "consent.given"
    CONSENT_REVOKED = "consent.revoked"
    DECISION = "decision"
    INVITATION_STATE = "invitation.state"
    MESSAGE_STATE = "message.state"
    UNSUBSCRIBED = "recipient.unsubscribed"
    JOINED = "recipient.joined"
    FORGOTTEN = "recipient.forgotten"
    SUPPRESSED = "recipient.suppressed"
    PURGED = "data.purged"


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One recorded fact. `payload` holds ids and digests, never an address."""

    seq: int
    at: datetime
    event: str
    payload: Mapping[str, Any]
    prev_hash: str
    hash: str


# json.dumps with options builds an encoder per call; every unit of work serialises many
# payloads, so one encoder with the same options is kept (its output is the same text).
_PAYLOAD_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_payload(payload: Mapping[str, Any]) -> str:
    """The payload as hashed and stored: sorted keys, no spaces, UTF-8 kept as is."""
    return _PAYLOAD_ENCODER.encode(payload)


def canonical(seq: int, at: datetime, event: str, payload: Mapping[str, Any]) -> bytes:
    """The exact bytes hashed: sorted keys, no spaces, ISO time; stable across engines."""
    return _canonical_text(seq, at, event, canonical_payload(payload)).encode()


def _canonical_text(seq: int, at: datetime, event: str, payload_json: str) -> str:
    # Byte for byte what json.dumps(sort_keys=True) gives for the whole entry, assembled
    # around the payload's own canonical text so the payload is serialised only once.
    return f"{canonical_prefix(at, event, payload_json)}{seq}}}"


def canonical_prefix(at: datetime, event: str, payload_json: str) -> str:
    """The canonical text up to the sequence number, which an entry gets only when it is
    chained: `hash_canonical` is SHA-256 over prev_hash + prefix + seq + "}", exactly what
    PostgreSQL's chaining trigger computes at COMMIT (migration 0009)."""
    return f'{_head(at, event)},"payload":{payload_json},"seq":'


@lru_cache(maxsize=256)
def _head(at: datetime, event: str) -> str:
    """The entry's opening `{"at":...,"event":...` (one unit of work stamps one instant)."""
    return json.dumps({"at": at.isoformat(), "event": event}, separators=(",", ":"))[:-1]


def entry_hash(
    prev_hash: str, seq: int, at: datetime, event: str, payload: Mapping[str, Any]
) -> str:
    """SHA-256 over the previous hash and this entry's canonical form."""
    return hash_canonical(prev_hash, seq, at, event, canonical_payload(payload))


def hash_canonical(prev_hash: str, seq: int, at: datetime, event: str, payload_json: str) -> str:
    """entry_hash for a payload already in canonical form."""
    digest = hashlib.sha256(prev_hash.encode("ascii"))
    digest.update(_canonical_text(seq, at, event, payload_json).encode())
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class ChainReport:
    """Result of verifying a chain: ok, how many entries, and the first broken one."""

    ok: bool
    entries: int
    first_broken_seq: int | None = None
    problem: str | None = None
    last_hash: str = GENESIS_HASH

    @property
    def refusal(self) -> str:
        """Why the chain cannot be trusted, in one line: its first broken entry, or (no
        entry named: an empty export) why nothing could be checked."""
        if self.first_broken_seq is None:
            return f"ledger not verified: {self.problem}"
        return f"ledger broken at entry {self.first_broken_seq}: {self.problem}"


def verify_chain(entries: Iterable[LedgerEntry]) -> ChainReport:
    """Recompute every hash in order and stop at the first entry that does not match."""
    prev = GENESIS_HASH
    expected_seq = 1
    count = 0
    for entry in entries:
        if entry.seq != expected_seq:
            return ChainReport(False, count, entry.seq, f"expected entry {expected_seq} here")
        if entry.prev_hash != prev:
            return ChainReport(False, count, entry.seq, "its previous-hash does not match")
        if entry_hash(prev, entry.seq, entry.at, entry.event, entry.payload) != entry.hash:
            return ChainReport(False, count, entry.seq, "its content does not match its hash")
        prev = entry.hash
        expected_seq += 1
        count += 1
    return ChainReport(True, count, last_hash=prev)
