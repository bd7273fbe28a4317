"""Admin pages as responses: the pages' templates and language, a wider stylesheet, the
same strict headers, and the admin's CSRF token in every form.

The stylesheet is the recipient pages' one followed by the admin additions, as one inline
style allowed by its hash; charts are inline SVG drawn with presentation attributes, so the
Content-Security-Policy still loads and runs nothing.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import date
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qsl

from babel.dates import format_skeleton
from babel.numbers import format_decimal, format_percent
from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from courtois.config import Settings
from courtois.delivery.text import clean_name, one_line
from courtois.web.pages.admin_session import Session, csrf_token
from courtois.web.pages.i18n import choose_locale
from courtois.web.pages.render import CSS, HEADERS, environment

ADMIN_CSS = CSS + files("courtois.web.pages").joinpath("templates", "admin.css").read_text("utf-8")
_HASH = base64.b64encode(hashlib.sha256(ADMIN_CSS.encode("utf-8")).digest()).decode("ascii")

ADMIN_HEADERS = {
    **HEADERS,
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{_HASH}'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Vary": "Accept-Language, Cookie",
}

MAX_BODY = 64 * 1024
MAX_FIELDS = 1024


class BadAdminForm(Exception):
    """A body that is not a small URL-encoded form."""


class Formats:
    """Numbers and days as people read them in one language."""

    def __init__(self, locale: str) -> None:
        self.locale = locale

    def number(self, value: float) -> str:
        """A count, with the language's grouping."""
        return str(format_decimal(value, locale=self.locale))

    def percent(self, value: float | None) -> str:
        """A share as a whole percentage, written as the language writes it ("25%",
        "25 %"); a dash for no value."""
        if value is None:
            return "–"
        return str(format_percent(value, locale=self.locale))

    def short_day(self, value: date) -> str:
        """A day as a short label: "Mar 2", "2 mars"."""
        return str(format_skeleton("MMMd", value, locale=self.locale))


def admin_locale(request: Request) -> str:
    """The admin's browser language, if we have it, else English."""
    return choose_locale(None, request.headers.get("accept-language"))


def admin_page(
    request: Request,
    template: str,
    status: int = 200,
    session: Session | None = None,
    here: str = "",
    **values: Any,
) -> HTMLResponse:
    """One admin page. Forms get the session's CSRF token; `signed_in` shows the menu,
    in which `here` names the current page."""
    settings: Settings = request.app.state.ctx.settings
    locale = admin_locale(request)
    html = (
        environment(locale)
        .get_template(template)
        .render(
            lang=locale,
            platform=clean_name(settings.platform_name),
            postal_address=one_line(settings.platform_postal_address),
            css=Markup(ADMIN_CSS),  # noqa: S704 - the packaged stylesheets, hashed into the CSP
            csrf=csrf_token(settings, session) if session else "",
            signed_in=bool(session and session.signed_in),
            formats=Formats(locale),
            here=here,
            **values,
        )
    )
    return HTMLResponse(html, status_code=status, headers=ADMIN_HEADERS)


async def read_admin_form(request: Request) -> dict[str, list[str]]:
    """Every value of every field of a URL-encoded form (checkboxes repeat their name);
    BadAdminForm for a body too large, of many fields, or of another type."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("application/x-www-form-urlencoded", ""):
        raise BadAdminForm("not a URL-encoded form")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise BadAdminForm("body too large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise BadAdminForm("body too large")
        chunks.append(chunk)
    # Bytes that are not UTF-8 are kept apart (as lone surrogates), not turned into U+FFFD:
    # a value holding them is no text anyone typed, and is read as `NOT_TEXT`.
    text = b"".join(chunks).decode("utf-8", errors="surrogateescape")
    try:
        pairs = parse_qsl(
            text, keep_blank_values=True, max_num_fields=MAX_FIELDS, errors="surrogateescape"
        )
    except ValueError:
        raise BadAdminForm("too many fields") from None
    fields: dict[str, list[str]] = {}
    for name, value in pairs:
        fields.setdefault(_text(name).strip(), []).append(_text(value))
    return fields


# What a field that is not UTF-8 reads as: a NUL, which no field accepts (no address,
# message id, outcome, key or token holds one, `comparable_text`), so each page refuses it
# as it refuses any bad value of that field (a lookup: "not an email address"), instead of
# acting on a look-alike with U+FFFD where the bytes were.
NOT_TEXT = "\x00"


def _text(decoded: str) -> str:
    """A name or value as decoded with surrogate escapes; NOT_TEXT if it held bytes that
    are not UTF-8."""
    try:
        decoded.encode("utf-8")
    except UnicodeEncodeError:
        return NOT_TEXT
    return decoded


def first(fields: dict[str, list[str]], name: str) -> str:
    """A field's first value, or the empty string."""
    return (fields.get(name) or [""])[0]
