"""The email written directly is the email `compose` makes through `email.message`: the
same bytes (given the same boundary), the same subject and plain text, whatever a member
typed, however the platform is named, and for every kind and language. What the header
registry refuses, the writer refuses too; what needs SMTPUTF8 is left to `compose`."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from email.headerregistry import Address

import pytest
from compose_support import (
    ADDRESS,
    MEMBER_TEXT,
    SEND_TIME,
    SETTINGS,
    assert_encoded_words_fit,
    assert_quoted_printable_lines_fit,
    assert_words_as_composed,
    boundless,
    message,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from courtois.config import Settings
from courtois.delivery.compose import (
    Carried,
    ComposeInput,
    build_email,
    compose,
    email_parts,
    make_tokens,
    to_bytes,
)
from courtois.delivery.mime_writer import wire_form, write
from courtois.domain.errors import InvalidInput
from courtois.domain.messages import MessageKind


def assert_written_as_composed(platform: Settings, outgoing: ComposeInput) -> None:
    tokens = make_tokens(platform, outgoing.invitation_ids)
    reference = compose(platform, outgoing, tokens)
    raw = to_bytes(reference)
    found = re.search(rb'boundary="([^"]+)"', raw)
    assert found is not None
    written = write(email_parts(platform, outgoing, tokens), found.group(1).decode("ascii"))
    assert written is not None
    assert written.raw == raw
    assert_words_as_composed(written, reference)
    assert_encoded_words_fit(raw)
    assert_quoted_printable_lines_fit(raw)


@pytest.mark.parametrize("locale", ["en", "fr"])
@pytest.mark.parametrize("kind", list(MessageKind))
@pytest.mark.parametrize("reply_to", [None, "ana@member.test"])
def test_every_kind_and_language_is_written_as_composed(
    locale: str, kind: MessageKind, reply_to: str | None
) -> None:
    count = 3 if kind is MessageKind.DIGEST else 1
    carried = tuple(
        Carried(f"inv-{i}", f"Ána Lima {i}", "Viens voir !\n.\nÀ bientôt", i % 2, reply_to)
        for i in range(count)
    )
    outgoing = message(*carried, kind=kind, locale=locale)
    assert_written_as_composed(SETTINGS, outgoing)


@pytest.mark.parametrize("replied", ["3f1c2a9e-0000-4000-8000-000000000009", "x" * 100])
def test_a_reminder_replying_to_its_invitation_email_is_written_as_composed(
    replied: str,
) -> None:
    """In-Reply-To and References written directly when their line fits, folded by the
    registry when not: the bytes `compose` makes either way."""
    outgoing = message(kind=MessageKind.REMINDER, in_reply_to=replied)
    assert_written_as_composed(SETTINGS, outgoing)


@settings(max_examples=200, deadline=None)
@given(
    names=st.lists(MEMBER_TEXT.filter(lambda t: t.strip()), min_size=1, max_size=3),
    note=MEMBER_TEXT,
    reminders=st.integers(0, 1),
    reply=st.sampled_from([None, "ana@member.test", "a.b+c@sub.member.test"]),
    platform=MEMBER_TEXT.filter(lambda t: t.strip()),
    locale=st.sampled_from(["en", "fr"]),
    # A local part outside ASCII needs SMTPUTF8, which is left to `compose` (tested below).
    to=ADDRESS.filter(lambda address: address.rpartition("@")[0].isascii()),
    message_id=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,100}", fullmatch=True),
    sent_at=SEND_TIME,
    asked=st.booleans(),
)
def test_any_input_is_written_as_composed(
    names: list[str],
    note: str,
    reminders: int,
    reply: str | None,
    platform: str,
    locale: str,
    to: str,
    message_id: str,
    sent_at: datetime,
    asked: bool,
) -> None:
    carried = tuple(
        Carried(f"inv-{i}", name, note, reminders, reply) for i, name in enumerate(names)
    )
    kind = MessageKind.DIGEST if len(carried) > 1 else MessageKind.INVITATION
    outgoing = message(
        *carried,
        kind=MessageKind.REMINDER if asked and kind is MessageKind.INVITATION else kind,
        locale=locale,
        to=to,
        message_id=message_id,
        sent_at=sent_at,
        asked_by_recipient=asked,
    )
    named = replace(SETTINGS, platform_name=platform)
    try:
        compose(named, outgoing)
    except InvalidInput:
        with pytest.raises(InvalidInput):
            wire_form(named, outgoing)
        return
    assert_written_as_composed(named, outgoing)


@pytest.mark.parametrize("year", [99, 999, 1000, 1899, 2026, 9999])
def test_a_date_is_written_as_the_registry_prints_it_whatever_the_year(year: int) -> None:
    """A four-digit year is written as formatted; the registry reads a year below 100 as
    19xx or 20xx, and below 1000 takes the registry's path too: the bytes `compose` makes
    either way."""
    outgoing = message(sent_at=datetime(year, 3, 1, 10, 20, tzinfo=UTC))
    assert_written_as_composed(SETTINGS, outgoing)


@pytest.mark.parametrize(
    "name",
    ["Ana Lima", "Ana O'Neil-Lima", "x{y}%z=?", "Lima, Ana", "A.N.A", "  Ana  ", "Ana " * 20],
)
def test_a_sender_name_is_written_as_the_registry_prints_it(name: str) -> None:
    """A name of atoms is written as it is; one with a special, spaces around, or too long
    for its line takes the registry's path (quoted, encoded or folded)."""
    carried = Carried("inv-1", name, "", 0, "ana@member.test")
    assert_written_as_composed(SETTINGS, message(carried))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Feedback-ID", "invitation:x\r\nBcc: victim@example.org"),
        ("Content-Language", "en\nBcc: victim@example.org"),
        ("List-Unsubscribe", "<https://a.test/u/x>\r\nBcc: victim@example.org"),
        ("Subject", "Hello\rBcc: victim@example.org"),
    ],
)
def test_a_line_break_in_any_header_is_refused_as_composing_refuses_it(
    name: str, value: str
) -> None:
    parts = email_parts(SETTINGS, message())
    forged = replace(
        parts,
        headers=tuple((n, value if n == name else v) for n, v in parts.headers)
        + ((("Content-Language", value),) if name == "Content-Language" else ()),
        language=value if name == "Content-Language" else parts.language,
    )
    with pytest.raises(ValueError, match="linefeed or carriage return"):
        build_email(forged)
    with pytest.raises(ValueError, match="linefeed or carriage return"):
        write(forged, "=" * 15 + "1" * 19 + "==")


def test_an_address_that_needs_smtputf8_is_left_to_compose() -> None:
    outgoing = message(to="bö@example.org")
    assert write(email_parts(SETTINGS, outgoing), "b") is None
    tokens = make_tokens(SETTINGS, outgoing.invitation_ids)
    written, _ = wire_form(SETTINGS, outgoing, tokens)
    assert b"To: b\xc3\xb6@example.org\r\n" in written.raw
    assert boundless(written.raw) == boundless(to_bytes(compose(SETTINGS, outgoing, tokens)))
    assert written.subject == "Ana Lima invites you to join Agora"


def test_a_plain_recipient_is_written_as_the_registry_prints_it() -> None:
    parts = email_parts(SETTINGS, message(to="B.O+x@Example.ORG"))
    assert ("To", Address(addr_spec="B.O+x@Example.ORG")) in parts.headers
    written = write(parts, "b")
    assert written is not None
    assert b"\r\nTo: B.O+x@Example.ORG\r\n" in written.raw
