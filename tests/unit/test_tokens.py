"""Tokens: scoped, signed, expiring, and uninformative when bad."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode

from courtois.config import Settings
from courtois.domain.errors import InvalidInput, NotFound
from courtois.tokens import CLOCK_SKEW_SECONDS, Scope, make_token, read_token

SECRET = b"test-secret-key-0123456789"


def test_a_token_reads_back_in_its_scope() -> None:
    token = make_token(SECRET, Scope.UNSUBSCRIBE, "inv-1")
    assert read_token(SECRET, Scope.UNSUBSCRIBE, token) == "inv-1"


@pytest.mark.parametrize("other", [Scope.WHY, Scope.JOIN, Scope.SHARED])
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


def _stamped(seconds_from_now: int, scope: Scope = Scope.UNSUBSCRIBE) -> str:
    """A token signed by a host whose clock is this far from ours."""

    class Elsewhere(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) + seconds_from_now

    signer = URLSafeTimedSerializer(SECRET, salt=f"courtois.{scope.value}", signer=Elsewhere)
    return signer.dumps("inv-1")


@pytest.mark.parametrize("ahead", [1, 60, CLOCK_SKEW_SECONDS - 5])
def test_a_token_from_a_clock_a_little_ahead_is_read(ahead: int) -> None:
    """The worker signs, the web server reads: a worker host a few minutes fast must not
    break the unsubscribe link of the email it just sent."""
    assert read_token(SECRET, Scope.UNSUBSCRIBE, _stamped(ahead)) == "inv-1"


@pytest.mark.parametrize("ahead", [CLOCK_SKEW_SECONDS + 5, 30 * 24 * 3600])
def test_a_token_from_further_in_the_future_is_refused(ahead: int) -> None:
    with pytest.raises(NotFound, match=r"This link is not valid\."):
        read_token(SECRET, Scope.UNSUBSCRIBE, _stamped(ahead))


def test_a_token_is_read_until_its_age_runs_out() -> None:
    assert read_token(SECRET, Scope.WHY, _stamped(-3600, Scope.WHY), max_age=3700) == "inv-1"
    with pytest.raises(NotFound):
        read_token(SECRET, Scope.WHY, _stamped(-3600, Scope.WHY), max_age=3500)


def test_a_new_link_key_keeps_old_links_working() -> None:
    old = Settings(secret_key="digest-key-0123456789")
    issued = make_token(old.token_secrets, Scope.UNSUBSCRIBE, "inv-1")
    rotated = Settings(
        secret_key="digest-key-0123456789",
        token_keys="digest-key-0123456789, new-link-key-0123456789",
    )
    assert read_token(rotated.token_secrets, Scope.UNSUBSCRIBE, issued) == "inv-1"
    fresh = make_token(rotated.token_secrets, Scope.UNSUBSCRIBE, "inv-2")
    # New links are signed with the new key only: the old key alone no longer reads them.
    with pytest.raises(NotFound):
        read_token(old.token_secrets, Scope.UNSUBSCRIBE, fresh)
    retired = Settings(secret_key="digest-key-0123456789", token_keys="new-link-key-0123456789")
    assert read_token(retired.token_secrets, Scope.UNSUBSCRIBE, fresh) == "inv-2"
    with pytest.raises(NotFound):
        read_token(retired.token_secrets, Scope.UNSUBSCRIBE, issued)


def test_a_short_link_key_is_refused() -> None:
    with pytest.raises(InvalidInput, match="TOKEN_KEYS"):
        _ = Settings(secret_key="digest-key-0123456789", token_keys="short").token_secrets


@settings(max_examples=400)
@given(
    invitation_id=st.one_of(
        st.uuids().map(str),
        st.text(max_size=80),
        st.text(alphabet="ab-", max_size=60),  # repeats: the payload zlib can shorten
    ),
    keys=st.lists(st.binary(min_size=16, max_size=40), min_size=1, max_size=3),
    scope=st.sampled_from(list(Scope)),
)
def test_a_token_is_the_one_itsdangerous_makes(
    invitation_id: str, keys: list[bytes], scope: Scope
) -> None:
    """Tokens are read by itsdangerous: each reads back with it and with `read_token`, and
    is the token itsdangerous makes whenever it would not compress the payload (ids never
    repeat themselves enough); when it would, the same payload uncompressed."""
    reference = URLSafeTimedSerializer(keys, salt=f"courtois.{scope.value}")
    before = int(time.time())
    token = make_token(keys, scope, invitation_id)
    made_at = reference.loads(token, return_timestamp=True)[1]
    assert before <= int(made_at.timestamp()) <= int(time.time())
    assert read_token(keys, scope, token) == invitation_id

    class AtThatSecond(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(made_at.timestamp())

    same_second = URLSafeTimedSerializer(keys, salt=f"courtois.{scope.value}", signer=AtThatSecond)
    theirs = same_second.dumps(invitation_id)
    if not theirs.startswith("."):
        assert token == theirs
    else:

        class Uncompressed(URLSafeTimedSerializer):
            def dump_payload(self, obj: object) -> bytes:
                return base64_encode(self.serializer.dumps(obj).encode())

        plain = Uncompressed(keys, salt=f"courtois.{scope.value}", signer=AtThatSecond)
        assert token == plain.dumps(invitation_id)


@pytest.mark.parametrize("invitation_id", ["ab" * 30, "01a23c47-" * 6])
def test_a_compressed_token_is_read(invitation_id: str) -> None:
    """Tokens itsdangerous compressed, as earlier releases minted for such ids, still read."""
    compressed = URLSafeTimedSerializer(SECRET, salt=f"courtois.{Scope.JOIN.value}")
    token = compressed.dumps(invitation_id)
    assert token.startswith(".")
    assert read_token(SECRET, Scope.JOIN, token) == invitation_id
    assert not make_token(SECRET, Scope.JOIN, invitation_id).startswith(".")
