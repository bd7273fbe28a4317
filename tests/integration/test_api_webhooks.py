"""Signed webhooks: written with the change they report, posted to a real HTTP server,
signed, retried with growing delays when refused, logged, and never carrying an address."""

from __future__ import annotations

import json
import random
import re
import time
from datetime import timedelta

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from api_support import (
    WEBHOOK_SECRET,
    add_member,
    free_port,
    hooked,
    preview_and_invite,
    running_api,
    webhook_receiver,
    with_settings,
)
from smtp_server import FaultyHandler, smtp_server
from sqlalchemy import select, update
from support import count, rows

from conftest import T0
from courtois.delivery.smtp import SmtpTransport, parse_smtp_url
from courtois.domain.errors import InvalidInput
from courtois.services.context import Context
from courtois.services.recipients import unsubscribe
from courtois.services.webhook_delivery import MAX_ATTEMPTS, deliver_webhooks
from courtois.services.webhooks import EVENT_TYPES, record_unsubscribed
from courtois.services.worker import run_pass
from courtois.store.tables import metadata, webhook_deliveries, webhook_events
from courtois.webhook_signature import sign, verify

SECRET = WEBHOOK_SECRET


def unsubscribe_one(ctx: Context, email: str = "bo@example.org") -> None:
    unsubscribe(ctx, ctx.digest_email(email), T0)


def test_every_event_type_reaches_the_receiver_signed_and_without_an_address(
    ctx: Context,
) -> None:
    handler = FaultyHandler(rcpt_replies={"dee@example.org": "550 5.1.1 User unknown"})
    with (
        webhook_receiver() as hooks,
        smtp_server(handler) as smtp_url,
        running_api(ctx, webhook_url=hooks.url, webhook_secret=SECRET) as api,
    ):
        add_member(api)
        preview_and_invite(api, ["bo@example.org", "cy@example.org", "dee@example.org"])
        now = api.clock.advance(minutes=11)
        report = run_pass(api.ctx, now, SmtpTransport(parse_smtp_url(smtp_url)))
        assert (report.sent, report.failed) == (2, 1)
        api.ok(api.post("/v1/joined", {"email": "bo@example.org"}))
        api.ok(api.post("/v1/recipients/forget", {"email": "cy@example.org"}))
        api.ok(api.post("/v1/recipients/unsubscribe", {"email": "eve@example.org"}))
        add_member(api, "zed", "Zed Quill")
        api.ok(api.http.delete("/v1/members/zed"))
        with httpx.Client() as client:
            deliver_webhooks(api.ctx, api.clock.now, client)
    events = [json.loads(body) for _, body in hooks.received]
    assert {e["type"] for e in events} == set(EVENT_TYPES)
    erased = next(e for e in events if e["type"] == "member.erased")
    # Every payload timestamp in one form, with microseconds even when they are 0.
    stamp = api.clock.now.isoformat(timespec="microseconds")
    assert stamp.endswith(".000000+00:00")
    assert erased["data"] == {"member_id": "zed", "erased_at": stamp}
    assert all(
        re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", e["created_at"])
        for e in events
    )
    assert [e["type"] for e in events].count("invitation.sent") == 2
    for headers, body in hooks.received:
        assert b"@" not in body
        assert verify(SECRET, headers["courtois-signature"], body, time.time())
        assert headers["courtois-event"] == json.loads(body)["type"]
        assert headers["content-type"] == "application/json"
    declined = next(e for e in events if e["type"] == "invitation.declined")
    forgotten = next(e for e in events if e["data"].get("reason") == "forgotten")
    assert declined["data"]["recipient_digest"] == forgotten["data"]["recipient_digest"]
    assert forgotten["data"]["scope"] == "everyone"


def test_a_refusing_receiver_is_retried_with_growing_delays_then_served(ctx: Context) -> None:
    with webhook_receiver(replies=[500, 503]) as hooks:
        hooked_ctx = hooked(ctx, hooks.url)
        unsubscribe_one(hooked_ctx)
        rng = random.Random(7)
        with httpx.Client() as client:
            first = deliver_webhooks(hooked_ctx, T0, client, rng)
            assert (first.delivered, first.retried) == (0, 1)
            (event,) = rows(hooked_ctx, webhook_events)
            first_delay = event.next_attempt_at - T0
            assert timedelta(seconds=24) <= first_delay <= timedelta(seconds=36)
            # Not due yet: nothing is posted.
            assert (
                deliver_webhooks(hooked_ctx, T0 + timedelta(seconds=20), client, rng).retried == 0
            )
            at = event.next_attempt_at
            assert deliver_webhooks(hooked_ctx, at, client, rng).retried == 1
            (event,) = rows(hooked_ctx, webhook_events)
            second_delay = event.next_attempt_at - at
            assert timedelta(seconds=48) <= second_delay <= timedelta(seconds=72)
            done = deliver_webhooks(hooked_ctx, event.next_attempt_at, client, rng)
            assert done.delivered == 1
    assert len(hooks.received) == 3
    bodies = {body for _, body in hooks.received}
    assert len(bodies) == 1
    assert [h["courtois-delivery-attempt"] for h, _ in hooks.received] == ["1", "2", "3"]
    assert len({h["courtois-event-id"] for h, _ in hooks.received}) == 1
    log = sorted(rows(hooked_ctx, webhook_deliveries), key=lambda r: r.attempt)
    assert [(r.attempt, r.status_code) for r in log] == [(1, 500), (2, 503), (3, 204)]
    (event,) = rows(hooked_ctx, webhook_events)
    assert (event.state, event.attempts) == ("delivered", 3)


def test_an_unreachable_receiver_costs_one_attempt_per_pass(ctx: Context) -> None:
    dead = hooked(ctx, f"http://127.0.0.1:{free_port()}/hooks")
    for email in ("bo@example.org", "cy@example.org", "dee@example.org"):
        unsubscribe_one(dead, email)
    with httpx.Client() as client:
        report = deliver_webhooks(dead, T0, client)
    assert (report.retried, report.postponed, report.delivered) == (1, 2, 0)
    log = rows(dead, webhook_deliveries)
    assert [(r.status_code, r.error) for r in log] == [(None, "ConnectError")]
    states = sorted((r.state, r.attempts) for r in rows(dead, webhook_events))
    assert states == [("pending", 0), ("pending", 0), ("pending", 1)]


def test_an_event_is_given_up_after_the_last_attempt(ctx: Context) -> None:
    with webhook_receiver(replies=[500]) as hooks:
        hooked_ctx = hooked(ctx, hooks.url)
        unsubscribe_one(hooked_ctx)
        with hooked_ctx.engine.begin() as connection:
            connection.execute(update(webhook_events).values(attempts=MAX_ATTEMPTS - 1))
        with httpx.Client() as client:
            report = deliver_webhooks(hooked_ctx, T0, client)
            assert report.failed == 1
            assert deliver_webhooks(hooked_ctx, T0 + timedelta(days=2), client).failed == 0
    (event,) = rows(hooked_ctx, webhook_events)
    assert (event.state, event.attempts) == ("failed", MAX_ATTEMPTS)
    assert len(hooks.received) == 1


def test_a_worker_pass_reports_what_became_of_its_webhooks(ctx: Context) -> None:
    """Delivered, failed and given up are in the pass's report, each failure's kind among
    its problems, and the worker's log line says so without the URL or its token."""
    with webhook_receiver(replies=[503, 500]) as hooks:
        hooked_ctx = hooked(ctx, f"{hooks.url}?token=sekrit")
        unsubscribe_one(hooked_ctx, "bo@example.org")
        unsubscribe_one(hooked_ctx, "cy@example.org")
        last = rows(hooked_ctx, webhook_events)[0].id
        with hooked_ctx.engine.begin() as connection:
            connection.execute(
                update(webhook_events)
                .where(webhook_events.c.id == last)
                .values(attempts=MAX_ATTEMPTS - 1)
            )
        refused = run_pass(hooked_ctx, T0, None)
        served = run_pass(hooked_ctx, T0 + timedelta(days=1), None)
    assert refused.webhooks == {"delivered": 0, "failed": 2, "given_up": 1}
    assert refused.problems == {"webhook: HTTP 500": 1, "webhook: HTTP 503": 1}
    assert refused.as_dict()["webhooks"] == refused.webhooks
    assert refused.webhook_trouble() == (
        "webhooks: 2 attempts failed in this pass (HTTP 500 1, HTTP 503 1); 1 given up,"
        " the others tried again later"
    )
    assert served.webhooks == {"delivered": 1, "failed": 0, "given_up": 0}
    assert (served.problems, served.webhook_trouble()) == ({}, None)


def test_an_event_exists_only_if_its_change_committed(ctx: Context) -> None:
    ctx = hooked(ctx, "http://127.0.0.1:9/hooks")
    digest = ctx.digest_email("bo@example.org")
    with ctx.unit_of_work(T0) as uow:
        record_unsubscribed(uow, digest, None)
        # No commit: the change and its event roll back together.
    assert count(ctx, webhook_events) == 0
    with ctx.unit_of_work(T0) as uow:
        record_unsubscribed(uow, digest, None)
        uow.commit()
    assert count(ctx, webhook_events) == 1


def test_half_a_configuration_is_refused(ctx: Context) -> None:
    unsubscribe_one(ctx)
    with httpx.Client() as client:
        for settings in (
            {"webhook_url": "http://127.0.0.1:9/hooks", "webhook_secret": ""},
            {"webhook_url": "", "webhook_secret": SECRET},
            {"webhook_url": "ftp://example.org/", "webhook_secret": SECRET},
        ):
            with pytest.raises(InvalidInput):
                deliver_webhooks(with_settings(ctx, **settings), T0, client)
    # Without either, no event was written, and nothing is posted.
    assert count(ctx, webhook_events) == 0
    with httpx.Client() as client:
        assert deliver_webhooks(ctx, T0, client).delivered == 0


def test_the_signature_is_over_the_timestamp_and_the_exact_body() -> None:
    body = b'{"id":"1","type":"recipient.unsubscribed"}'
    header = sign(SECRET, body, 1_800_000_000)
    assert header.startswith("t=1800000000,v1=")
    assert verify(SECRET, header, body, 1_800_000_100)
    assert not verify(SECRET, header, body + b" ", 1_800_000_100)
    assert not verify(SECRET, header, body, 1_800_000_000 + 301)  # replayed too late
    assert not verify("other-secret-0123456789", header, body, 1_800_000_000)
    assert not verify(SECRET, header.replace("t=1800000000", "t=1800000001"), body, 1_800_000_000)
    rotated = f"{header},v1={'0' * 64}"
    assert verify(SECRET, rotated, body, 1_800_000_000)
    assert not verify(SECRET, "v1=abc", body, 1_800_000_000)
    # A hostile header is simply not the signature: no exception for the receiver.
    assert not verify(SECRET, "t=1800000000,v1=é", body, 1_800_000_000)
    assert not verify(SECRET, f"t=1800000000,v1=\udcff{'0' * 63}", body, 1_800_000_000)


def test_the_migrations_build_exactly_the_declared_tables(ctx: Context) -> None:
    with ctx.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []
    with ctx.engine.connect() as connection:
        assert connection.execute(select(webhook_events.c.id)).all() == []
