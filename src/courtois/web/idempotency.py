"""Idempotency keys for every POST: a repeat with the same key and body gets the first
answer back and changes nothing.

The key is reserved in its own transaction before the use case runs and its answer stored
after, so a second request with the key finds either the answer or the reservation (and is
told to retry shortly) and never runs the use case twice. A reservation whose request died
is taken over after a minute. Invitations pass the key on to `invite`, which stores its
answer in the transaction of the change: that answer is the one replayed, so even a
request that died after inviting creates nothing twice, and this layer writes nothing
after it. Refusals (4xx) are answers too and are replayed; an unexpected error releases
the key.

Only a keyed HMAC of the body is kept, so a stored key does not reveal an address. The
only answers that quote recipients' addresses are `invite`'s, which that use case keeps
indexed by recipient, so "forget me" (and stopping everything) erases the address from
them, keeping the answer itself for repeats; this layer stores none of them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy import Connection, bindparam, delete, select, update

from courtois.domain.errors import DomainError
from courtois.services.context import Context
from courtois.services.idempotency import api_scope
from courtois.store.sql import insert_new
from courtois.store.tables import idempotency_keys
from courtois.web.problems import MEDIA_TYPE, Problem, body_of

LEASE = timedelta(minutes=1)
_PENDING = {"status": 0}

# Every statement of this layer is built once, with bound parameters: building and hashing
# a statement again for each request cost about as much CPU as running it.
_KEYS = idempotency_keys.c
_THIS_KEY = (_KEYS.scope == bindparam("b_scope")) & (_KEYS.key == bindparam("b_key"))
_FIND = (
    select(_KEYS.request_hash, _KEYS.response, _KEYS.created_at).where(_THIS_KEY).with_for_update()
)
_TAKE_OVER = (
    update(idempotency_keys)
    .where(_THIS_KEY)
    .values(created_at=bindparam("b_now", type_=_KEYS.created_at.type))
)
_FINISH = (
    update(idempotency_keys)
    .where(_THIS_KEY)
    .values(response=bindparam("b_response", type_=_KEYS.response.type))
)
_RELEASE = delete(idempotency_keys).where(_THIS_KEY)


@dataclass(frozen=True, slots=True)
class Answer:
    """What a request was answered: a status and a JSON body."""

    status: int
    body: Any
    replayed: bool = False


Kept = Callable[[Connection], "Answer | None"]


def fingerprint(ctx: Context, payload: Any) -> str:
    """A keyed hash of the request: tells a true repeat from a reused key, reveals nothing."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hmac.new(ctx.settings.secret, text.encode(), hashlib.sha256).hexdigest()


def run_once(
    ctx: Context,
    now: datetime,
    scope: str,
    key: str | None,
    payload: Any,
    action: Callable[[], Answer],
    kept: Kept | None = None,
) -> Answer:
    """Run `action` unless this key already has an answer. `kept` finds the answer where a
    use case that takes the key itself stored it with its change (`invite`): this layer
    then keeps only the request's fingerprint, and a success costs no second write."""
    if key is None:
        return action()
    request_hash = fingerprint(ctx, payload)
    stored = _reserve(ctx, now, scope, key, request_hash, kept)
    if stored is not None:
        return stored
    try:
        answer = action()
    except (DomainError, Problem) as refusal:
        status, body = body_of(refusal)
        _finish(ctx, now, scope, key, Answer(status, body))
        raise
    except BaseException:
        _release(ctx, now, scope, key)
        raise
    if kept is None:
        _finish(ctx, now, scope, key, answer)
    return answer


def _reserve(
    ctx: Context, now: datetime, scope: str, key: str, request_hash: str, kept: Kept | None
) -> Answer | None:
    """Take the key for this request, or return its stored answer."""
    this_key = {"b_scope": scope, "b_key": key}
    with ctx.unit_of_work(now) as uow:
        row = {
            "scope": scope,
            "key": key,
            "request_hash": request_hash,
            "response": _PENDING,
            "created_at": now,
        }
        if insert_new(uow.conn, idempotency_keys, row, "scope", "key"):
            uow.commit()
            return None
        found = uow.conn.execute(_FIND, this_key).one()
        if not hmac.compare_digest(found.request_hash, request_hash):
            raise Problem(
                409,
                "idempotency-key-reused",
                "This Idempotency-Key was already used for a different request.",
                {"Idempotency-Key": "used for a different request"},
            )
        stored = found.response
        if stored.get("status"):
            return Answer(int(stored["status"]), stored.get("body"), replayed=True)
        done = kept(uow.conn) if kept is not None else None
        if done is not None:
            return Answer(done.status, done.body, replayed=True)
        if found.created_at + LEASE > now:
            raise Problem(
                409,
                "idempotency-key-in-use",
                "A request with this Idempotency-Key is still being processed; retry shortly.",
                {"Idempotency-Key": "in use"},
                headers={"Retry-After": "1"},
            )
        # The request that reserved the key died without an answer: this one takes over.
        uow.conn.execute(_TAKE_OVER, {**this_key, "b_now": now})
        uow.commit()
    return None


def _finish(ctx: Context, now: datetime, scope: str, key: str, answer: Answer) -> None:
    response = {"status": answer.status, "body": answer.body}
    with ctx.unit_of_work(now) as uow:
        uow.conn.execute(_FINISH, {"b_scope": scope, "b_key": key, "b_response": response})
        uow.commit()


def _release(ctx: Context, now: datetime, scope: str, key: str) -> None:
    with ctx.unit_of_work(now) as uow:
        uow.conn.execute(_RELEASE, {"b_scope": scope, "b_key": key})
        uow.commit()


def respond(answer: Answer) -> JSONResponse:
    """The answer as sent: problems keep their media type, replays say they are replays."""
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    media_type = MEDIA_TYPE if answer.status >= 400 else "application/json"
    return JSONResponse(
        answer.body, status_code=answer.status, media_type=media_type, headers=headers
    )


def once(
    request: Request,
    ctx: Context,
    now: datetime,
    key: str | None,
    payload: Any,
    action: Callable[[], Answer],
    kept: Kept | None = None,
) -> JSONResponse:
    """`run_once` for a route: the scope is the request's method and path."""
    scope = api_scope(request.method, request.url.path)
    return respond(run_once(ctx, now, scope, key, payload, action, kept))
