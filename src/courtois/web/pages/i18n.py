"""The recipient pages' own gettext domain (`pages.po`), and the choice of language.

The pages' messages live apart from the emails' (`courtois.po`), whose catalogue holds
exactly what the email templates say. Like the emails' catalogues, each `.po` file is
compiled in memory on first use: there is no `.mo` file to forget to rebuild.
"""

from __future__ import annotations

from babel.support import Translations

from courtois.delivery import i18n as emails
from courtois.domain.members import SUPPORTED_LOCALES
from courtois.web.pages.weighted import weighted_items

DOMAIN = "pages"
DEFAULT_LOCALE = "en"


def catalogue_source(locale: str) -> bytes:
    """The packaged `pages.po` of one supported language."""
    return emails.catalogue_source(locale, DOMAIN)


def translations(locale: str) -> Translations:
    """One language's compiled catalogue of the pages (compiled once, like the emails')."""
    return emails.translations(locale, DOMAIN)


def _primary(tag: str) -> str:
    return tag.strip().lower().replace("_", "-").split("-")[0]


def from_accept_language(header: str | None) -> str | None:
    """The supported language the browser prefers most (RFC 9110 weights), if any."""
    if not header:
        return None
    best: tuple[float, int, str] | None = None
    for position, (tag, weight) in enumerate(weighted_items(header)):
        language = _primary(tag)
        if weight <= 0 or language not in SUPPORTED_LOCALES:
            continue
        # Highest weight first; among equals, the one listed first.
        rank = (-weight, position, language)
        if best is None or rank < best:
            best = rank
    return best[2] if best else None


def choose_locale(invitation_locale: str | None, accept_language: str | None) -> str:
    """The invitation's language (the one its email was written in), else the browser's,
    else English."""
    if invitation_locale and _primary(invitation_locale) in SUPPORTED_LOCALES:
        return _primary(invitation_locale)
    return from_accept_language(accept_language) or DEFAULT_LOCALE
