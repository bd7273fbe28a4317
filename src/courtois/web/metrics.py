"""`GET /metrics`: Prometheus text, read from the database at scrape time.

The database is the truth for what was decided and what waits, so every API process of a
deployment reports the same figures, whichever one is scraped:
- `courtois_decisions_total{stage, rule, outcome}`: each rule's verdicts, and
  `courtois_decision_outcomes_total{stage, outcome}`: each decision's result. Decisions
  are never updated, so each process adds only the rows it has not counted yet.
- `courtois_messages{state, kind}`: emails by state; `courtois_queue_depth{queue}`:
  emails due now, scheduled, being sent, and webhook events waiting;
  `courtois_webhook_events_failed`: webhook events given up (only with webhooks on).
- `courtois_send_latency_seconds{quantile}`: from falling due to leaving, over the emails
  sent in the last 15 minutes (`courtois_send_latency_window_messages` of them).
"""

from __future__ import annotations

import hmac
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import Connection, func, select

from courtois.config import webhook_target
from courtois.domain.messages import MessageState
from courtois.services.context import Context
from courtois.services.webhook_delivery import FAILED
from courtois.services.webhooks import PENDING
from courtois.store.tables import decisions, messages, webhook_events
from courtois.web.deps import Clock
from courtois.web.problems import Problem, responses

router = APIRouter(tags=["operations"])

PAGE = 5000
LATENCY_WINDOW = timedelta(minutes=15)
QUANTILES = (0.5, 0.9, 0.99)
# An id below the newest one counted but not seen yet belongs to a transaction still
# running (PostgreSQL hands out ids before commit) or to one rolled back: looked for again
# at each scrape, given up after this long.
GAP_PATIENCE_SECONDS = 600.0
MAX_GAPS = 100_000


class DecisionTally:
    """Running totals of the decisions table, advanced by what was added since."""

    def __init__(self) -> None:
        self.watermark = 0
        self.gaps: dict[int, float] = {}
        self.verdicts: Counter[tuple[str, str, str]] = Counter()
        self.outcomes: Counter[tuple[str, str]] = Counter()
        self.lock = threading.Lock()

    def refresh(self, connection: Connection) -> None:
        """Count the rows added since the last call, and those that were missing then."""
        with self.lock:
            seen_at = time.monotonic()
            columns = (decisions.c.id, decisions.c.stage, decisions.c.outcome, decisions.c.verdicts)
            while True:
                rows = connection.execute(
                    select(*columns)
                    .where(decisions.c.id > self.watermark)
                    .order_by(decisions.c.id)
                    .limit(PAGE)
                ).all()
                for row in rows:
                    self._note_gaps(int(row.id), seen_at)
                    self._count(row)
                if len(rows) < PAGE:
                    break
            missing = sorted(self.gaps)
            for start in range(0, len(missing), 500):
                for row in connection.execute(
                    select(*columns).where(decisions.c.id.in_(missing[start : start + 500]))
                ):
                    self.gaps.pop(int(row.id), None)
                    self._count(row)
            for gap, since in list(self.gaps.items()):
                if seen_at - since > GAP_PATIENCE_SECONDS:
                    del self.gaps[gap]

    def _note_gaps(self, row_id: int, seen_at: float) -> None:
        for missing in range(self.watermark + 1, row_id):
            if len(self.gaps) >= MAX_GAPS:
                break
            self.gaps[missing] = seen_at
        self.watermark = max(self.watermark, row_id)

    def _count(self, row: Any) -> None:
        self.outcomes[(row.stage, row.outcome)] += 1
        for verdict in row.verdicts:
            self.verdicts[(row.stage, verdict[0], verdict[1])] += 1


def quantile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank quantile of sorted values."""
    index = min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.999999) - 1))
    return ordered[index]


class StoreCollector:
    """Reads every figure from the database when Prometheus scrapes."""

    def __init__(self, ctx: Context, clock: Clock) -> None:
        self.ctx = ctx
        self.clock = clock
        self.tally = DecisionTally()

    def collect(self) -> Iterable[Metric]:
        """The metric families, as of now."""
        now = self.clock()
        with self.ctx.engine.connect() as connection:
            self.tally.refresh(connection)
            # Emails, as the admin chart counts them: an invitation carried in another's
            # digest is a message of its own but left in that email, not as one more.
            by_state = connection.execute(
                select(messages.c.state, messages.c.kind, func.count())
                .where(messages.c.carried_by.is_(None))
                .group_by(messages.c.state, messages.c.kind)
            ).all()
            due = connection.execute(
                select(func.count())
                .select_from(messages)
                .where(
                    messages.c.state == MessageState.SCHEDULED.value,
                    messages.c.scheduled_at <= now,
                )
            ).scalar_one()
            # With webhooks off, no event is written: no queue to alert on, so no series.
            webhooks: dict[str, int] | None = None
            if webhook_target(self.ctx.settings) is not None:
                webhooks = {
                    str(state): int(n)
                    for state, n in connection.execute(
                        select(webhook_events.c.state, func.count())
                        .where(webhook_events.c.state.in_((PENDING, FAILED)))
                        .group_by(webhook_events.c.state)
                    )
                }
            latencies = self._latencies(connection, now)
        yield from self._decisions()
        yield from self._messages(
            by_state, int(due), None if webhooks is None else webhooks.get(PENDING, 0)
        )
        if webhooks is not None:
            yield GaugeMetricFamily(
                "courtois_webhook_events_failed",
                "Webhook events given up after the last attempt, still kept (7 days).",
                value=webhooks.get(FAILED, 0),
            )
        yield from self._latency(latencies)

    def _decisions(self) -> Iterable[Metric]:
        verdicts = CounterMetricFamily(
            "courtois_decisions",
            "Verdicts of each policy rule, by stage and outcome.",
            labels=["stage", "rule", "outcome"],
        )
        for (stage, rule, outcome), count in sorted(self.tally.verdicts.items()):
            verdicts.add_metric([stage, rule, outcome], count)
        outcomes = CounterMetricFamily(
            "courtois_decision_outcomes",
            "Decisions by stage and combined outcome.",
            labels=["stage", "outcome"],
        )
        for (stage, outcome), count in sorted(self.tally.outcomes.items()):
            outcomes.add_metric([stage, outcome], count)
        return (verdicts, outcomes)

    def _messages(self, by_state: Sequence[Any], due: int, waiting: int | None) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "courtois_messages", "Emails by state and kind.", labels=["state", "kind"]
        )
        totals: Counter[str] = Counter()
        for state, kind, count in by_state:
            family.add_metric([state, kind], int(count))
            totals[state] += int(count)
        queue = GaugeMetricFamily(
            "courtois_queue_depth", "Work waiting, by queue.", labels=["queue"]
        )
        queue.add_metric(["due"], due)
        queue.add_metric(["scheduled"], totals[MessageState.SCHEDULED.value])
        queue.add_metric(["sending"], totals[MessageState.SENDING.value])
        if waiting is not None:
            queue.add_metric(["webhooks"], int(waiting))
        return (family, queue)

    def _latencies(self, connection: Connection, now: datetime) -> list[float]:
        # Emails sent in the window, from when each fell due: a retry moves scheduled_at
        # past the first attempt, which was made when the email fell due. Time lost to our
        # own relay's faults is not counted (it moves the first attempt on): the relay's
        # outages show in the queue's depth and the worker's problems instead.
        rows = connection.execute(
            select(messages.c.scheduled_at, messages.c.first_attempt_at, messages.c.sent_at).where(
                messages.c.state == MessageState.SENT.value,
                messages.c.sent_at >= now - LATENCY_WINDOW,
                messages.c.carried_by.is_(None),
            )
        ).all()
        return sorted(
            max(
                0.0,
                (
                    r.sent_at - min(r.scheduled_at, r.first_attempt_at or r.scheduled_at)
                ).total_seconds(),
            )
            for r in rows
            if r.sent_at is not None
        )

    def _latency(self, latencies: list[float]) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "courtois_send_latency_seconds",
            "Time from falling due to leaving, for emails sent in the last 15 minutes.",
            labels=["quantile"],
        )
        if latencies:
            for q in QUANTILES:
                family.add_metric([str(q)], quantile(latencies, q))
        window = GaugeMetricFamily(
            "courtois_send_latency_window_messages",
            "Emails sent in the last 15 minutes (the latency quantiles' sample).",
            value=len(latencies),
        )
        return (family, window)


def registry_for(request: Request) -> CollectorRegistry:
    """One registry per app, made at the first scrape."""
    state = request.app.state
    registry: CollectorRegistry | None = getattr(state, "metrics_registry", None)
    if registry is None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(StoreCollector(state.ctx, state.clock))
        state.metrics_registry = registry
    return registry


def check_scraper(request: Request) -> None:
    """The scrape token, compared in constant time, when one is configured. The figures
    name no one, but they tell an outsider how much mail leaves and what is refused."""
    ctx: Context = request.app.state.ctx
    expected = ctx.settings.metrics_token
    if not expected:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), expected.encode()
    ):
        raise Problem(
            401,
            "unauthorized",
            "A valid bearer token is required (COURTOIS_METRICS_TOKEN).",
            headers={"WWW-Authenticate": "Bearer"},
        )


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}, "description": "Text"},
        **responses(401),
    },
    summary="Prometheus metrics",
)
def metrics(request: Request) -> Response:
    """Decisions by rule and outcome, emails by state, queue depth, send latency."""
    check_scraper(request)
    return Response(generate_latest(registry_for(request)), media_type=CONTENT_TYPE_LATEST)
