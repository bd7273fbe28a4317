"""The recipient pages' languages: the catalogue holds exactly what the page templates say
(all of it translated into French), and the language is the invitation's, then the
browser's, then English."""

from __future__ import annotations

from importlib.resources import files
from io import BytesIO

import pytest
from babel.messages.pofile import read_po
from catalogue_support import (
    french_spacing_faults,
    held_messages,
    template_messages,
    translations,
    variables,
)

from courtois.domain.members import SUPPORTED_LOCALES
from courtois.web.pages.i18n import catalogue_source, choose_locale, from_accept_language


def _template_messages() -> dict[str, tuple[str, ...]]:
    return template_messages("courtois.web.pages", ("html",))


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_the_catalogue_holds_exactly_the_page_messages(locale: str) -> None:
    used = _template_messages()
    assert len(used) > 50
    held = held_messages(catalogue_source(locale))
    assert sorted(held) == sorted(used)
    if locale == "en":
        return
    for msgid, message in held.items():
        strings = translations(message)
        assert all(strings), f"untranslated: {msgid!r}"
        for string in strings:
            assert variables(string) == variables(" ".join(used[msgid])), string
        assert "fuzzy" not in message.flags


def test_no_page_message_is_left_to_the_emails_catalogue() -> None:
    """The pages' words live in their own domain: the emails' catalogue test stays exact."""
    emails = read_po(
        BytesIO(
            files("courtois").joinpath("locale", "en", "LC_MESSAGES", "courtois.po").read_bytes()
        )
    )
    email_ids = {m.id if isinstance(m.id, str) else m.id[0] for m in emails if m.id}
    assert "Why you got this email" not in email_ids
    assert "Why you got this email" in _template_messages()


def test_the_french_page_catalogue_has_no_breakable_space_before_double_punctuation() -> None:
    """As the emails' catalogue: U+00A0 before ":", U+202F before ";", "!" and "?"; and
    U+202F inside guillemets, which an ordinary space would let part from their words."""
    for message in held_messages(catalogue_source("fr")).values():
        for string in translations(message):
            assert french_spacing_faults(string) == [], string


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("fr", "fr"),
        ("fr-CA,fr;q=0.9,en;q=0.8", "fr"),
        ("de-DE, en;q=0.3, fr;q=0.7", "fr"),
        ("de, en-GB;q=0.9", "en"),
        ("en;q=0.5, fr;q=0.5", "en"),  # equal weights: the first listed
        ("fr;q=0, en;q=0.1", "en"),  # q=0 means "not this one"
        ("de, it", None),
        ("fr;q=abc, en", "en"),
        ("*", None),
    ],
)
def test_the_browser_language(header: str | None, expected: str | None) -> None:
    assert from_accept_language(header) == expected


def test_the_invitations_language_comes_first() -> None:
    assert choose_locale("fr", "en") == "fr"
    assert choose_locale("en", "fr") == "en"
    assert choose_locale(None, "fr-BE") == "fr"
    assert choose_locale("de", "fr") == "fr"
    assert choose_locale(None, None) == "en"
