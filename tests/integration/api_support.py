"""The host API under test: the real app, served by uvicorn on a free port in a thread, and
a client that speaks to it over the socket with the platform's key.

Each test gets its own server over its own database (the `ctx` fixture: SQLite and
PostgreSQL), with a clock the test moves by hand.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from smtp_server import free_port

from conftest import T0
from courtois.services.context import Context
from courtois.web.app import create_app

API_KEY = "platform-key-0123456789abcdef"


class HandClock:
    """The app's clock: stands still until the test moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        """Move forward by a timedelta's keyword arguments; returns the new instant."""
        self.now = self.now + timedelta(**delta)
        return self.now


@contextmanager
def served(app: FastAPI, port: int | None = None) -> Iterator[str]:
    """Run `app` with uvicorn on `port` (a free one by default) until the block ends;
    yields its base URL."""
    port = port or free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@dataclasses.dataclass
class Api:
    """A client of one running app, with the context and clock behind it."""

    ctx: Context
    clock: HandClock
    app: FastAPI
    base_url: str
    http: httpx.Client

    def post(self, path: str, body: Any = None, key: str | None = None, **kw: Any) -> Any:
        """POST JSON (with an Idempotency-Key when given)."""
        headers = {"Idempotency-Key": key} if key is not None else {}
        return self.http.post(path, json=body, headers=headers, **kw)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        """GET."""
        return self.http.get(path, **kw)

    def ok(self, response: httpx.Response, status: int = 200) -> Any:
        """The JSON of a response that must have this status."""
        assert response.status_code == status, response.text
        return response.json()


def with_settings(ctx: Context, **changes: Any) -> Context:
    """The same database with other settings (an API key, a webhook receiver...)."""
    return Context(engine=ctx.engine, settings=dataclasses.replace(ctx.settings, **changes))


WEBHOOK_SECRET = "whsec-0123456789abcdef"


def hooked(ctx: Context, url: str) -> Context:
    """The same database with webhooks posted to `url`, signed with WEBHOOK_SECRET."""
    return with_settings(ctx, webhook_url=url, webhook_secret=WEBHOOK_SECRET)


@contextmanager
def running_api(ctx: Context, now: datetime = T0, **settings: Any) -> Iterator[Api]:
    """The app over `ctx` (with the API key set), served, and a keyed client."""
    context = with_settings(ctx, **{"api_key": API_KEY, **settings})
    clock = HandClock(now)
    app = create_app(context, clock)
    with (
        served(app) as base_url,
        httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30
        ) as http,
    ):
        yield Api(context, clock, app, base_url, http)


def add_member(api: Api, member_id: str = "ana", name: str = "Ana Lima") -> dict[str, Any]:
    """Register a member through the API."""
    body = {"id": member_id, "email": f"{member_id}@members.example", "name": name}
    return api.ok(api.post("/v1/members", body))  # type: ignore[no-any-return]


def preview_and_invite(
    api: Api,
    emails: list[str],
    member_id: str = "ana",
    key: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Preview, then consent to exactly what was shown: the platform's happy path."""
    shown = api.ok(
        api.post(f"/v1/members/{member_id}/invitations/preview", {"emails": emails, **options})
    )
    body = {
        "emails": emails,
        **options,
        "preview_hash": shown["preview_hash"],
        "consent": {"text_shown": shown["consent_text"], "ip": "192.0.2.7", "user_agent": "t"},
    }
    return api.ok(api.post(f"/v1/members/{member_id}/invitations", body, key=key), 201)  # type: ignore[no-any-return]


def problem(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    """The problem details of a refusal, checked for status, media type and type."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"] == f"/problems/{kind}", body
    assert body["status"] == status
    return body


@dataclasses.dataclass
class Receiver:
    """A platform's webhook endpoint: keeps what it gets, answers the statuses it is given
    (then 204)."""

    url: str
    received: list[tuple[dict[str, str], bytes]]
    replies: list[int]


@contextmanager
def webhook_receiver(replies: list[int] | None = None) -> Iterator[Receiver]:
    """A real HTTP server in a thread; yields where it listens and what it received."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    receiver = Receiver("", [], list(replies or []))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            status = receiver.replies.pop(0) if receiver.replies else 204
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reads `received`."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, name="receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
