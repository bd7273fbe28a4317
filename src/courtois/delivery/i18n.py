"""Gettext catalogues for the emails, compiled from the packaged `.po` files when first used.

The `.po` files are the only source: Babel compiles each into memory once per process, so
there is no build step and no `.mo` file to forget to regenerate.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from io import BytesIO

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from courtois.domain.members import SUPPORTED_LOCALES

DOMAIN = "courtois"


def catalogue_source(locale: str, domain: str = DOMAIN) -> bytes:
    """The `.po` file of one supported language and domain (the emails' by default)."""
    if locale not in SUPPORTED_LOCALES:
        raise ValueError(f"No catalogue for locale {locale!r}.")
    return files("courtois").joinpath("locale", locale, "LC_MESSAGES", f"{domain}.po").read_bytes()


@cache
def translations(locale: str, domain: str = DOMAIN) -> Translations:
    """The compiled catalogue of one language (fuzzy entries left out, as msgfmt does)."""
    catalog = read_po(BytesIO(catalogue_source(locale, domain)), locale=locale, domain=domain)
    compiled = BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=domain)
