"""Rendering the recipient pages: escaping, dates in both languages, the headers every
page carries, and the sign-up URL an accepting recipient is sent to."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, date, datetime

import pytest

from courtois.config import Settings
from courtois.services.recipient_email import Inviting
from courtois.web.pages.recipient import signup_url
from courtois.web.pages.render import CSS, HEADERS, day, render_page, when

SETTINGS = Settings(
    secret_key="unit-secret-0123456789",
    platform_name='Agora <script>alert("x")</script>',
    base_url="https://agora.test/",
    platform_postal_address="1 rue de la Paix\n75002 Paris",
)


@pytest.mark.parametrize("count", [1, 2])
def test_platform_and_address_are_escaped_and_no_script_runs(count: int) -> None:
    inviters = [
        Inviting(f"i-{n}", f"m-{n}", f'Ana{n} <script>alert("y")</script>') for n in range(count)
    ]
    html = render_page(SETTINGS, "en", "unsubscribe.html", inviters=inviters)
    assert "<script>" not in html
    assert "Ana0 &lt;script&gt;" in html
    assert "Agora &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "1 rue de la Paix, 75002 Paris" in html


def test_the_stylesheet_is_the_one_the_policy_allows() -> None:
    html = render_page(SETTINGS, "fr", "not_found.html")
    style = html.split("<style>", 1)[1].split("</style>", 1)[0]
    assert style == CSS
    digest = base64.b64encode(hashlib.sha256(style.encode("utf-8")).digest()).decode()
    policy = HEADERS["Content-Security-Policy"]
    assert f"style-src 'sha256-{digest}'" in policy
    assert "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "form-action 'self'" in policy
    assert HEADERS["Cache-Control"] == "no-store"
    assert HEADERS["Referrer-Policy"] == "no-referrer"
    assert HEADERS["X-Frame-Options"] == "DENY"


def test_dates_read_as_people_write_them() -> None:
    moment = datetime(2026, 3, 2, 9, 5, tzinfo=UTC)
    assert day(moment, "fr") == "2 mars 2026"
    assert day(date(2026, 3, 2), "en") == "March 2, 2026"
    assert when(moment, "fr") == "2 mars 2026, 09:05 UTC"
    assert when(None, "en") == ""
    # French writes the first of the month as an ordinal, and only that day.
    assert day(date(2026, 12, 1), "fr") == "1er décembre 2026"
    assert when(datetime(2026, 12, 1, 9, 5, tzinfo=UTC), "fr") == "1er décembre 2026, 09:05 UTC"
    assert day(date(2026, 12, 11), "fr") == "11 décembre 2026"
    assert day(date(2026, 12, 1), "en") == "December 1, 2026"


def test_the_sign_up_url_carries_the_invitation() -> None:
    assert signup_url(SETTINGS, "inv-1") == "https://agora.test/welcome?invitation=inv-1"
    configured = Settings(signup_url="https://p.example/join?src=mail#top")
    assert signup_url(configured, "a b") == "https://p.example/join?src=mail&invitation=a+b#top"
