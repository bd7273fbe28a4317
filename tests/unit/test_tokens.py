"""Tokens: scoped, signed, expiring, and uninformative when bad."""

from __future__ import annotations

import pytest

from courtois.domain.errors import NotFound
from courtois.tokens import Scope, make_token, read_token

SECRET = b"test-secret-key-0123456789"


def test_a_token_reads_back_in_its_scope() -> None:
    token = make_token(SECRET, Scope.UNSUBSCRIBE, "inv-1")
    assert read_token(SECRET, Scope.UNSUBSCRIBE, token) == "inv-1"


@pytest.mark.parametrize("other", [Scope.WHY, Scope.JOIN])
def test_a_token_is_refused_in_another_scope(other: Scope) -> None:
    token = make_token(SECRET, Scope.UNSUBSCRIBE, "inv-1")
    with pytest.raises(NotFound):
        read_token(SECRET, other, token)


def test_forged_and_tampered_tokens_are_refused_alike() -> None:
    token = make_token(SECRET, Scope.JOIN, "inv-1")
    forged = make_token(b"another-secret-0123456789", Scope.JOIN, "inv-1")
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    messages = set()
    for bad in (forged, tampered, "", "not-a-token"):
        with pytest.raises(NotFound) as caught:
            read_token(SECRET, Scope.JOIN, bad)
        messages.add(caught.value.message)
    assert messages == {"This link is not valid."}


def test_an_expired_token_is_refused() -> None:
    token = make_token(SECRET, Scope.WHY, "inv-1")
    with pytest.raises(NotFound):
        read_token(SECRET, Scope.WHY, token, max_age=-1)
