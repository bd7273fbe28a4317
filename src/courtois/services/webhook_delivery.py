"""deliver_webhooks: the outbox, posted to the platform, signed, retried, logged.

Delivery is at least once: an event is claimed (a committed lease) before it is posted and
marked as soon as its POST ends, so a crash in between posts it again once the lease runs
out; receivers dedupe by the body's `id` (signed, unlike the headers). A refusal or error
is retried after 30 seconds doubling to 6 hours, with jitter, and given up after 12
attempts (about 15 hours).
Every attempt is written to the delivery log, stamped with the time it was made.

Time is bounded twice, so that a slow receiver can neither hold the worker's email nor let
another worker take an event still being posted: each POST ends within `POST_DEADLINE`
(connect, send and response together), and one call starts no POST after `PHASE_BUDGET`
(what is left waits for the next pass). The lease outlives both together.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import and_, delete, or_, select, update

from courtois.config import webhook_target
from courtois.delivery.http_deadline import deadline, deadline_client
from courtois.services.context import Context
from courtois.services.webhooks import PENDING
from courtois.store.tables import webhook_deliveries, webhook_events
from courtois.webhook_signature import EVENT_HEADER, EVENT_ID_HEADER, HEADER, sign

DELIVERING = "delivering"
DELIVERED = "delivered"
FAILED = "failed"
DONE = (DELIVERED, FAILED)

BATCH = 100
LEASE = timedelta(minutes=2)
POST_DEADLINE = timedelta(seconds=10)
PHASE_BUDGET = timedelta(seconds=20)
RETRY_FIRST = timedelta(seconds=30)
RETRY_LONGEST = timedelta(hours=6)
MAX_ATTEMPTS = 12
RETENTION = timedelta(days=7)
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
# What is read of a receiver's answer: the log keeps only its status, so a huge answer is
# cut here rather than held in memory.
READ_LIMIT = 64 * 1024


@dataclass
class WebhookReport:
    """What one call did (counts only)."""

    delivered: int = 0
    retried: int = 0
    failed: int = 0
    postponed: int = 0
    purged: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    # What went wrong with the failed attempts ("HTTP 503", "ConnectError", the deadline),
    # counted: never the URL, which may carry a token.
    problems: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain form for JSON."""
        return dict(self.__dict__)


@dataclass(frozen=True, slots=True)
class _Attempt:
    event_id: str
    attempt: int
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def retry_delay(attempts: int, rng: random.Random) -> timedelta:
    """30 seconds doubling per attempt, capped at 6 hours, +/-20% so that a receiver coming
    back is not hit by every event at the same second."""
    base: timedelta = min(RETRY_FIRST * (2 ** max(attempts - 1, 0)), RETRY_LONGEST)
    factor: float = rng.uniform(0.8, 1.2)
    return base * factor


def webhook_client() -> httpx.Client:
    """The client the worker posts with: redirects not followed, every POST within
    `POST_DEADLINE` as a whole."""
    return deadline_client(timeout=TIMEOUT, follow_redirects=False)


def deliver_webhooks(
    ctx: Context, now: datetime, client: httpx.Client, rng: random.Random | None = None
) -> WebhookReport:
    """Post every event due at `now`, within the phase's budget; stop early when the
    receiver cannot be reached, so a dead receiver costs one attempt per pass, not one per
    event. Leases and the log are stamped with `now` moved on by the time spent here."""
    chance = rng or random.Random()  # noqa: S311 - retry jitter, not a secret
    started = time.monotonic()

    def clock() -> datetime:
        return now + timedelta(seconds=time.monotonic() - started)

    report = WebhookReport(purged=purge_webhook_events(ctx, now))
    target = webhook_target(ctx.settings)
    if target is None:
        return report
    url, secret = target
    budget = PHASE_BUDGET.total_seconds()
    while True:
        if time.monotonic() - started >= budget:
            return report
        batch = _claim(ctx, clock())
        if not batch:
            return report
        for index, (event_id, attempt, body, lease) in enumerate(batch):
            if time.monotonic() - started >= budget:
                _put_back(ctx, clock(), batch[index:], report)
                return report
            result = _post(client, url, secret, event_id, attempt, body)
            _record(ctx, clock(), result, lease, report, chance)
            if result.status_code is None:
                _put_back(ctx, clock(), batch[index + 1 :], report)
                return report


def deliver_due_webhooks(ctx: Context, now: datetime) -> WebhookReport:
    """The worker's call: deliver with a fresh client when webhooks are on, else only purge."""
    if webhook_target(ctx.settings) is None:
        return WebhookReport(purged=purge_webhook_events(ctx, now))
    with webhook_client() as client:
        return deliver_webhooks(ctx, now, client)


_Claimed = tuple[str, int, bytes, datetime]


def _claim(ctx: Context, now: datetime) -> list[_Claimed]:
    """Lease a batch of due events (or ones whose lease ran out) and commit the lease."""
    due = or_(
        and_(webhook_events.c.state == PENDING, webhook_events.c.next_attempt_at <= now),
        and_(webhook_events.c.state == DELIVERING, webhook_events.c.lease_until < now),
    )
    lease = now + LEASE
    with ctx.unit_of_work(now) as uow:
        rows = uow.conn.execute(
            select(webhook_events.c.id, webhook_events.c.attempts, webhook_events.c.payload)
            .where(due)
            .order_by(webhook_events.c.created_at, webhook_events.c.id)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        ).all()
        if rows:
            uow.conn.execute(
                update(webhook_events)
                .where(webhook_events.c.id.in_([r.id for r in rows]))
                .values(state=DELIVERING, lease_until=lease)
            )
        uow.commit()
    return [(r.id, int(r.attempts) + 1, _body(r.payload), lease) for r in rows]


def _body(payload: Any) -> bytes:
    """The bytes posted: the stored payload in canonical form, as it was written."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _post(
    client: httpx.Client, url: str, secret: str, event_id: str, attempt: int, body: bytes
) -> _Attempt:
    """One POST, whatever happens a result: an error (a URL that cannot be posted to, a
    connection refused, the deadline reached) is an attempt that failed, never an
    exception out of the pass, which would leave the event leased and stop the worker."""
    event_type = json.loads(body)["type"]
    # Signed with the wall clock, not the pass's `now`: freshness is the receiver's check.
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "courtois-webhooks/1",
        HEADER: sign(secret, body, int(time.time())),
        EVENT_HEADER: event_type,
        EVENT_ID_HEADER: event_id,
        "Courtois-Delivery-Attempt": str(attempt),
    }
    limit = POST_DEADLINE.total_seconds()
    started = time.perf_counter()

    def took() -> int:
        return int((time.perf_counter() - started) * 1000)

    try:
        with (
            deadline(limit),
            client.stream("POST", url, content=body, headers=headers, timeout=TIMEOUT) as response,
        ):
            _read_some(response.iter_raw)
    except httpx.TimeoutException as error:
        late = time.perf_counter() - started >= limit
        label = f"deadline of {limit:g} s reached" if late else type(error).__name__
        return _Attempt(event_id, attempt, None, label, took())
    except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, ValueError, OSError) as error:
        # ValueError covers the UnicodeError of a host IDNA cannot encode.
        return _Attempt(event_id, attempt, None, type(error).__name__[:200], took())
    refused = None if response.is_success else f"HTTP {response.status_code}"
    return _Attempt(event_id, attempt, response.status_code, refused, took())


def _read_some(chunks: Callable[[], Any]) -> None:
    """Read at most READ_LIMIT bytes of the answer; the rest is dropped with the
    connection."""
    read = 0
    for chunk in chunks():
        read += len(chunk)
        if read >= READ_LIMIT:
            return


def _record(
    ctx: Context,
    at: datetime,
    done: _Attempt,
    lease: datetime,
    report: WebhookReport,
    rng: random.Random,
) -> None:
    """The attempt into the log and onto its event, as soon as its POST ended (stamped
    `at`, when it ended); the event is changed only while this call's lease holds it."""
    values: dict[str, Any] = {"attempts": done.attempt, "lease_until": None}
    if done.ok:
        values.update(state=DELIVERED, delivered_at=at)
        report.delivered += 1
    elif done.attempt >= MAX_ATTEMPTS:
        values.update(state=FAILED)
        report.failed += 1
    else:
        values.update(state=PENDING, next_attempt_at=at + retry_delay(done.attempt, rng))
        report.retried += 1
    label = str(done.status_code or done.error)
    report.statuses[label] = report.statuses.get(label, 0) + 1
    if not done.ok:
        problem = done.error or "failed"
        report.problems[problem] = report.problems.get(problem, 0) + 1
    with ctx.unit_of_work(at) as uow:
        uow.conn.execute(
            update(webhook_events)
            .where(
                webhook_events.c.id == done.event_id,
                webhook_events.c.state == DELIVERING,
                webhook_events.c.lease_until == lease,
            )
            .values(**values)
        )
        uow.conn.execute(
            webhook_deliveries.insert(),
            {
                "event_id": done.event_id,
                "attempt": done.attempt,
                "attempted_at": at - timedelta(milliseconds=done.duration_ms),
                "status_code": done.status_code,
                "error": done.error,
                "duration_ms": done.duration_ms,
            },
        )
        uow.commit()


def _put_back(ctx: Context, now: datetime, left: list[_Claimed], report: WebhookReport) -> None:
    """Claimed events not attempted go back as they were, their attempt not counted."""
    if not left:
        return
    with ctx.unit_of_work(now) as uow:
        for event_id, _, _, lease in left:
            uow.conn.execute(
                update(webhook_events)
                .where(
                    webhook_events.c.id == event_id,
                    webhook_events.c.state == DELIVERING,
                    webhook_events.c.lease_until == lease,
                )
                .values(state=PENDING, lease_until=None)
            )
        uow.commit()
    report.postponed += len(left)


def purge_webhook_events(ctx: Context, now: datetime) -> int:
    """Events done with (delivered or given up) and their log go once older than the
    retention; one still to deliver is kept, however old, until it is delivered or given
    up: a receiver or a worker down for a week loses nothing."""
    cutoff = now - RETENTION
    old = and_(webhook_events.c.created_at < cutoff, webhook_events.c.state.in_(DONE))
    with ctx.unit_of_work(now) as uow:
        ids = select(webhook_events.c.id).where(old)
        uow.conn.execute(delete(webhook_deliveries).where(webhook_deliveries.c.event_id.in_(ids)))
        purged = uow.conn.execute(delete(webhook_events).where(old)).rowcount
        uow.commit()
    return int(purged)
