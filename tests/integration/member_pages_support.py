"""The member pages under test: the app served on a free port, a member signed in through a
real sign-in link, and a client that keeps the session cookie and posts each form with the
page's CSRF token, as a browser would."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from html import unescape
from typing import Any

import httpx
from live_app import LiveSite, live_site
from sqlalchemy import select

from conftest import T0
from courtois.domain.contacts import ContactInput
from courtois.services.contacts import import_contacts
from courtois.services.context import Context
from courtois.services.members import register_member
from courtois.store.tables import contacts
from courtois.tokens import make_sign_in_token
from courtois.web.pages.member_session import COOKIE

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class MemberBrowser:
    """One member's HTTP client on the member pages."""

    site: LiveSite
    http: httpx.Client
    member_id: str

    @property
    def ctx(self) -> Context:
        return self.site.ctx

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def csrf(self) -> str:
        """The token the dashboard's forms carry."""
        found = CSRF.search(self.get("/member/").text)
        assert found, "no CSRF token on the dashboard"
        return found.group(1)

    def post(
        self, path: str, data: dict[str, Any] | None = None, *, token: str | None = None, **kw: Any
    ) -> httpx.Response:
        """Post a form with this session's CSRF token (or the one given)."""
        fields = {"csrf": self.csrf() if token is None else token, **(data or {})}
        return self.http.post(path, data=fields, **kw)


def add_member(ctx: Context, member_id: str = "ana", locale: str = "en") -> None:
    """A member of the platform."""
    register_member(ctx, member_id, f"{member_id}@members.example", "Ana Lima", locale, T0)


def sign_in_link(site: LiveSite, member_id: str) -> str:
    """The path of a fresh sign-in link, as `POST /v1/members/{id}/login-link` makes it."""
    return f"/member/sign-in/{make_sign_in_token(site.ctx.settings.secret, member_id)}"


SIGN_IN_FORM = re.compile(r'<form method="post" action="(/member/sign-in/[^"]+)"')


def follow_sign_in_link(http: httpx.Client, path: str) -> httpx.Response:
    """Open a sign-in link and press its "Continue as ..." button, as a browser does (the
    POST carries this origin); the link's page itself when it shows no such button."""
    shown = http.get(path)
    found = SIGN_IN_FORM.search(shown.text) if shown.status_code == 200 else None
    if found is None:
        return shown
    origin = f"{shown.url.scheme}://{shown.url.netloc.decode()}"
    return http.post(
        shown.url.join(unescape(found.group(1))),
        headers={"Origin": origin, "Sec-Fetch-Site": "same-origin"},
    )


@contextmanager
def member_session(site: LiveSite, member_id: str = "ana") -> Iterator[MemberBrowser]:
    """A client signed in as the member through a sign-in link."""
    with httpx.Client(base_url=site.base_url, timeout=30, follow_redirects=False) as http:
        response = follow_sign_in_link(http, sign_in_link(site, member_id))
        assert response.status_code == 303, response.text
        assert http.cookies.get(COOKIE)
        yield MemberBrowser(site, http, member_id)


@contextmanager
def signed_in(
    ctx: Context, member_id: str = "ana", now: datetime = T0, **settings: Any
) -> Iterator[MemberBrowser]:
    """The site served over `ctx` and the member signed in to it."""
    with live_site(ctx, now, **settings) as site, member_session(site, member_id) as member:
        yield member


def import_some(ctx: Context, member_id: str, count: int, now: datetime = T0) -> None:
    """`count` contacts, named person-000... at example.org, unselected."""
    records = [
        ContactInput(email=f"person-{i:03d}@example.org", name=f"Person {i:03d}", where=f"#{i}")
        for i in range(count)
    ]
    import_contacts(ctx, member_id, records, "test", now)


def contact_ids(ctx: Context, member_id: str, *, selected: bool | None = None) -> list[int]:
    """The member's contact ids in import order (only chosen or unchosen ones if asked)."""
    query = select(contacts.c.id).where(contacts.c.member_id == member_id)
    if selected is not None:
        query = query.where(contacts.c.selected.is_(selected))
    with ctx.engine.connect() as connection:
        return list(connection.execute(query.order_by(contacts.c.id)).scalars())


def shown_ids(html: str) -> list[int]:
    """The contact ids a contact-list page lists."""
    return [int(v) for v in re.findall(r'name="shown" value="(\d+)"', html)]


def hidden(html: str, name: str) -> str:
    """The value of a hidden field of a page's form, as the browser would post it."""
    found = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)"', html)
    assert found, f"no hidden field {name!r}"
    return unescape(found.group(1))


def consent_form(html: str) -> dict[str, str]:
    """The consent form's fields as shown on a preview page, box ticked."""
    fields = {
        name: hidden(html.split('action="/member/invite/send"', 1)[1], name)
        for name in ("note", "locale", "preview_hash", "consent_text", "choice", "key")
    }
    if 'name="reminders" value="1">' in html.split('action="/member/invite/send"', 1)[1]:
        fields["reminders"] = "1"
    return {**fields, "consent": "yes"}
