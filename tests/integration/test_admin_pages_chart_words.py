"""What screen readers hear of the admin charts (each SVG's `title`, `desc` and points'
tooltips): every character escaped once, counts in the singular or plural their number
takes in the page's language. Over real HTTP, read with an XML parser as an SVG reader
would."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from admin_support import admin_settings, at, make_history, moment, sign_in
from defusedxml.ElementTree import fromstring
from live_app import sqlite_only
from pages_site import Clock, serve

from courtois.config import Settings
from courtois.services.context import Context

pytestmark = sqlite_only

SVG = "{http://www.w3.org/2000/svg}"
FRENCH = {"Accept-Language": "fr"}


@pytest.fixture
def settings() -> Settings:
    """This module's settings: with an API key, so the admin pages are on."""
    return admin_settings()


def _charts(html: str) -> dict[str, ET.Element]:
    """Each chart of the page, parsed as the XML it is."""
    found = re.findall(r'<svg xmlns="http://www.w3.org/2000/svg".*?</svg>', html, re.S)
    charts = {}
    for text in found:
        root = fromstring(text)
        charts[str(root.get("id"))] = root
    return charts


def _said(chart: ET.Element, tag: str) -> str:
    element = chart.find(SVG + tag)
    assert element is not None
    return "".join(element.itertext())


def _tips(chart: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in chart.iter(SVG + "title") if t.get("id") is None]


def _pages(ctx: Context, first: int, last: int) -> tuple[str, str]:
    history = make_history(ctx)
    day = history.first_day
    with serve(ctx, Clock(moment(day + timedelta(days=10)))) as site:
        sign_in(site)
        days = {"from": at(day, first), "to": at(day, last)}
        english = site.get("/admin", params=days)
        french = site.get("/admin", params=days, headers=FRENCH)
    assert (english.status_code, french.status_code) == (200, 200)
    return english.text, french.text


def test_chart_texts_are_escaped_once(ctx: Context) -> None:
    english, french = map(_charts, _pages(ctx, 0, 3))
    acceptance = english["chart-acceptance"]
    assert _said(acceptance, "title") == "Share of each day's invitations accepted since"
    assert "the recipient's quota." in _said(english["chart-sent"], "desc")
    assert "pour partir plus tard avec d'autres" in _said(french["chart-sent"], "desc")
    for charts in (english, french):
        for chart in charts.values():
            for text in (_said(chart, "title"), _said(chart, "desc"), *_tips(chart)):
                assert "&" not in text, text


def test_chart_descriptions_count_in_the_singular_and_the_plural(ctx: Context) -> None:
    # Days 1 to 4: 5 emails sent, 1 deferred, 1 bounce, 1 complaint, 1 accepted.
    english, french = map(_charts, _pages(ctx, 0, 3))
    said = {name: _said(chart, "desc") for name, chart in english.items()}
    assert (
        ": 5 emails sent (a digest counts once); 1 message put off to share " in said["chart-sent"]
    )
    assert said["chart-trouble"].endswith(
        ": 1 invitation not delivered (refused for good or reported dead), 1 spam complaint."
    )
    assert ", 1 was accepted since." in said["chart-acceptance"]
    dit = {name: _said(chart, "desc") for name, chart in french.items()}
    assert "5 e-mails envoyés" in dit["chart-sent"]
    assert "1 message reporté pour partir" in dit["chart-sent"]
    assert dit["chart-trouble"].endswith(
        "\u00a0: 1 invitation non distribuée (refusée définitivement ou adresse signalée "
        "comme inexistante), 1 plainte pour spam."
    )
    assert ", 1 a été acceptée depuis." in dit["chart-acceptance"]


def test_nothing_is_counted_in_the_plural_in_english_and_the_singular_in_french(
    ctx: Context,
) -> None:
    english, french = map(_charts, _pages(ctx, -9, -8))
    said = _said(english["chart-trouble"], "desc")
    assert said.endswith(
        ": 0 invitations not delivered (refused for good or reported dead), 0 spam complaints."
    )
    assert ": 0 emails sent (a digest counts once); 0 messages put off" in _said(
        english["chart-sent"], "desc"
    )
    dit = _said(french["chart-trouble"], "desc")
    assert dit.endswith(
        "\u00a0: 0 invitation non distribuée (refusée définitivement ou adresse signalée "
        "comme inexistante), 0 plainte pour spam."
    )
    assert "0 e-mail envoyé (" in _said(french["chart-sent"], "desc")


def test_a_points_tooltip_is_punctuated_as_its_language_writes(ctx: Context) -> None:
    english, french = map(_charts, _pages(ctx, 0, 1))
    assert _tips(english["chart-sent"])[0] == "Mar 2: Emails sent 3"
    assert _tips(french["chart-sent"])[0] == "2 mars\u00a0: E-mails envoyés 3"
