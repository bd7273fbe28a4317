"""The platform and the email the composition tests share, a wire form whose multipart
boundary (drawn at random per email) is named the same in every email, the check that an
email in wire form says what the composed one says, and the inputs their properties draw:
whatever a member may type, any recipient address, any send time."""

from __future__ import annotations

import email
import re
from datetime import UTC, datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage
from typing import Any

from hypothesis import strategies as st

from courtois.config import Settings
from courtois.delivery.compose import Carried, ComposeInput
from courtois.delivery.mime_writer import Written
from courtois.domain.messages import MessageKind

SETTINGS = Settings(
    secret_key="test-secret-key-0123456789",
    platform_name="Agora",
    base_url="https://agora.test",
    mail_from="invitations@agora.test",
    platform_postal_address="1 rue de la Paix, 75002 Paris",
)
SENT_AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def message(*carried: Carried, **changes: Any) -> ComposeInput:
    """An invitation from Ana to Bo, sent at SENT_AT, with these changes."""
    values: dict[str, Any] = {
        "message_id": "3f1c2a9e-0000-4000-8000-000000000001",
        "to": "bo@example.com",
        "kind": MessageKind.INVITATION,
        "locale": "en",
        "invitations": carried or (Carried("inv-1", "Ana Lima", "Come and see!"),),
        "sent_at": SENT_AT,
    }
    return ComposeInput(**{**values, **changes})


def boundless(raw: bytes) -> bytes:
    """The wire form with its multipart boundary named the same in every email."""
    found = re.search(rb'boundary="([^"]+)"', raw)
    assert found is not None
    return raw.replace(found.group(1), b"BOUNDARY")


# Names and notes: anything, or text dense in what headers, encoders and HTML treat specially.
MEMBER_TEXT = st.text(max_size=150) | st.text(
    alphabet=st.sampled_from(list(' xyé李🎉=?.,;:"\\()<>@%\r\n\t\x0b\x0c\x85\u2028-_{}Z')),
    max_size=150,
)
_LOCAL = st.from_regex(r"[A-Za-z0-9_+-]{1,12}(\.[A-Za-z0-9_+-]{1,8}){0,2}", fullmatch=True)
_DOMAIN = st.from_regex(r"[a-z0-9-]{1,12}(\.[a-z]{2,6}){1,2}", fullmatch=True)
# Plain addresses, and the shapes that need SMTPUTF8, IDNA, quoting or a folded line.
ADDRESS = st.builds(lambda local, domain: f"{local}@{domain}", _LOCAL, _DOMAIN) | st.sampled_from(
    [
        "bö@example.org",
        "bo@exämple.org",
        '"b o"@example.org',
        "a" * 80 + "@example.org",
        "B.O+x@EXAMPLE.org",
    ]
)
SEND_TIME = st.builds(
    lambda seconds, minutes: (
        datetime(1990, 1, 1, tzinfo=timezone(timedelta(minutes=minutes)))
        + timedelta(seconds=seconds)
    ),
    st.integers(0, 2 * 10**9),
    st.sampled_from([0, 60, 330, -300, -719]),
) | st.sampled_from(
    [
        datetime(2026, 3, 2, 9, 0),  # naive: written "-0000"
        datetime(1, 3, 2, 9, 0, tzinfo=UTC),  # years below 100 are rewritten by the registry
        datetime(99, 12, 31, 23, 59, tzinfo=UTC),
    ]
)


# An RFC 2047 encoded word, as a receiver finds it in a header.
ENCODED_WORD = re.compile(rb"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


def assert_encoded_words_fit(raw: bytes) -> None:
    """Every encoded word of the header block is at most 75 characters (RFC 2047 section
    2), on a line within 78."""
    head = raw.partition(b"\r\n\r\n")[0]
    for line in head.split(b"\r\n"):
        words = ENCODED_WORD.findall(line)
        assert all(len(word) <= 75 for word in words), line
        assert not words or len(line) <= 78, line


def assert_words_as_composed(written: Written, reference: EmailMessage) -> None:
    """The subject and plain text recorded with an email in wire form are the composed
    email's, as the header registry and `get_content` read them."""
    assert written.subject == str(reference["Subject"])
    plain = reference.get_body(("plain",))
    assert plain is not None
    assert written.text == plain.get_content()


# RFC 2045 section 6.7 (5): "encoded lines must not be longer than 76 characters, not
# counting the trailing CRLF" (SpamAssassin's MIME_QP_LONG_LINE counts the longer ones).
MAX_QP_LINE = 76


def assert_quoted_printable_lines_fit(raw: bytes) -> None:
    """Every line of both quoted-printable parts (text and HTML) is at most 76 characters."""
    parsed = email.message_from_bytes(raw, policy=policy.default)
    encoded = [
        part
        for part in parsed.walk()
        if str(part.get("Content-Transfer-Encoding", "")).lower() == "quoted-printable"
    ]
    assert len(encoded) == 2
    for part in encoded:
        payload = part.get_payload()
        assert isinstance(payload, str)
        long_lines = [line for line in payload.splitlines() if len(line) > MAX_QP_LINE]
        assert not long_lines, long_lines[:3]
