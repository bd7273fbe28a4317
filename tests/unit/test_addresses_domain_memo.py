"""Judging each domain once changes no answer of parse_address, and its memory stays bounded.

The fast path remembers, per domain as written, whether it is a plain host name and its
lower-case form; an answer must not depend on which addresses came before it.
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from courtois.domain import addresses
from courtois.domain.addresses import parse_address
from courtois.domain.errors import InvalidAddress

CASES = [
    "ana@Example.ORG",
    "ana@example.org",
    "Ana.Lima@EXAMPLE.org",
    "a..b@example.org",
    ".a@Example.ORG",
    "example.org",
    "ana@b@example.org",
    "@example.org",
    "ana@",
    "ana@mail.test",
    "ana@MAIL.Test",
    "x" * 65 + "@example.org",
    "x" * 64 + "@Example.org",
    "ana@xn--exmple-cua.org",
    "ana@exämple.org",
]


def reference(text: str) -> str | None:
    """email-validator's answer under RFC 5321's cap of 64 octets on the local part."""
    try:
        normalized = validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError:
        return None
    return normalized if len(normalized.rpartition("@")[0].encode()) <= 64 else None


def answers(cases: list[str]) -> list[str | None]:
    found: list[str | None] = []
    for text in cases:
        try:
            found.append(parse_address(text).normalized)
        except InvalidAddress:
            found.append(None)
    return found


def test_answers_do_not_depend_on_what_came_before() -> None:
    addresses._plain_domain.cache_clear()
    first = answers(CASES)
    again = answers(CASES)  # every domain remembered now
    addresses._plain_domain.cache_clear()
    backwards = answers(CASES[::-1])[::-1]
    assert first == again == backwards
    assert first == [reference(text) for text in CASES]


def test_the_memo_stays_bounded() -> None:
    addresses._plain_domain.cache_clear()
    for number in range(addresses._KNOWN_DOMAINS + 50):
        parse_address(f"ana@host{number}.example.org")
    assert addresses._plain_domain.cache_info().currsize == addresses._KNOWN_DOMAINS
    assert parse_address("Ana@Host1.Example.ORG").normalized == "Ana@host1.example.org"
