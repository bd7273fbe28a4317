"""Webhooks against receivers that misbehave, over real sockets: a URL that cannot be
posted to, a trickling or slow receiver, two deliverers at once, a huge answer; and what
is kept, measured and stamped."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from typing import Any

import httpx
import pytest
from api_support import WEBHOOK_SECRET, hooked, running_api, webhook_receiver
from sqlalchemy import update
from support import count, rows

from conftest import T0
from courtois.services import webhook_delivery
from courtois.services.context import Context
from courtois.services.recipients import unsubscribe
from courtois.services.webhook_delivery import (
    MAX_ATTEMPTS,
    deliver_webhooks,
    purge_webhook_events,
    webhook_client,
)
from courtois.store.tables import webhook_deliveries, webhook_events

SECRET = WEBHOOK_SECRET


def unsubscribe_many(ctx: Context, n: int, name: str = "r") -> None:
    for i in range(n):
        unsubscribe(ctx, ctx.digest_email(f"{name}{i}@example.org"), T0)


@contextmanager
def raw_receiver(answer: Any) -> Iterator[tuple[str, dict[str, int]]]:
    """A bare TCP server: each connection's request is read, then `answer(conn, seen)`
    writes what it likes; yields the URL and counters the answers keep."""
    server = socket.create_server(("127.0.0.1", 0))
    seen: dict[str, int] = {"requests": 0, "sent": 0}
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
            while len(body) < length:
                body += conn.recv(65536)
            seen["requests"] += 1
            with suppress(OSError):
                answer(conn, seen, stop)

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/hooks", seen
    finally:
        stop.set()
        thread.join(5)
        server.close()


def test_a_url_httpx_cannot_post_to_is_a_failed_attempt_not_a_crash(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Settings refuse these at start; should one get past, one event fails, not the pass.
    hooked_ctx = hooked(ctx, "http://127.0.0.1:9/hooks")
    unsubscribe_many(hooked_ctx, 2)
    for url, postponed in (("http://hooks..example.com/hook", 1), ("http://127.0.0.1:80a/", 0)):
        monkeypatch.setattr(webhook_delivery, "webhook_target", lambda _s, u=url: (u, SECRET))
        with webhook_client() as client:
            report = deliver_webhooks(hooked_ctx, T0 + timedelta(days=1), client)
        assert (report.retried, report.postponed) == (1, postponed)
    log = rows(hooked_ctx, webhook_deliveries)
    assert sorted(str(r.error) for r in log) == ["InvalidURL", "UnicodeError"]
    assert {r.state for r in rows(hooked_ctx, webhook_events)} == {"pending"}


def test_a_trickling_receiver_is_cut_at_the_deadline(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhook_delivery, "POST_DEADLINE", timedelta(seconds=1), raising=False)

    def trickle(conn: socket.socket, seen: dict[str, int], stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        for _ in range(40):  # a byte every 0.1 s, for 4 s
            if stop.is_set():
                return
            conn.sendall(b"a")
            time.sleep(0.1)
        conn.sendall(b"\r\nContent-Length: 0\r\n\r\n")

    with raw_receiver(trickle) as (url, _):
        hooked_ctx = hooked(ctx, url)
        unsubscribe_many(hooked_ctx, 1)
        started = time.monotonic()
        with webhook_client() as client:
            report = deliver_webhooks(hooked_ctx, T0, client)
        took = time.monotonic() - started
    assert took < 2.5
    assert (report.delivered, report.retried) == (0, 1)
    (attempt,) = rows(hooked_ctx, webhook_deliveries)
    assert attempt.status_code is None
    assert "deadline" in str(attempt.error)
    (event,) = rows(hooked_ctx, webhook_events)
    assert (event.state, event.attempts) == ("pending", 1)


def slow(seconds: float) -> Any:
    def answer(conn: socket.socket, seen: dict[str, int], stop: threading.Event) -> None:
        time.sleep(seconds)
        conn.sendall(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")

    return answer


def test_one_call_stops_starting_posts_when_its_budget_is_spent(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhook_delivery, "PHASE_BUDGET", timedelta(seconds=1), raising=False)
    with raw_receiver(slow(0.4)) as (url, _):
        hooked_ctx = hooked(ctx, url)
        unsubscribe_many(hooked_ctx, 8)
        started = time.monotonic()
        with webhook_client() as client:
            report = deliver_webhooks(hooked_ctx, T0, client)
        took = time.monotonic() - started
    assert report.delivered == 3  # started at 0, 0.4 and 0.8 s
    assert report.postponed == 5
    assert took < 2.0
    states = Counter((r.state, r.attempts) for r in rows(hooked_ctx, webhook_events))
    assert states == {("delivered", 1): 3, ("pending", 0): 5}
    # Each attempt is stamped when it was made, not when the call began.
    stamps = sorted(r.attempted_at for r in rows(hooked_ctx, webhook_deliveries))
    assert stamps[-1] - stamps[0] >= timedelta(seconds=0.7)
    delivered = sorted(r.delivered_at for r in rows(hooked_ctx, webhook_events) if r.delivered_at)
    assert delivered[-1] - delivered[0] >= timedelta(seconds=0.7)


def test_two_deliverers_against_a_slow_receiver_post_each_event_once(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Scaled down: a lease of 3 s, each answer 0.25 s; 16 events take one deliverer 4 s.
    monkeypatch.setattr(webhook_delivery, "LEASE", timedelta(seconds=3))
    monkeypatch.setattr(webhook_delivery, "PHASE_BUDGET", timedelta(seconds=1), raising=False)
    monkeypatch.setattr(webhook_delivery, "POST_DEADLINE", timedelta(seconds=1), raising=False)
    with webhook_receiver() as hooks:
        real_post = webhook_delivery._post

        def slow_post(*args: Any) -> Any:
            time.sleep(0.25)
            return real_post(*args)

        monkeypatch.setattr(webhook_delivery, "_post", slow_post)
        hooked_ctx = hooked(ctx, hooks.url)
        unsubscribe_many(hooked_ctx, 16)
        origin = time.monotonic()
        errors: list[BaseException] = []

        def deliverer(delay: float) -> None:
            time.sleep(delay)
            try:
                with webhook_client() as client:
                    while time.monotonic() - origin < 20:
                        at = T0 + timedelta(seconds=time.monotonic() - origin)
                        deliver_webhooks(hooked_ctx, at, client)
                        left = count(
                            hooked_ctx, webhook_events, webhook_events.c.state != "delivered"
                        )
                        if not left:
                            return
                        time.sleep(0.1)
            except BaseException as error:
                errors.append(error)

        workers = [threading.Thread(target=deliverer, args=(d,)) for d in (0.0, 3.3)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
    assert errors == []
    posted = Counter(headers["courtois-event-id"] for headers, _ in hooks.received)
    assert len(posted) == 16
    assert set(posted.values()) == {1}


def test_a_huge_answer_is_not_read_whole(ctx: Context) -> None:
    size = 256 * 1024 * 1024

    def huge(conn: socket.socket, seen: dict[str, int], stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        chunk = b"x" * (1024 * 1024)
        conn.settimeout(3)
        for _ in range(size // len(chunk)):
            conn.sendall(chunk)
            seen["sent"] += len(chunk)

    with raw_receiver(huge) as (url, seen):
        hooked_ctx = hooked(ctx, url)
        unsubscribe_many(hooked_ctx, 1)
        with webhook_client() as client:
            report = deliver_webhooks(hooked_ctx, T0, client)
        time.sleep(0.2)
    assert report.delivered == 1
    assert seen["sent"] < size // 4


def test_only_events_done_with_are_purged(ctx: Context) -> None:
    hooked_ctx = hooked(ctx, "http://127.0.0.1:9/hooks")
    unsubscribe_many(hooked_ctx, 4)
    ids = sorted(r.id for r in rows(hooked_ctx, webhook_events))
    with hooked_ctx.engine.begin() as connection:
        for event_id, state in zip(
            ids, ("delivered", "failed", "pending", "delivering"), strict=True
        ):
            connection.execute(
                update(webhook_events).where(webhook_events.c.id == event_id).values(state=state)
            )
    assert purge_webhook_events(hooked_ctx, T0 + timedelta(days=30)) == 2
    assert sorted(r.id for r in rows(hooked_ctx, webhook_events)) == ids[2:]


def test_no_event_is_written_while_webhooks_are_off(ctx: Context) -> None:
    unsubscribe_many(ctx, 1)
    assert count(ctx, webhook_events) == 0
    unsubscribe_many(hooked(ctx, "http://127.0.0.1:9/hooks"), 1, "s")
    assert count(ctx, webhook_events) == 1


def test_given_up_events_are_measured(ctx: Context) -> None:
    with (
        webhook_receiver(replies=[500]) as hooks,
        running_api(ctx, webhook_url=hooks.url, webhook_secret=SECRET) as api,
    ):
        unsubscribe_many(api.ctx, 2)
        assert "courtois_webhook_events_failed 0.0" in api.get("/metrics").text
        with api.ctx.engine.begin() as connection:
            connection.execute(update(webhook_events).values(attempts=MAX_ATTEMPTS - 1))
        with httpx.Client() as client:
            assert deliver_webhooks(api.ctx, T0, client).failed == 1
        text = api.get("/metrics").text
    assert "# TYPE courtois_webhook_events_failed gauge" in text
    assert "courtois_webhook_events_failed 1.0" in text
    assert 'courtois_queue_depth{queue="webhooks"} 0.0' in text
