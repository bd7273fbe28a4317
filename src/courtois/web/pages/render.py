"""Server-rendered pages: Jinja2 with autoescaping, in the reader's language, and the
headers every page carries.

No page needs JavaScript, a cookie or anything from another origin. The only style is one
inline stylesheet, allowed by its hash in the Content-Security-Policy, so even injected
markup could neither run a script, load anything, be framed nor post elsewhere.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime
from functools import cache, lru_cache
from importlib.resources import files
from typing import Any, Protocol

from babel.dates import format_date, format_time
from babel.numbers import format_decimal
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from courtois.config import Settings
from courtois.delivery.elision import after
from courtois.delivery.i18n import install_translations
from courtois.delivery.render import member_list
from courtois.delivery.text import clean_name, one_line
from courtois.policy.rules.strict_eu import members_send_themselves
from courtois.web.pages.i18n import choose_locale, translations

CSS = files("courtois.web.pages").joinpath("templates", "pages.css").read_text("utf-8")
_CSS_HASH = base64.b64encode(hashlib.sha256(CSS.encode("utf-8")).digest()).decode("ascii")

HEADERS = {
    # Tokens ride in the URL: no Referer may carry them to anyone, no cache may keep them.
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Vary": "Accept-Language",
}


def when(value: datetime | None, locale: str) -> str:
    """A date and time as people read them in this language, in UTC."""
    if value is None:
        return ""
    moment = value.astimezone(UTC)
    clock = format_time(moment, "short", tzinfo=UTC, locale=locale)
    return f"{_long_date(moment.date(), locale)}, {clock} UTC"


def day(value: date | datetime | None, locale: str) -> str:
    """A date as people read it in this language."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(UTC).date()
    return _long_date(value, locale)


def _long_date(value: date, locale: str) -> str:
    """CLDR's long date, but French writes the first of the month "1er" ("le 1er décembre"),
    which CLDR's pattern does not."""
    text = format_date(value, "long", locale=locale)
    if value.day == 1 and locale.startswith("fr") and text.startswith("1 "):
        return "1er" + text[1:]
    return text


def _instant(value: str | datetime) -> datetime | None:
    """An instant kept as ISO text (a verdict's retry time, in the ledger's JSON)."""
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None


@cache
def environment(locale: str) -> Environment:
    """One template environment per language, autoescaping everything it renders."""
    env = Environment(
        loader=PackageLoader("courtois.web.pages", "templates"),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    install_translations(env, translations(locale))
    env.filters["when"] = lambda value: when(value, locale)
    env.filters["day"] = lambda value: day(value, locale)
    env.filters["instant"] = lambda value: when(_instant(value), locale)
    env.filters["name"] = clean_name
    # Several names as one phrase, written as the emails write them ("Ana, Bo and Cy").
    env.filters["names"] = lambda names: member_list([clean_name(n) for n in names], locale)
    # An email's inviting members as the pages list them (`_labels.html`'s `members`): the
    # names still held, and how many of them were erased since, whose names are gone.
    env.filters["named"] = named
    env.filters["former"] = former
    env.filters["place"] = place
    # French elision before a name: `name|after("de")` is "d'Ana" or "de Bruno".
    env.filters["after"] = after
    env.filters["number"] = lambda value: format_decimal(value, locale=locale)
    return env


class _Inviting(Protocol):
    """An inviting member as a recipient's page shows them (`Invited`, `Inviting`)."""

    @property
    def member_id(self) -> str: ...

    @property
    def member_name(self) -> str | None: ...


def named(inviters: Iterable[_Inviting]) -> list[str]:
    """The names of the members not erased, in order."""
    return [i.member_name for i in inviters if i.member_name is not None]


def former(inviters: Iterable[_Inviting]) -> int:
    """How many distinct members among these were erased (a name is no longer there to
    show: the page says "a former member")."""
    return len({i.member_id for i in inviters if i.member_name is None})


_PLACE = re.compile(r"(line|card|entry|record) (\d+)(?:, item (\d+))?")


def place(where: str) -> tuple[str, str, str] | None:
    """An importer's place in its source ("line 4, item 2", "card 3") as its parts, for the
    page to word in its language; None for anything else, shown as it is."""
    found = _PLACE.fullmatch(where)
    if found is None:
        return None
    kind, number, item = found.groups()
    return kind, number, item or ""


def render_page(settings: Settings, locale: str, template: str, **values: Any) -> str:
    """One page's HTML."""
    return _render(
        settings.platform_name, settings.platform_postal_address, locale, template, values
    )


def _render(
    platform: str, postal_address: str, locale: str, template: str, values: dict[str, Any]
) -> str:
    """A page from everything it shows: the settings it reads are passed one by one, so
    that `fixed_page` can key its cache on exactly these."""
    return (
        environment(locale)
        .get_template(template)
        .render(
            lang=locale,
            platform=clean_name(platform),
            postal_address=one_line(postal_address),
            css=Markup(CSS),  # noqa: S704 - the packaged stylesheet, hashed into the CSP
            **values,
        )
    )


@lru_cache(maxsize=256)
def _fixed(platform: str, postal_address: str, locale: str, template: str, by_hand: bool) -> str:
    return _render(platform, postal_address, locale, template, {"by_hand": by_hand})


def page(
    request: Request, locale: str | None, template: str, status: int = 200, **values: Any
) -> HTMLResponse:
    """A page as a response, with the headers every page carries, in `locale` (the
    invitation's) when it is one we have, else in the browser's language."""
    settings: Settings = request.app.state.ctx.settings
    locale = choose_locale(locale, request.headers.get("accept-language"))
    html = render_page(settings, locale, template, **values)
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def fixed_page(
    request: Request, locale: str | None, template: str, *, by_hand: bool
) -> HTMLResponse:
    """`page` for a template that takes no values but `by_hand` (strict-eu's wording: the
    platform sends no email), rendered once per platform name, postal address, language,
    template and wording: the one-click unsubscribe answers every mailbox provider's POST
    with the same page, and rendering it anew took about 60 µs of CPU."""
    settings: Settings = request.app.state.ctx.settings
    locale = choose_locale(locale, request.headers.get("accept-language"))
    html = _fixed(
        settings.platform_name, settings.platform_postal_address, locale, template, by_hand
    )
    return HTMLResponse(html, headers=HEADERS)


def not_found(request: Request) -> HTMLResponse:
    """The one answer to every bad link: forged, tampered, expired, of another scope, or
    naming nothing stored. It depends on nothing but the request's language and the
    policy profile (under strict-eu the stop links come in the texts members send, not in
    emails), so no two of these causes can be told apart."""
    by_hand = members_send_themselves(request.app.state.ctx.settings.policy)
    return page(request, None, "not_found.html", status=404, by_hand=by_hand)


def redirect(url: str) -> RedirectResponse:
    """A 303 to `url`, with the same headers as a page (no Referer with the token in it)."""
    return RedirectResponse(url, status_code=303, headers=HEADERS)
