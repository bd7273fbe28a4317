"""The admin pages' tests: settings with an API key, signing in over real HTTP, reading the
numbers charts carry, and a history of a few days made through the real services."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from html.parser import HTMLParser

import httpx
from pages_site import Site, deliver
from support import T0, add_members, send_invites

from conftest import SECRET
from courtois.config import Settings
from courtois.delivery.bounces import BouncedRecipient, BounceReport
from courtois.services.bounces import apply_bounce
from courtois.services.context import Context
from courtois.services.recipients import mark_joined, unsubscribe

API_KEY = "admin-key-0123456789abcdef"
DAY = timedelta(days=1)
CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


def admin_settings(api_key: str = API_KEY, base_url: str = "http://agora.test") -> Settings:
    """The tests' settings, with an API key (admins sign in with it), served over plain
    HTTP (an HTTPS public URL makes the session cookie Secure, which the tests' plain HTTP
    client would then never send back)."""
    return Settings(secret_key=SECRET, platform_name="Agora", base_url=base_url, api_key=api_key)


def csrf_of(page: httpx.Response) -> str:
    """The CSRF token the page's forms carry."""
    found = CSRF.search(page.text)
    assert found, "no CSRF token on the page"
    return found.group(1)


def sign_in(site: Site, key: str = API_KEY) -> str:
    """Sign in through the form, as a browser does; returns the session's CSRF token."""
    form = site.get("/admin/sign-in")
    assert form.status_code == 200, form.text
    answer = site.post("/admin/sign-in", data={"csrf": csrf_of(form), "key": key})
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/admin"
    page = site.get("/admin/lookup")
    assert page.status_code == 200
    return csrf_of(page)


class _Points(HTMLParser):
    """Every chart point: (series, day) -> value, from the circles' data attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.points: dict[tuple[str, str], float] = {}
        self.cells: dict[tuple[str, str], str] = {}
        self._cell: tuple[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "circle" and "data-value" in found:
            key = (str(found["data-series"]), str(found["data-day"]))
            assert key not in self.points, f"two points for {key}"
            self.points[key] = float(str(found["data-value"]))
        if tag == "td" and "data-series" in found:
            self._cell = (str(found["data-series"]), str(found["data-day"]))

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self.cells[self._cell] = self.cells.get(self._cell, "") + data

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._cell = None


def chart_points(html: str) -> dict[tuple[str, str], float]:
    """Every point the page's charts draw."""
    parser = _Points()
    parser.feed(html)
    return parser.points


def table_cells(html: str) -> dict[tuple[str, str], str]:
    """Every number of the charts' tables, as shown."""
    parser = _Points()
    parser.feed(html)
    return {key: value.strip() for key, value in parser.cells.items()}


@dataclass(frozen=True)
class History:
    """Who was invited in `make_history`, and the days things happened."""

    first_day: date
    people: dict[str, str]


def make_history(ctx: Context) -> History:
    """Four days of a small platform, at chosen instants, through the real services:
    - day 1: Ana invites a1, a2, a3 and u (who had unsubscribed: refused); 3 emails leave;
    - day 2: Bruno invites a1 (emailed yesterday: deferred into a later digest), b1 and b2;
      2 emails leave;
    - day 3: a2 reports Ana's email as spam; a3's address bounces for good;
    - day 4: a1 joins (Ana's invitation accepted; Bruno's, still waiting, is stopped).
    """
    people = {name: f"{name}@example.org" for name in ("a1", "a2", "a3", "u", "b1", "b2")}
    add_members(ctx)
    unsubscribe(ctx, ctx.digest_email(people["u"]), T0 - timedelta(hours=1))
    send_invites(ctx, "ana", [people[p] for p in ("a1", "a2", "a3", "u")], T0)
    assert len(deliver(ctx, T0 + timedelta(minutes=11))) == 3
    send_invites(ctx, "bruno", [people[p] for p in ("a1", "b1", "b2")], T0 + DAY)
    assert len(deliver(ctx, T0 + DAY + timedelta(minutes=11))) == 2
    complaint = BounceReport("arf", "complaint", (BouncedRecipient(people["a2"], "", False),))
    assert apply_bounce(ctx, complaint, T0 + 2 * DAY)["complaints"] == 1
    bounce = BounceReport("dsn", "hard_bounce", (BouncedRecipient(people["a3"], "5.1.1", True),))
    assert apply_bounce(ctx, bounce, T0 + 2 * DAY + timedelta(hours=1))["bounced"] == 1
    assert mark_joined(ctx, ctx.digest_email(people["a1"]), T0 + 3 * DAY)["accepted"] == 1
    return History(T0.date(), people)


def at(day: date, offset: int) -> str:
    """The ISO name of the day `offset` days after `day`."""
    return (day + timedelta(days=offset)).isoformat()


def moment(day: date, hours: int = 12) -> datetime:
    """An instant within a day (the app's clock for a page)."""
    return datetime(day.year, day.month, day.day, hours, tzinfo=T0.tzinfo)
