"""The whole app served by uvicorn in a thread, on a free port, over a test's database, with
a clock the test moves; `base_url` is where it listens, so the links in its emails and its
sign-in links open there (a browser can follow them).

Browser-free on purpose: HTTP tests use it directly, and `browser_support` builds its
fixtures on it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pytest
from api_support import HandClock, free_port, served

from conftest import T0
from courtois.services.context import Context
from courtois.web.app import create_app

# The app's clock, standing still until the test moves it.
Clock = HandClock


@dataclasses.dataclass
class LiveSite:
    """A running app: its context (with `base_url` pointing at it) and its clock."""

    ctx: Context
    clock: Clock
    base_url: str

    def url(self, path: str) -> str:
        """An absolute URL on the site."""
        return self.base_url + path


@contextmanager
def live_site(ctx: Context, now: datetime = T0, **settings: Any) -> Iterator[LiveSite]:
    """Serve the app over `ctx` until the block ends; `settings` override the context's,
    and `base_url` is where the server listens unless a test names another."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    context = Context(
        engine=ctx.engine,
        settings=dataclasses.replace(ctx.settings, **{"base_url": base_url, **settings}),
    )
    clock = Clock(now)
    with served(create_app(context, clock), port):
        yield LiveSite(context, clock, base_url)


@contextmanager
def strict_eu_site(ctx: Context, now: datetime = T0, **settings: Any) -> Iterator[LiveSite]:
    """`live_site` under the strict-eu profile (the member shares each invitation), keeping
    the rest of the context's policy."""
    policy = dataclasses.replace(ctx.settings.policy, profile="strict-eu")
    with live_site(ctx, now, policy=policy, **settings) as running:
        yield running


# Browser tests gain nothing from PostgreSQL (the HTTP tests cover both engines): mark a
# test or module with this to run it on SQLite only.
sqlite_only = pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
