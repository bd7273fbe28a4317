"""`webhook_log`: the webhook outbox and its delivery log as an admin reads them: whether
the platform's receiver gets the events, and what it answered to every attempt.

Events carry ids and digests, never an address; neither does this view. Only the newest
events are listed; the counts cover every event still kept (a week, `RETENTION`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from courtois.config import webhook_target
from courtois.services.context import Context
from courtois.store.tables import webhook_deliveries, webhook_events

LISTED = 100


@dataclass(frozen=True, slots=True)
class WebhookAttempt:
    """One post of an event, and what came back: a status, or why nothing did."""

    attempt: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


@dataclass(frozen=True, slots=True)
class WebhookEventLine:
    """One event of the outbox, with every attempt made to deliver it."""

    id: str
    type: str
    created_at: datetime
    state: str
    next_attempt_at: datetime
    delivered_at: datetime | None
    attempts: tuple[WebhookAttempt, ...]


@dataclass(frozen=True, slots=True)
class WebhookLog:
    """The outbox at a glance: on or off, how many events in each state, the newest."""

    enabled: bool
    by_state: dict[str, int]
    events: tuple[WebhookEventLine, ...]


def webhook_log(ctx: Context) -> WebhookLog:
    """Read-only: the counts by state and the newest events with their attempts."""
    with ctx.engine.connect() as connection:
        by_state = {
            str(state): int(n)
            for state, n in connection.execute(
                select(webhook_events.c.state, func.count()).group_by(webhook_events.c.state)
            )
        }
        newest = connection.execute(
            select(
                webhook_events.c.id,
                webhook_events.c.type,
                webhook_events.c.created_at,
                webhook_events.c.state,
                webhook_events.c.next_attempt_at,
                webhook_events.c.delivered_at,
            )
            .order_by(webhook_events.c.created_at.desc(), webhook_events.c.id.desc())
            .limit(LISTED)
        ).all()
        tried: dict[str, list[WebhookAttempt]] = defaultdict(list)
        if newest:
            for row in connection.execute(
                select(webhook_deliveries)
                .where(webhook_deliveries.c.event_id.in_([e.id for e in newest]))
                .order_by(webhook_deliveries.c.attempt)
            ):
                tried[row.event_id].append(
                    WebhookAttempt(
                        row.attempt, row.attempted_at, row.status_code, row.error, row.duration_ms
                    )
                )
    events = tuple(
        WebhookEventLine(
            e.id,
            e.type,
            e.created_at,
            e.state,
            e.next_attempt_at,
            e.delivered_at,
            tuple(tried[e.id]),
        )
        for e in newest
    )
    return WebhookLog(webhook_target(ctx.settings) is not None, by_state, events)
