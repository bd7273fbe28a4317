"""The webhook delivery log on the admin pages, over real HTTP and a real receiver, on both
engines: each event with every attempt and what came back, the counts by state, whether
webhooks are on; never an address."""

from __future__ import annotations

import html
import random
import re
from dataclasses import replace
from datetime import timedelta

import httpx
import pytest
from admin_support import admin_settings, sign_in
from api_support import webhook_receiver
from pages_site import serve
from support import T0

from courtois.config import Settings
from courtois.services.context import Context
from courtois.services.recipients import unsubscribe
from courtois.services.webhook_delivery import deliver_webhooks

SECRET = "whsec-0123456789abcdef"
ADDRESS = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


@pytest.fixture
def settings() -> Settings:
    """With an API key, so the admin pages are on."""
    return admin_settings()


def test_each_event_is_listed_with_every_attempt(ctx: Context) -> None:
    with webhook_receiver(replies=[503]) as hooks:
        hooked = Context(
            ctx.engine, replace(ctx.settings, webhook_url=hooks.url, webhook_secret=SECRET)
        )
        unsubscribe(hooked, hooked.digest_email("bo@example.org"), T0)
        unsubscribe(hooked, hooked.digest_email("cy@example.org"), T0 + timedelta(minutes=1))
        rng = random.Random(3)
        with httpx.Client() as client:
            deliver_webhooks(hooked, T0 + timedelta(minutes=2), client, rng)
            deliver_webhooks(hooked, T0 + timedelta(hours=1), client, rng)
        with serve(hooked) as site:
            sign_in(site)
            page = site.get("/admin/webhooks")
    assert page.status_code == 200
    html = page.text
    assert 'id="webhooks-status" data-enabled="true"' in html
    assert re.search(r'<dd data-state="delivered">2</dd>', html)
    assert re.search(r'<dd data-state="pending">0</dd>', html)
    rows = re.findall(r'<tr id="event-([^"]+)" data-state="delivered">', html)
    assert len(rows) == 2
    statuses = sorted(re.findall(r'data-attempt="(\d)" data-status="(\d+)"', html))
    # One event was refused once (503) then taken (204); the other taken at once.
    assert statuses == [("1", "204"), ("1", "503"), ("2", "204")]
    assert "recipient.unsubscribed" in html
    assert ADDRESS.findall(html) == []


def test_with_webhooks_off_the_page_says_so(ctx: Context) -> None:
    unsubscribe(ctx, ctx.digest_email("bo@example.org"), T0)
    with serve(ctx) as site:
        sign_in(site)
        page = site.get("/admin/webhooks").text
    assert 'id="webhooks-status" data-enabled="false"' in page
    # Nothing is written while they are off, so nothing waits for them, and the page
    # does not promise otherwise.
    assert not re.search(r'<tr id="event-', page)
    assert "While they are off no event is recorded" in page
    assert "never posted, not even once webhooks are on" in page
    assert "posted once webhooks are on" not in page
    with serve(ctx) as site:
        sign_in(site)
        dit = html.unescape(site.get("/admin/webhooks", headers={"Accept-Language": "fr"}).text)
    assert "aucun événement n'est enregistré" in dit
    assert "conservés une semaine" not in dit
