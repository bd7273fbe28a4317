"""deliver_webhooks: the outbox, posted to the platform, signed, retried, logged.

Delivery is at least once: an event is claimed (a committed lease) before it is posted and
marked afterwards, so a crash in between posts it again once the lease runs out; receivers
dedupe by `Courtois-Event-Id`. A refusal or error is retried after 30 seconds doubling to
6 hours, with jitter, and given up after 12 attempts (about 15 hours). Every
attempt is written to the delivery log.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import and_, delete, or_, select, update

from courtois.config import webhook_target
from courtois.services.context import Context
from courtois.services.webhooks import PENDING
from courtois.store.tables import webhook_deliveries, webhook_events
from courtois.webhook_signature import EVENT_HEADER, EVENT_ID_HEADER, HEADER, sign

DELIVERING = "delivering"
DELIVERED = "delivered"
FAILED = "failed"

BATCH = 100
LEASE = timedelta(minutes=2)
RETRY_FIRST = timedelta(seconds=30)
RETRY_LONGEST = timedelta(hours=6)
MAX_ATTEMPTS = 12
RETENTION = timedelta(days=7)
TIMEOUT = httpx.Timeout(10.0, connect=5.0)


@dataclass
class WebhookReport:
    """What one call did (counts only)."""

    delivered: int = 0
    retried: int = 0
    failed: int = 0
    postponed: int = 0
    purged: int = 0
    statuses: dict[str, int] = field(default_factory=dict)

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


def deliver_webhooks(
    ctx: Context, now: datetime, client: httpx.Client, rng: random.Random | None = None
) -> WebhookReport:
    """Post every event due at `now`; stop early when the receiver cannot be reached, so a
    dead receiver costs one timeout per pass, not one per event."""
    chance = rng or random.Random()  # noqa: S311 - retry jitter, not a secret
    report = WebhookReport(purged=purge_webhook_events(ctx, now))
    target = webhook_target(ctx.settings)
    if target is None:
        return report
    url, secret = target
    while True:
        batch = _claim(ctx, now)
        if not batch:
            return report
        attempts: list[_Attempt] = []
        unreachable = False
        for event_id, attempt, body in batch:
            if unreachable:
                break
            result = _post(client, url, secret, event_id, attempt, body)
            attempts.append(result)
            unreachable = result.status_code is None
        leftover = [event_id for event_id, _, _ in batch[len(attempts) :]]
        _record(ctx, now, attempts, leftover, report, chance)
        if unreachable:
            return report


def deliver_due_webhooks(ctx: Context, now: datetime) -> WebhookReport:
    """The worker's call: deliver with a fresh client when webhooks are on, else only purge."""
    if webhook_target(ctx.settings) is None:
        return WebhookReport(purged=purge_webhook_events(ctx, now))
    with httpx.Client(timeout=TIMEOUT, follow_redirects=False) as client:
        return deliver_webhooks(ctx, now, client)


def _claim(ctx: Context, now: datetime) -> list[tuple[str, int, bytes]]:
    """Lease a batch of due events (or ones whose lease ran out) and commit the lease."""
    due = or_(
        and_(webhook_events.c.state == PENDING, webhook_events.c.next_attempt_at <= now),
        and_(webhook_events.c.state == DELIVERING, webhook_events.c.lease_until < now),
    )
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
                .values(state=DELIVERING, lease_until=now + LEASE)
            )
        uow.commit()
    return [(r.id, int(r.attempts) + 1, _body(r.payload)) for r in rows]


def _body(payload: Any) -> bytes:
    """The bytes posted: the stored payload in canonical form, as it was written."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _post(
    client: httpx.Client, url: str, secret: str, event_id: str, attempt: int, body: bytes
) -> _Attempt:
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
    started = time.perf_counter()
    try:
        response = client.post(url, content=body, headers=headers, timeout=TIMEOUT)
    except httpx.HTTPError as error:
        took = int((time.perf_counter() - started) * 1000)
        return _Attempt(event_id, attempt, None, type(error).__name__[:200], took)
    took = int((time.perf_counter() - started) * 1000)
    refused = None if response.is_success else f"HTTP {response.status_code}"
    return _Attempt(event_id, attempt, response.status_code, refused, took)


def _record(
    ctx: Context,
    now: datetime,
    attempts: list[_Attempt],
    leftover: list[str],
    report: WebhookReport,
    rng: random.Random,
) -> None:
    """Each attempt into the log and onto its event; unattempted events go back as they
    were, their attempt not counted."""
    with ctx.unit_of_work(now) as uow:
        for done in attempts:
            values: dict[str, Any] = {"attempts": done.attempt, "lease_until": None}
            if done.ok:
                values.update(state=DELIVERED, delivered_at=now)
                report.delivered += 1
            elif done.attempt >= MAX_ATTEMPTS:
                values.update(state=FAILED)
                report.failed += 1
            else:
                values.update(state=PENDING, next_attempt_at=now + retry_delay(done.attempt, rng))
                report.retried += 1
            label = str(done.status_code or done.error)
            report.statuses[label] = report.statuses.get(label, 0) + 1
            uow.conn.execute(
                update(webhook_events).where(webhook_events.c.id == done.event_id).values(**values)
            )
        if attempts:
            uow.conn.execute(
                webhook_deliveries.insert(),
                [
                    {
                        "event_id": done.event_id,
                        "attempt": done.attempt,
                        "attempted_at": now,
                        "status_code": done.status_code,
                        "error": done.error,
                        "duration_ms": done.duration_ms,
                    }
                    for done in attempts
                ],
            )
        if leftover:
            uow.conn.execute(
                update(webhook_events)
                .where(webhook_events.c.id.in_(leftover))
                .values(state=PENDING, lease_until=None)
            )
            report.postponed += len(leftover)
        uow.commit()


def purge_webhook_events(ctx: Context, now: datetime) -> int:
    """Events and their log older than the retention go, whatever became of them."""
    cutoff = now - RETENTION
    with ctx.unit_of_work(now) as uow:
        old = select(webhook_events.c.id).where(webhook_events.c.created_at < cutoff)
        uow.conn.execute(delete(webhook_deliveries).where(webhook_deliveries.c.event_id.in_(old)))
        purged = uow.conn.execute(
            delete(webhook_events).where(webhook_events.c.created_at < cutoff)
        ).rowcount
        uow.commit()
    return int(purged)
