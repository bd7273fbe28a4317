"""The composed email: headers, safety against any member input, and invariant 2."""

from __future__ import annotations

import email
import re
from dataclasses import replace
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from typing import Any

import pytest
from compose_support import (
    SETTINGS,
    assert_encoded_words_fit,
    assert_quoted_printable_lines_fit,
    message,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from courtois.config import Settings
from courtois.delivery.compose import (
    Carried,
    as_previewed,
    compose,
    consent_hashes,
    email_parts,
    make_tokens,
    to_bytes,
    tokens_in,
)
from courtois.delivery.mime_writer import write
from courtois.delivery.render import Inviter, RenderContext, preview, preview_hash
from courtois.delivery.skeleton import compose_wire
from courtois.domain.errors import InvalidInput
from courtois.domain.messages import MessageKind
from courtois.domain.preview import check_note
from courtois.tokens import Scope, read_token

HEADERS = {
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Auto-Submitted",
    "Feedback-ID",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Content-Language",
    "MIME-Version",
    "Content-Type",
}


def wire(composed: EmailMessage) -> EmailMessage:
    """The email as a receiver parses it."""
    parsed = email.message_from_bytes(to_bytes(composed), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def previewed_by(name: str, note: str = "", reminders: int = 0, locale: str = "en") -> Any:
    """What the member was shown, built as services.previews.render_for builds it."""
    inviter = Inviter(name, check_note(note), reminders)
    return preview(locale, RenderContext.from_settings(SETTINGS, (inviter,)))


def test_headers_of_an_invitation() -> None:
    parsed = wire(compose(SETTINGS, message()))
    assert set(parsed.keys()) == HEADERS
    (sender,) = parsed["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Ana Lima via Agora", SETTINGS.mail_from)
    assert parsed["To"] == "bo@example.com"
    assert parsed["Subject"] == "Ana Lima invites you to join Agora"
    assert parsed["Date"] == "Mon, 02 Mar 2026 09:00:00 +0000"
    assert parsed["Message-ID"] == "<3f1c2a9e-0000-4000-8000-000000000001@agora.test>"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["Feedback-ID"] == "invitation:Agora:courtois"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed.get_content_type() == "multipart/alternative"
    text, html = parsed.iter_parts()
    assert (text.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")


def test_list_unsubscribe_carries_the_one_click_url_and_a_mailto() -> None:
    tokens = make_tokens(SETTINGS, ("inv-1",))
    raw = to_bytes(compose(SETTINGS, message(), tokens))
    header = str(wire(compose(SETTINGS, message(), tokens))["List-Unsubscribe"])
    https, mailto = re.findall(r"<([^>]+)>", header)
    assert https == f"https://agora.test/u/{tokens.unsubscribe}"
    assert mailto == f"mailto:invitations@agora.test?subject=unsubscribe%20{tokens.unsubscribe}"
    assert b"=?utf-8?" not in raw.split(b"List-Unsubscribe:")[1].split(b"\r\nList-")[0]
    assert read_token(SETTINGS.secret, Scope.UNSUBSCRIBE, tokens.unsubscribe) == "inv-1"


def test_wire_form_is_crlf_with_bounded_lines() -> None:
    raw = to_bytes(compose(SETTINGS, message(Carried("inv-1", "Ana " * 40, "x" * 1000))))
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    _head, body = raw.split(b"\r\n\r\n", 1)
    assert max(len(line) for line in body.split(b"\r\n")) <= 76


# Links far longer than a line, in the body and in List-Unsubscribe.
_LONG_LINKS = replace(
    SETTINGS, base_url="https://invitations.a-rather-long-community-name.example/" + "deep/" * 12
)
_NOTES = [
    "Come and see!",
    "Viens voir ce que nous faisons, c'est à deux pas de chez toi. " * 12,
    "x" * 1000,
    "é李🎉=" * 200,
    "https://example.org/" + "a-long-path-segment/" * 20 + "?q=" + "=" * 40,
]


@pytest.mark.parametrize("platform", [SETTINGS, _LONG_LINKS], ids=["short-links", "long-links"])
@pytest.mark.parametrize("locale", ["en", "fr"])
@pytest.mark.parametrize("kind", list(MessageKind))
@pytest.mark.parametrize("note", _NOTES, ids=["short", "words", "one-word", "escapes", "url"])
def test_quoted_printable_lines_are_at_most_76_characters(
    platform: Settings, locale: str, kind: MessageKind, note: str
) -> None:
    """RFC 2045 section 6.7 (5), on every path an email leaves by: composed, written
    directly, and filled in from a skeleton (long ids make long tokens, cut across lines)."""
    count = 3 if kind is MessageKind.DIGEST else 1
    carried = tuple(
        Carried(f"inv-{i}-" + "7" * 40 * i, f"Ána Lima {i}", note, i % 2) for i in range(count)
    )
    outgoing = message(*carried, kind=kind, locale=locale)
    tokens = make_tokens(platform, outgoing.invitation_ids)
    composed = to_bytes(compose(platform, outgoing, tokens))
    written = write(email_parts(platform, outgoing, tokens), "BOUNDARY")
    assert written is not None
    filled = compose_wire(platform, outgoing, tokens)
    for raw in (composed, written.raw, filled.raw):
        assert_quoted_printable_lines_fit(raw)


def test_reply_to_is_the_member_only_when_they_opted_in() -> None:
    assert "Reply-To" not in wire(compose(SETTINGS, message()))
    opted = message(Carried("inv-1", "Ana Lima", reply_to="ana@member.test"))
    (reply,) = wire(compose(SETTINGS, opted))["Reply-To"].addresses
    assert (reply.display_name, reply.addr_spec) == ("Ana Lima", "ana@member.test")
    # From never carries the member's own address (DMARC).
    assert wire(compose(SETTINGS, opted))["From"].addresses[0].addr_spec == SETTINGS.mail_from


def test_a_digest_comes_from_the_platform_and_joins_each_invitation() -> None:
    carried = tuple(Carried(f"inv-{i}", name) for i, name in enumerate(["Ana", "Bo", "Cy", "Di"]))
    digest = message(*carried, kind=MessageKind.DIGEST)
    tokens = make_tokens(SETTINGS, digest.invitation_ids)
    parsed = wire(compose(SETTINGS, digest, tokens))
    assert parsed["From"].addresses[0].display_name == "Agora"
    assert parsed["Subject"] == "Ana, Bo and 2 others invited you to join Agora"
    assert parsed["Feedback-ID"] == "digest:Agora:courtois"
    text = parsed.get_body(("plain",)).get_content()
    for index, token in enumerate(tokens.join):
        assert read_token(SETTINGS.secret, Scope.JOIN, token) == f"inv-{index}"
        assert f"/join/{token}" in text
    assert read_token(SETTINGS.secret, Scope.WHY, tokens.why) == "inv-0"


@pytest.mark.parametrize(
    "name",
    [
        "Ana\r\nBcc: victim@example.org",
        "Ana\nBcc: victim@example.org",
        "Ana\rSubject: free money",
        'Ana "The Boss" <boss@evil.test>, Lima',
        "Ana =?utf-8?q?Bcc=3A_victim=40example=2Eorg?=",
        "Ána Lîma 李 🎉",
        "\u202eAna",
    ],
)
def test_no_name_can_add_a_header_or_an_address(name: str) -> None:
    opted = message(Carried("inv-1", name, "hi", reply_to="ana@member.test"))
    parsed = wire(compose(SETTINGS, opted))
    assert set(parsed.keys()) == HEADERS | {"Reply-To"}
    assert [a.addr_spec for a in parsed["From"].addresses] == [SETTINGS.mail_from]
    assert [a.addr_spec for a in parsed["To"].addresses] == ["bo@example.com"]
    assert [a.addr_spec for a in parsed["Reply-To"].addresses] == ["ana@member.test"]
    for value in parsed.values():
        assert "\r" not in str(value)
        assert "\n" not in str(value)


@pytest.mark.parametrize(
    ("name", "raw_from"),
    [
        # Specials in a short ASCII name: one quoted string, as any mail client writes it.
        ("Lima, Ana", b'From: "Lima, Ana via Agora" <invitations@agora.test>'),
        ('Ana "AL" Lima', b'From: "Ana \\"AL\\" Lima via Agora" <invitations@agora.test>'),
        ("Dr. Ana Lima", b'From: "Dr. Ana Lima via Agora" <invitations@agora.test>'),
        # Too long for one line, or not ASCII: encoded words.
        ("Lima, Ana " + "x" * 70, b"From: =?utf-8?"),
        ("Lîma, Ána", b"From: =?utf-8?"),
        # No specials: the stdlib's own form.
        ("Ana Lima", b"From: Ana Lima via Agora <invitations@agora.test>"),
    ],
)
def test_a_name_with_specials_arrives_as_written_and_names_no_address(
    name: str, raw_from: bytes
) -> None:
    composed = compose(SETTINGS, message(Carried("inv-1", name, "hi", reply_to="ana@member.test")))
    raw = to_bytes(composed)
    assert raw_from in raw
    parsed = wire(composed)
    (sender,) = parsed["From"].addresses
    (reply,) = parsed["Reply-To"].addresses
    assert (sender.addr_spec, reply.addr_spec) == (SETTINGS.mail_from, "ana@member.test")
    # As RFC 2047 reads encoded words (the space between two of them is not part of the
    # text); Python's address parser alone keeps that space in a name split in two words.
    head = raw.split(b"\r\n\r\n")[0].replace(b"\r\n ", b" ").decode("ascii")
    (line,) = [h for h in head.split("\r\n") if h.startswith("From: ")]
    phrase = line.removeprefix("From: ").removesuffix(f" <{SETTINGS.mail_from}>")
    shown = (
        sender.display_name if phrase.startswith('"') else str(make_header(decode_header(phrase)))
    )
    assert shown == f"{name} via Agora"


_NAMES = st.text(min_size=1, max_size=200) | st.text(
    alphabet=st.sampled_from(list(' xyé李🎉=?,;:"\\()<>@\r\n\t')), min_size=1, max_size=150
)


@settings(max_examples=60, deadline=None)
@given(name=_NAMES, note=st.text(max_size=300))
def test_any_name_or_note_keeps_the_headers_fixed(name: str, note: str) -> None:
    composed = compose(SETTINGS, message(Carried("inv-1", name, note)))
    parsed = wire(composed)
    assert set(parsed.keys()) == HEADERS
    assert [a.addr_spec for a in parsed["From"].addresses] == [SETTINGS.mail_from]
    assert [a.addr_spec for a in parsed["To"].addresses] == ["bo@example.com"]
    # The subject arrives exactly as rendered (and previewed), however it had to be folded.
    assert str(parsed["Subject"]) == str(composed["Subject"])
    assert_encoded_words_fit(to_bytes(composed))


@pytest.mark.parametrize(
    "name",
    ["x" * 75 + " é " + "y" * 80, "Ana  Lima", "李 " * 40, "Émile Zola " * 12, "N" * 119],
)
def test_the_subject_arrives_exactly_as_rendered(name: str) -> None:
    """The stdlib folding would lose the space in "é y..."; ours decodes back exactly."""
    composed = compose(SETTINGS, message(Carried("inv-1", name)))
    raw = to_bytes(composed)
    assert str(wire(composed)["Subject"]) == str(composed["Subject"])
    assert max(len(line) for line in raw.split(b"\r\n\r\n")[0].split(b"\r\n")) <= 998


def test_a_script_in_a_note_is_escaped_in_html() -> None:
    note = "<script>alert(document.cookie)</script>"
    parsed = wire(compose(SETTINGS, message(Carried("inv-1", "Ana", note))))
    html = parsed.get_body(("html",)).get_content()
    assert "<script" not in html
    assert "&lt;script&gt;alert(document.cookie)&lt;/script&gt;" in html
    assert note in parsed.get_body(("plain",)).get_content()


def test_very_long_names_and_notes_are_bounded() -> None:
    parsed = wire(compose(SETTINGS, message(Carried("inv-1", "N" * 10_000, "x" * 100_000))))
    display = parsed["From"].addresses[0].display_name
    # (Python's parser keeps the folding space between encoded words of a display name.)
    assert len(display.replace(" ", "")) <= 120 + len("viaAgora")
    assert len(str(parsed["Subject"])) <= 120 + 40
    assert len(to_bytes(compose(SETTINGS, message(Carried("i", "N" * 10_000))))) < 30_000


def test_addresses_in_other_scripts() -> None:
    parsed = wire(compose(SETTINGS, message(to="bo@exämple.org")))
    assert parsed["To"].addresses[0].domain == "xn--exmple-cua.org"
    raw = to_bytes(compose(SETTINGS, message(to="bö@example.org")))
    assert "To: bö@example.org".encode() in raw  # SMTPUTF8 (RFC 6531)


@pytest.mark.parametrize("to", ["", "bo", "Bo <bo@example.com>", "bo@example.com\r\nBcc: x@y"])
def test_bad_recipient_is_refused(to: str) -> None:
    with pytest.raises(InvalidInput):
        compose(SETTINGS, message(to=to))


def test_bad_message_id_is_refused() -> None:
    with pytest.raises(InvalidInput):
        compose(SETTINGS, message(message_id="x>\r\nBcc: y@z"))


def test_a_reminder_replies_to_the_invitation_email_it_follows() -> None:
    """Mail clients thread the reminder with its invitation: In-Reply-To and References
    name the invitation email's Message-ID, built from its id as that Message-ID was."""
    first = "3f1c2a9e-0000-4000-8000-000000000001"
    invitation = wire(compose(SETTINGS, message(message_id=first)))
    reminder = wire(
        compose(
            SETTINGS,
            message(
                kind=MessageKind.REMINDER,
                message_id="3f1c2a9e-0000-4000-8000-000000000002",
                in_reply_to=first,
            ),
        )
    )
    assert set(reminder.keys()) == HEADERS | {"In-Reply-To", "References"}
    assert reminder["In-Reply-To"] == invitation["Message-ID"]
    assert reminder["References"] == invitation["Message-ID"]
    # Nothing to follow (the invitation email never left): no such header.
    unthreaded = wire(compose(SETTINGS, message(kind=MessageKind.REMINDER)))
    assert set(unthreaded.keys()) == HEADERS


def test_a_replied_to_id_that_is_not_an_id_is_refused() -> None:
    for replied in ("x>\r\nBcc: y@z", "a b", "<x@y>", ""):
        with pytest.raises(InvalidInput):
            compose(SETTINGS, message(kind=MessageKind.REMINDER, in_reply_to=replied))


# --- invariant 2: what was shown is what is sent -------------------------------------------------


@pytest.mark.parametrize("locale", ["en", "fr"])
@pytest.mark.parametrize("reminders", [0, 1])
def test_the_delivered_invitation_hashes_to_the_consented_preview(
    locale: str, reminders: int
) -> None:
    name, note = "Ana {token:u} <b>Lima</b>", "Come and see!\r\n  Indented {token:join} line"
    shown = previewed_by(name, note, reminders, locale)
    carried = Carried("inv-1", name, check_note(note), reminders)
    for kind, part in ((MessageKind.INVITATION, 0), (MessageKind.REMINDER, 1)):
        if part > reminders:
            continue
        outgoing = message(carried, kind=kind, locale=locale)
        tokens = make_tokens(SETTINGS, outgoing.invitation_ids)
        delivered = as_previewed(wire(compose(SETTINGS, outgoing, tokens)), tokens)
        # The tokens really were in the message, and are the only difference.
        assert tokens.unsubscribe in str(wire(compose(SETTINGS, outgoing, tokens)))
        parts = [shown.message, *shown.follow_ups]
        assert delivered == parts[part]
        parts[part] = delivered
        assert preview_hash(*parts) == shown.preview_hash
        assert consent_hashes(SETTINGS, outgoing) == (shown.preview_hash,)


def test_a_different_note_does_not_match_the_consent() -> None:
    shown = previewed_by("Ana", "Come and see!")
    outgoing = message(Carried("inv-1", "Ana", "Come and see?"))
    tokens = make_tokens(SETTINGS, outgoing.invitation_ids)
    delivered = as_previewed(wire(compose(SETTINGS, outgoing, tokens)), tokens)
    assert preview_hash(delivered) != shown.preview_hash
    assert consent_hashes(SETTINGS, outgoing) != (shown.preview_hash,)


def test_a_placeholder_typed_in_a_name_is_never_filled() -> None:
    outgoing = message(Carried("inv-1", "{token:u}", "{token:why}"))
    tokens = make_tokens(SETTINGS, outgoing.invitation_ids)
    text = wire(compose(SETTINGS, outgoing, tokens)).get_body(("plain",)).get_content()
    assert text.count("{token:u}") >= 3  # the name, printed as typed, wherever it shows
    assert "{token:why}" in text
    assert text.count(tokens.unsubscribe) == 1


def test_digest_sections_are_each_members_preview() -> None:
    names = ("Ana", "Bo")
    carried = tuple(Carried(f"inv-{i}", n, f"note {n}", i) for i, n in enumerate(names))
    outgoing = message(*carried, kind=MessageKind.DIGEST)
    tokens = make_tokens(SETTINGS, outgoing.invitation_ids)
    delivered = as_previewed(wire(compose(SETTINGS, outgoing, tokens)), tokens)
    for name, note, reminders in (("Ana", "note Ana", 0), ("Bo", "note Bo", 1)):
        shown = previewed_by(name, note, reminders)
        section = shown.text.split("\n\n", 1)[1].split("\n-- \n")[0]
        assert section in delivered.text
    assert consent_hashes(SETTINGS, outgoing) == (
        previewed_by("Ana", "note Ana", 0).preview_hash,
        previewed_by("Bo", "note Bo", 1).preview_hash,
    )


def test_a_delivered_email_proves_itself_without_stored_tokens() -> None:
    """Afterwards, from the email alone: its signed tokens are read back from its links,
    and with them put back as placeholders it hashes to the consent (invariant 2)."""
    fake = "https://agora.test/join/forged.token.value"
    carried = (Carried("inv-0", "Ana", f"see {fake}", 1), Carried("inv-1", "Bo"))
    outgoing = message(*carried, kind=MessageKind.DIGEST)
    tokens = make_tokens(SETTINGS, outgoing.invitation_ids)
    parsed = wire(compose(SETTINGS, outgoing, tokens))
    assert tokens_in(parsed, SETTINGS) == tokens  # the forged link in the note is ignored
    single = message(Carried("inv-0", "Ana", "Come", 1))
    parsed = wire(compose(SETTINGS, single))
    shown = previewed_by("Ana", "Come", 1)
    assert preview_hash(as_previewed(parsed, tokens_in(parsed, SETTINGS)), *shown.follow_ups) == (
        shown.preview_hash
    )
    other = Settings(secret_key="another-secret-key-0123456789", base_url="https://agora.test")
    with pytest.raises(ValueError, match="links"):
        tokens_in(parsed, other)
