"""The admin pages over real HTTP, on both engines: signing in with the API key, the CSRF
token every POST needs, and the charts' numbers for a history made through the services.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from admin_support import (
    API_KEY,
    DAY,
    admin_settings,
    at,
    chart_points,
    csrf_of,
    make_history,
    moment,
    sign_in,
    table_cells,
)
from pages_site import Clock, serve
from sqlalchemy import Engine, select

from conftest import T0
from courtois.config import Settings
from courtois.services.admin_sessions import KEPT, admin_session_ended, end_admin_session
from courtois.services.context import Context
from courtois.store.tables import decisions
from courtois.web.pages.admin_session import COOKIE, MAX_AGE_SECONDS

ADMIN_URLS = (
    "/admin",
    "/admin/sign-in",
    "/admin/lookup",
    "/admin/unknown",
    "/admin/ledger",
    "/admin/webhooks",
)


@pytest.fixture
def settings() -> Settings:
    """This module's settings: with an API key, so the admin pages are on."""
    return admin_settings()


def _cookie_header(response_headers: list[str]) -> dict[str, str]:
    """The admin cookie's attributes, lower-cased names."""
    (line,) = [h for h in response_headers if h.startswith(f"{COOKIE}=")]
    attributes = {}
    for part in line.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        attributes[name.lower()] = value
    return attributes


def test_without_an_api_key_the_admin_pages_are_off(engine: Engine) -> None:
    ctx = Context(engine=engine, settings=admin_settings(api_key=""))
    with serve(ctx) as site:
        for url in ADMIN_URLS:
            page = site.get(url)
            assert page.status_code == 403, url
            assert "The admin pages are turned off" in page.text
            assert "set-cookie" not in page.headers
        tried = site.post("/admin/sign-in", data={"key": "", "csrf": ""})
        assert tried.status_code == 403
        assert "turned off" in tried.text
        assert "set-cookie" not in tried.headers


def test_an_admin_signs_in_with_the_key_and_out_again(ctx: Context) -> None:
    with serve(ctx) as site:
        assert site.get("/admin").status_code == 303
        assert site.get("/admin").headers["location"] == "/admin/sign-in"
        form = site.get("/admin/sign-in")
        cookie = _cookie_header(form.headers.get_list("set-cookie"))
        assert cookie["path"] == "/admin"
        assert cookie["samesite"] == "strict"
        assert "httponly" in cookie
        assert "secure" not in cookie  # served over plain HTTP, at a plain HTTP public URL
        assert form.headers["cache-control"] == "no-store"
        assert "default-src 'none'" in form.headers["content-security-policy"]
        first_session = site.client.cookies[COOKIE]

        wrong = site.post("/admin/sign-in", data={"csrf": csrf_of(form), "key": API_KEY + "x"})
        assert wrong.status_code == 403
        assert "That is not the API key" in wrong.text
        assert site.get("/admin").status_code == 303  # still not signed in

        right = site.post("/admin/sign-in", data={"csrf": csrf_of(form), "key": API_KEY})
        assert right.status_code == 303
        assert right.headers["location"] == "/admin"
        # A new session, not the one the form was shown under.
        assert site.client.cookies[COOKIE] != first_session
        page = site.get("/admin")
        assert page.status_code == 200
        assert "Activity per day" in page.text
        assert "<script" not in page.text.lower()
        assert site.get("/admin/sign-in").status_code == 303  # already in

        out = site.post("/admin/sign-out", data={"csrf": csrf_of(page)})
        assert out.status_code == 303
        assert out.headers["location"] == "/admin/sign-in"
        assert COOKIE not in site.client.cookies
        assert site.get("/admin").status_code == 303


def test_signing_out_ends_the_session_for_every_copy_of_its_cookie(ctx: Context) -> None:
    """A copy of the cookie taken before signing out (another profile, a proxy's log, a
    stolen cookie) opens no page and passes no form afterwards, with its CSRF token or
    not; another admin session goes on, and signing in again works."""
    with serve(ctx) as site, serve(ctx) as colleague:
        csrf = sign_in(site)
        sign_in(colleague)
        copy = site.client.cookies[COOKIE]
        out = site.post("/admin/sign-out", data={"csrf": csrf})
        assert out.status_code == 303
        with httpx.Client(
            base_url=site.base, headers={"Cookie": f"{COOKIE}={copy}"}, timeout=10
        ) as thief:
            for url in ("/admin", "/admin/lookup", "/admin/unknown", "/admin/ledger"):
                answer = thief.get(url)
                assert answer.status_code == 303, url
                assert answer.headers["location"] == "/admin/sign-in"
            looked = thief.post("/admin/lookup", data={"csrf": csrf, "address": "a@example.org"})
            assert looked.status_code == 403
            assert "a@example.org" not in looked.text
            # The sign-in form treats the ended cookie as none: a fresh session.
            form = thief.get("/admin/sign-in")
            assert form.status_code == 200
            assert copy not in form.headers["set-cookie"]
        sign_in(site)
        assert site.get("/admin").status_code == 200
        assert colleague.get("/admin").status_code == 200


def test_ended_admin_sessions_are_forgotten_once_their_cookies_expire(ctx: Context) -> None:
    """Only ids of sessions whose cookie could still be valid are kept: each sign-out
    purges the older ones."""
    first = T0
    end_admin_session(ctx, "a" * 32, first)
    end_admin_session(ctx, "b" * 32, first + KEPT - timedelta(minutes=1))
    assert admin_session_ended(ctx, "a" * 32)
    end_admin_session(ctx, "c" * 32, first + KEPT + timedelta(minutes=1))
    assert not admin_session_ended(ctx, "a" * 32)
    assert admin_session_ended(ctx, "b" * 32)
    assert admin_session_ended(ctx, "c" * 32)
    end_admin_session(ctx, "c" * 32, first + KEPT + timedelta(minutes=2))  # twice is once
    assert timedelta(seconds=MAX_AGE_SECONDS) < KEPT


def test_the_cookie_is_secure_where_the_public_url_is_https(engine: Engine) -> None:
    ctx = Context(engine=engine, settings=admin_settings(base_url="https://agora.test"))
    with serve(ctx) as site:
        form = site.get("/admin/sign-in")
    assert "secure" in _cookie_header(form.headers.get_list("set-cookie"))


def test_every_post_needs_the_sessions_csrf_token(ctx: Context) -> None:
    with serve(ctx) as site:
        # The sign-in form is refused without the session it was shown under.
        form = site.get("/admin/sign-in")
        token = csrf_of(form)
        site.client.cookies.clear()
        refused = site.post("/admin/sign-in", data={"csrf": token, "key": API_KEY})
        assert refused.status_code == 403
        assert COOKIE not in refused.headers.get("set-cookie", "")

        csrf = sign_in(site)
        posts = {
            "/admin/lookup": {"address": "someone@example.org"},
            "/admin/unknown": {"one": "sent:0000", "outcome": "sent"},
            "/admin/sign-out": {},
        }
        for url, fields in posts.items():
            for bad in ({}, {"csrf": ""}, {"csrf": "0" * 64}, {"csrf": token}):
                answer = site.post(url, data={**fields, **bad})
                assert answer.status_code == 403, (url, bad)
                assert "Nothing was changed" in answer.text
        assert site.get("/admin").status_code == 200  # still signed in: sign-out was refused

        # A cookie that was tampered with, or signed under another API key, is no session.
        signed = site.client.cookies[COOKIE]
        site.client.cookies.set(COOKIE, signed[:-2] + ("AA" if signed[-2:] != "AA" else "BB"))
        assert site.get("/admin").status_code == 303
        site.client.cookies.set(COOKIE, signed)
        assert (
            site.post("/admin/lookup", data={"csrf": csrf, "address": "x@example.org"}).status_code
            == 200
        )

    rotated = Context(engine=ctx.engine, settings=admin_settings(api_key="another-key-0123456789"))
    with serve(rotated) as site:
        site.client.cookies.set(COOKIE, signed)
        assert site.get("/admin").status_code == 303
        assert (
            site.post("/admin/lookup", data={"csrf": csrf, "address": "x@example.org"}).status_code
            == 403
        )


def test_the_charts_draw_the_numbers_of_the_history(ctx: Context) -> None:
    history = make_history(ctx)
    day = history.first_day
    clock = Clock(moment(day + timedelta(days=10)))
    with serve(ctx, clock) as site:
        sign_in(site)
        page = site.get("/admin", params={"from": at(day, -1), "to": at(day, 5)})
    assert page.status_code == 200, page.text
    points = chart_points(page.text)
    days = [at(day, n) for n in range(-1, 6)]
    expected: dict[str, dict[str, float]] = {
        "sent": {at(day, 0): 3, at(day, 1): 2},
        "deferred": {at(day, 1): 1},
        "blocked-not-unsubscribed": {at(day, 0): 1},
        "bounced": {at(day, 2): 1},
        "complaints": {at(day, 2): 1},
    }
    for series, values in expected.items():
        drawn = {d: points[(series, d)] for d in days}
        assert drawn == {d: values.get(d, 0) for d in days}, series
    # Acceptance: of the 3 invitations sent on day 1, a1's was accepted; none of day 2's;
    # days without invitations have no point.
    acceptance = {d: v for (series, d), v in points.items() if series == "acceptance"}
    assert acceptance == pytest.approx({at(day, 0): 1 / 3, at(day, 1): 0.0})
    assert {series for series, _ in points} == {*expected, "acceptance"}
    cells = table_cells(page.text)
    assert cells[("sent", at(day, 0))] == "3"
    assert cells[("acceptance", at(day, 0))] == "33%"
    assert cells[("acceptance", at(day, 3))] == "–"
    assert "5 emails sent" in page.text  # the sent chart's description, for screen readers
    # The legend says which rule in words, with the code the lookup and the ledger give.
    assert "recipient stopped these emails (not-unsubscribed)" in page.text


def test_a_message_put_off_twice_counts_once(ctx: Context) -> None:
    """Bruno's invitation to a1 was put off when he asked (day 2); say the worker put it off
    again before sending, that day and the next: it is one message put off each day, and
    one in all, however many decisions said so."""
    history = make_history(ctx)
    day = history.first_day
    with ctx.engine.begin() as connection:
        (deferral,) = [
            found
            for found in connection.execute(select(decisions)).all()
            if any(v[:2] == ["recipient-quota", "defer"] for v in found.verdicts)
        ]
        again = {k: v for k, v in deferral._mapping.items() if k != "id"}
        for later in (timedelta(hours=2), DAY):
            connection.execute(
                decisions.insert().values(
                    {**again, "stage": "send", "decided_at": deferral.decided_at + later}
                )
            )
    with serve(ctx, Clock(moment(day + timedelta(days=10)))) as site:
        sign_in(site)
        page = site.get("/admin", params={"from": at(day, 0), "to": at(day, 3)})
    assert page.status_code == 200, page.text
    points = chart_points(page.text)
    assert [points[("deferred", at(day, n))] for n in range(4)] == [0, 1, 1, 0]
    assert "; 1 message put off to share a later email" in page.text


def test_the_charts_speak_french_and_default_to_thirty_days(ctx: Context) -> None:
    history = make_history(ctx)
    clock = Clock(moment(history.first_day + DAY * 3))
    with serve(ctx, clock) as site:
        sign_in(site)
        page = site.get("/admin", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert page.status_code == 200
    assert '<html lang="fr">' in page.text
    assert "Activité par jour" in page.text
    assert "2 mars" in page.text
    points = chart_points(page.text)
    sent_days = sorted(d for series, d in points if series == "sent")
    assert len(sent_days) == 30
    assert sent_days[-1] == at(history.first_day, 3)  # up to today
    assert points[("sent", at(history.first_day, 0))] == 3
    # Shares as French writes them, with a no-break space before the sign.
    assert table_cells(page.text)[("acceptance", at(history.first_day, 0))] == "33\u00a0%"
    assert "le destinataire a arrêté ces e-mails (not-unsubscribed)" in page.text


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ({"from": "yesterday"}, "Choose each day as a date"),
        ({"from": "2026-03-05", "to": "2026-03-01"}, "must not come after"),
        ({"from": "2024-01-01", "to": "2026-03-01"}, "at most 366 days"),
        ({"to": "0001-01-01"}, "between the years 1970 and 9000"),
        ({"from": "9999-12-31", "to": "9999-12-31"}, "between the years 1970 and 9000"),
    ],
)
def test_a_bad_range_is_refused_plainly(ctx: Context, query: dict[str, str], words: str) -> None:
    with serve(ctx) as site:
        sign_in(site)
        page = site.get("/admin", params=query)
    assert page.status_code == 400
    assert words in page.text


def test_every_admin_page_speaks_french(ctx: Context) -> None:
    history = make_history(ctx)
    french = {"Accept-Language": "fr"}
    with serve(ctx) as site:
        form = site.get("/admin/sign-in", headers=french)
        assert "Se connecter aux pages d'administration" in form.text
        csrf = sign_in(site)
        pages = {
            "/admin/lookup": "Recherche d'un destinataire",
            "/admin/unknown": "Aucun e-mail n'est incertain.",
            "/admin/ledger": "Le journal est intact",
        }
        shown = {url: site.get(url, headers=french) for url in pages}
        found = site.post(
            "/admin/lookup",
            data={"csrf": csrf, "address": history.people["a2"]},
            headers=french,
        )
        refused = site.post("/admin/lookup", data={"address": "x@example.org"}, headers=french)
    for url, words in pages.items():
        assert shown[url].status_code == 200
        assert '<html lang="fr">' in shown[url].text
        assert words in shown[url].text, url
    assert "Exclu des envois" in found.text
    assert "oui, depuis le" in found.text
    assert "Membre mis en cause" in found.text  # a2 reported Ana's email as spam
    # Stored codes read in French, the code beside for matching with the ledger.
    assert 'autorisé <span class="mono">allow</span>' in found.text
    assert 'envoyé <span class="mono">sent</span>' in found.text
    assert "avant l'envoi" in found.text or "avant l&#39;envoi" in found.text
    assert "Rien n'a été modifié." in refused.text
