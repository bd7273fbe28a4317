"""The recipient pages' languages: the catalogue holds exactly what the page templates say
(all of it translated into French), and the language is the invitation's, then the
browser's, then English."""

from __future__ import annotations

import re
from importlib.resources import files
from io import BytesIO

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from courtois.delivery.elision import ELIDING
from courtois.domain.members import SUPPORTED_LOCALES
from courtois.web.pages.i18n import catalogue_source, choose_locale, from_accept_language


def _template_messages() -> dict[str, tuple[str, ...]]:
    templates = str(files("courtois.web.pages").joinpath("templates"))
    found = extract_from_dir(
        templates,
        method_map=[("**.html", "jinja2")],
        options_map={"**": {"extensions": "jinja2.ext.i18n"}},
    )
    messages: dict[str, tuple[str, ...]] = {}
    for _file, _line, message, _comments, _context in found:
        ids = (message,) if isinstance(message, str) else tuple(message)
        messages[ids[0]] = ids
    return messages


def _variables(text: str) -> set[str]:
    """The variables a sentence uses; a name joined to the French word before it
    (`de_member`: "d'Ana", see `courtois.delivery.elision`) counts as the name."""
    return {_named(variable) for variable in re.findall(r"%\((\w+)\)[sd]", text)}


def _named(variable: str) -> str:
    word, _, name = variable.partition("_")
    return name if name and word in ELIDING else variable


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_the_catalogue_holds_exactly_the_page_messages(locale: str) -> None:
    used = _template_messages()
    assert len(used) > 50
    catalog = read_po(BytesIO(catalogue_source(locale)))
    held = {(m.id if isinstance(m.id, str) else m.id[0]): m for m in catalog if m.id}
    assert sorted(held) == sorted(used)
    if locale == "en":
        return
    for msgid, message in held.items():
        strings = (message.string,) if isinstance(message.string, str) else message.string
        assert all(strings), f"untranslated: {msgid!r}"
        for string in strings:
            assert _variables(string) == _variables(" ".join(used[msgid])), string
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


# French puts a space before ":", ";", "!" and "?": an ordinary one lets a browser wrap the
# line there and leave the mark alone at the start of the next.
_BREAKABLE = re.compile(r"[ \t\n][:;!?]|«[ \t\n]|[ \t\n]»")
_UNSPACED = re.compile(r"\w[:;!?](\s|$)")
# No-break, but not the one French typography puts there.
_WRONG_SPACE = re.compile(r"\u202f:|\u00a0[;!?]")
# What a file is to hold, quoted as written: the keywords an LDIF file starts with.
_LITERAL = re.compile(r"\b(version|dn):")


def test_the_french_page_catalogue_has_no_breakable_space_before_double_punctuation() -> None:
    """As the emails' catalogue: U+00A0 before ":", U+202F before ";", "!" and "?"; and
    U+202F inside guillemets, which an ordinary space would let part from their words."""
    catalog = read_po(BytesIO(catalogue_source("fr")))
    for message in catalog:
        strings = (message.string,) if isinstance(message.string, str) else message.string
        for string in strings if message.id else ():
            assert not _BREAKABLE.search(string), string
            assert not _UNSPACED.search(_LITERAL.sub("", string)), string
            assert not _WRONG_SPACE.search(string), string


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
