"""`/`, the address every email's footer gives as "the service they use": it answered a
404 problem in JSON to a recipient who followed it. Over real HTTP, on SQLite and
PostgreSQL: the address taken from a sent email answers a page, in the reader's language,
the same to everyone (it reads nothing stored), and in strict-eu's words under strict-eu."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
from live_app import live_site, strict_eu_site
from pages_site import SENT_AT, invite_and_deliver
from security_support import snapshot
from support import add_members

from courtois.services.context import Context

FOOTER_URL = re.compile(r"\((https?://[^)\s]+)\)\s+is\s+the\s+service\s+they\s+use")


def test_the_footers_address_of_the_service_answers_a_page(ctx: Context) -> None:
    add_members(ctx)
    with live_site(ctx, SENT_AT, platform_name="Agora") as site:
        (mail,) = invite_and_deliver(site.ctx, "ana", ["bo@example.com"])
        found = FOOTER_URL.search(" ".join(mail.outgoing.text.split()))
        assert found, mail.outgoing.text
        url = found.group(1)
        assert url == site.base_url
        before = snapshot(site.ctx)
        with httpx.Client(timeout=30) as browser:
            english = browser.get(url)
            french = browser.get(url, headers={"Accept-Language": "fr-FR,fr;q=0.9"})
            again = browser.get(urlsplit(url)._replace(path="/").geturl())
        assert snapshot(site.ctx) == before
    assert english.status_code == 200, english.text[:300]
    assert english.headers["content-type"].startswith("text/html")
    assert "Invitations on Agora" in english.text
    assert "only when a member chooses to" in english.text
    assert again.text == english.text  # the same page for everyone
    assert french.status_code == 200
    assert '<html lang="fr">' in french.text
    assert "Les invitations sur Agora" in french.text


def test_under_strict_eu_the_page_says_the_platform_sends_no_email(ctx: Context) -> None:
    with strict_eu_site(ctx, SENT_AT, platform_name="Agora") as site:
        page = httpx.get(site.base_url + "/", timeout=30)
    assert page.status_code == 200
    assert "Agora sends no email itself" in page.text
    assert "only when a member chooses to" not in page.text
