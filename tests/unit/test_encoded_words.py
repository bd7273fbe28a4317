"""RFC 2047 encoded words: at most 75 characters each, cut after a space wherever one is in
reach, and decoded back to exactly the text, in Subject and in From, on both the composed
and the directly written email."""

from __future__ import annotations

from dataclasses import replace
from email.header import decode_header, make_header

import pytest
from compose_support import (
    MEMBER_TEXT,
    SETTINGS,
    assert_encoded_words_fit,
    boundless,
    message,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from courtois.delivery.compose import Carried, compose, make_tokens, to_bytes
from courtois.delivery.encoded_words import MAX_WORD, encoded_words
from courtois.delivery.skeleton import compose_wire


def decoded(words: list[str]) -> str:
    """As RFC 2047 reads encoded words: the whitespace between two of them is no text."""
    return str(make_header(decode_header(" ".join(words))))


@settings(max_examples=300, deadline=None)
@given(text=MEMBER_TEXT.filter(bool) | st.text(min_size=1), first=st.integers(24, 100))
def test_any_text_is_encoded_in_words_that_fit_and_decode_to_it(text: str, first: int) -> None:
    words = encoded_words(text, first)
    assert decoded(words) == text
    assert len(words[0]) <= min(first, MAX_WORD)
    assert all(len(word) <= MAX_WORD for word in words)
    # A word is cut after its last space; only a run without one is cut where it must be.
    pieces = [str(make_header(decode_header(word))) for word in words]
    for piece in pieces[:-1]:
        assert piece.endswith(" ") or " " not in piece, pieces


# The names of the audit: the stdlib wrote them as words of 76 and 77 characters.
PLATFORM = "Association of Amateur Astronomers, Stargazers & Night-Sky Photographers"
NAMES = [
    ('g̴o̵ 🇫🇷, Ana "The Boss" \\ Lima, <ceo@bank.example>', SETTINGS.platform_name),
    ("Ana", PLATFORM),
    ("Émile Zola " * 12, SETTINGS.platform_name),
    ("李 " * 40, "Agora 🎉"),
    ("Ána Lima", PLATFORM + " é"),
]


@pytest.mark.parametrize(("name", "platform"), NAMES)
@pytest.mark.parametrize("reply_to", [None, "ana@member.test"])
@pytest.mark.parametrize("locale", ["en", "fr"])
def test_from_and_subject_are_words_that_fit(
    name: str, platform: str, reply_to: str | None, locale: str
) -> None:
    named = replace(SETTINGS, platform_name=platform)
    outgoing = message(Carried("inv-1", name, "hi", reply_to=reply_to), locale=locale)
    tokens = make_tokens(named, outgoing.invitation_ids)
    composed = compose(named, outgoing, tokens)
    raw = to_bytes(composed)
    assert_encoded_words_fit(raw)
    # The email written directly (and from a skeleton) is the composed one, byte for byte.
    assert boundless(compose_wire(named, outgoing, tokens).raw) == boundless(raw)
    head = raw.split(b"\r\n\r\n")[0].replace(b"\r\n ", b" ").decode("ascii")
    fields = dict(line.split(": ", 1) for line in head.split("\r\n"))
    subject = str(make_header(decode_header(fields["Subject"])))
    assert subject == str(composed["Subject"])
    sender = fields["From"].removesuffix(f" <{named.mail_from}>")
    assert str(make_header(decode_header(sender))).startswith(" ".join(name.split())[:20])
