"""The ASCII fast path of parse_address gives exactly email-validator's answer, under RFC
5321's cap of 64 octets on the local part (which email-validator checks in strict mode
only, and in characters).

The fast path only ever accepts; whatever it accepts, the reference must accept with the
same normal form, and parse_address as a whole (fast path, then email-validator and the
cap) must answer as the reference does. Both are exercised on random and on structured
near-miss input (dots, dashes, R-LDH labels, numeric and special-use top-level domains,
long parts, local parts either side of 64).
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from hypothesis import example, given, settings
from hypothesis import strategies as st

from courtois.domain.addresses import _plain_ascii, matching_key, parse_address
from courtois.domain.errors import InvalidAddress

ATEXT = "abcXYZ019_!#$%&'*+-/=?^`{|}~"
LABEL_CHARS = "abzAZ09-"
TLDS = [
    "com",
    "org",
    "COM",
    "test",
    "local",
    "localhost",
    "onion",
    "arpa",
    "invalid",
    "c0m",
    "123",
    "x",
    "xn--p1ai",
    "ab--cd",
    "co-",
]


def reference(text: str) -> str | None:
    """email-validator's normal form, None when it refuses the address or when the normal
    form's local part is longer than 64 octets (RFC 5321, section 4.5.3.1.1)."""
    try:
        normalized = validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError:
        return None
    if len(normalized.rpartition("@")[0].encode("utf-8")) > 64:
        return None
    return normalized


def parsed(text: str) -> str | None:
    try:
        return parse_address(text).normalized
    except InvalidAddress:
        return None


def agree(text: str) -> None:
    expected = reference(text)
    fast = _plain_ascii(text)
    if fast is not None:
        assert expected is not None, text
        assert fast == (expected, matching_key(expected)), text
    # parse_address's own rules besides the cap (surrounding space stripped, 254
    # characters as typed, no encoded word) are tested in test_addresses, not here.
    if text == text.strip() and len(text) <= 254 and "=?" not in text:
        assert parsed(text) == expected, text


labels = st.text(alphabet=LABEL_CHARS, min_size=1, max_size=66)
structured = st.builds(
    lambda local, middle, tld: f"{local}@{'.'.join([*middle, tld])}",
    st.text(alphabet=ATEXT + ".", min_size=1, max_size=70),
    st.lists(labels, min_size=0, max_size=4),
    st.sampled_from(TLDS),
)


@settings(max_examples=1500)
@given(structured)
@example("ana@example.org")
@example("Ana.Lima+tag@Sub.Example.COM")
@example("a..b@example.org")
@example(".a@example.org")
@example("a@ab--cd.example.org")
@example("a@xn--p1ai.example.org")
@example("a@example.123")
@example("a@-example.org")
@example("a@example-.org")
@example("a@mail.test")
@example("a@" + "a" * 64 + ".org")
@example("a" * 65 + "@example.org")
@example("a" * 64 + "@example.org")
@example("a" * 240 + "@example.org")
@example("Ana.Lima+" + "x" * 56 + "@Example.ORG")
def test_fast_path_agrees_on_structured_addresses(text: str) -> None:
    agree(text)


@settings(max_examples=1500)
@given(st.text(alphabet=ATEXT + LABEL_CHARS + '.@ "()[]\\,;:é', max_size=40))
def test_fast_path_agrees_on_arbitrary_text(text: str) -> None:
    agree(text)


@settings(max_examples=300)
@given(
    st.text(alphabet="aZ9.+é", min_size=28, max_size=70),
    st.sampled_from(["example.org", "Example.ORG", "exämple.fr"]),
)
@example("é" * 32, "example.org")
@example("é" * 33, "example.org")
def test_parse_address_agrees_either_side_of_64_octets(local: str, domain: str) -> None:
    """Local parts around the cap, ASCII and not: the fast path takes only those within
    it, and parse_address refuses exactly those the reference refuses."""
    agree(f"{local}@{domain}")


def test_the_fast_path_takes_the_common_case() -> None:
    """Without this the agreement tests above could pass by never taking the fast path."""
    fast = _plain_ascii("Ana.Lima+tag@Sub.Example.COM")
    assert fast == ("Ana.Lima+tag@sub.example.com", "ana.lima+tag@sub.example.com")
    assert _plain_ascii("a@mail.test") is None
    assert parse_address("Ana.Lima+tag@Sub.Example.COM").key == "ana.lima+tag@sub.example.com"
