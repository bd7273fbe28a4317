"""Idempotency keys: a repeated request with the same key gets the first answer back.

The answer is stored in the same transaction as the change it describes, so a crash can
never leave a change without its answer or an answer without its change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select

from courtois.domain.errors import Conflict
from courtois.store.tables import idempotency_keys, idempotency_subjects

MAX_KEY_LENGTH = 200
# Run on every keyed invitation: built once, run with parameters dicts.
_FIND = select(idempotency_keys.c.request_hash, idempotency_keys.c.response).where(
    idempotency_keys.c.scope == bindparam("b_scope"), idempotency_keys.c.key == bindparam("b_key")
)
_STORE = idempotency_keys.insert()
_STORE_SUBJECTS = idempotency_subjects.insert()


def invite_scope(member_id: str) -> str:
    """Where `invite` keeps its answers to one member's keys, whether the member pages or
    the host API gave the key: stopping mail from one member scrubs that scope only."""
    return f"invite:{member_id}"


def api_scope(method: str, path: str) -> str:
    """Where the host API keeps its answers to keys sent with `method` on `path`: keys are
    per route and resource, so the same key on two paths names two requests."""
    scope = f"{_API} {method} {path}"
    if len(scope) <= 200:
        return scope
    return f"{_API} {method} sha256:{hashlib.sha256(path.encode()).hexdigest()}"


def api_scopes_under(path: str) -> str:
    """A LIKE pattern (escape character `\\`) for the scopes of every method on every path
    under `path`: erasing a member drops the answers of the routes under theirs."""
    escaped = path.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{_API} % {escaped}/%"


_API = "api"


def request_hash(payload: Any) -> str:
    """A stable hash of the request, to tell a true repeat from a reused key."""
    body = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Found:
    """A stored answer, and whether the request matched the fingerprint an earlier release
    wrote (`find_answer`'s `earlier`) rather than this release's."""

    answer: dict[str, Any]
    by_earlier_fingerprint: bool = False


def find_answer(
    connection: Connection, scope: str, key: str, payload_hash: str, earlier: str | None = None
) -> Found | None:
    """The stored answer for this key, or None; a key reused for another request is refused.
    `earlier` is the request's fingerprint as an earlier release computed it, for the
    answers it stored (kept a day) when this release fingerprints more of the request."""
    if len(key) > MAX_KEY_LENGTH or not key:
        raise Conflict("An Idempotency-Key is 1 to 200 characters.", {"key": "bad length"})
    row = connection.execute(_FIND, {"b_scope": scope, "b_key": key}).first()
    if row is None:
        return None
    answer: dict[str, Any] = row.response
    if row.request_hash == payload_hash:
        return Found(answer)
    if earlier is not None and row.request_hash == earlier:
        return Found(answer, by_earlier_fingerprint=True)
    raise Conflict("This Idempotency-Key was already used for a different request.", {"key": key})


def store_answer(
    connection: Connection,
    scope: str,
    key: str,
    payload_hash: str,
    response: dict[str, Any],
    now: datetime,
    subjects: Iterable[str] = (),
) -> None:
    """Keep the answer beside the change, indexed by the recipients it quotes (`subjects`,
    their digests) so that forgetting one of them finds it without reading every answer."""
    connection.execute(
        _STORE,
        {
            "scope": scope,
            "key": key,
            "request_hash": payload_hash,
            "response": response,
            "created_at": now,
        },
    )
    rows = [
        {"recipient_digest": digest, "scope": scope, "key": key, "created_at": now}
        for digest in sorted(set(subjects))
    ]
    if rows:
        connection.execute(_STORE_SUBJECTS, rows)
