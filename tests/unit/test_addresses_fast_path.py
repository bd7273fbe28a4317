"""The ASCII fast path of parse_address gives exactly email-validator's answer.

The fast path only ever accepts; whatever it accepts, email-validator must accept with the
same normal form. Both sides are exercised on random and on structured near-miss input
(dots, dashes, R-LDH labels, numeric and special-use top-level domains, long parts).
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from hypothesis import example, given, settings
from hypothesis import strategies as st

from courtois.domain.addresses import _plain_ascii, matching_key, parse_address

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
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def agree(text: str) -> None:
    fast = _plain_ascii(text)
    if fast is not None:
        expected = reference(text)
        assert expected is not None, text
        assert fast == (expected, matching_key(expected)), text


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
def test_fast_path_agrees_on_structured_addresses(text: str) -> None:
    agree(text)


@settings(max_examples=1500)
@given(st.text(alphabet=ATEXT + LABEL_CHARS + '.@ "()[]\\,;:é', max_size=40))
def test_fast_path_agrees_on_arbitrary_text(text: str) -> None:
    agree(text)


def test_the_fast_path_takes_the_common_case() -> None:
    """Without this the agreement tests above could pass by never taking the fast path."""
    fast = _plain_ascii("Ana.Lima+tag@Sub.Example.COM")
    assert fast == ("Ana.Lima+tag@sub.example.com", "ana.lima+tag@sub.example.com")
    assert _plain_ascii("a@mail.test") is None
    assert parse_address("Ana.Lima+tag@Sub.Example.COM").key == "ana.lima+tag@sub.example.com"
