"""Consent coverage (invariant 1) and the previewed text its hash pins (invariant 2)."""

from __future__ import annotations

import dataclasses
import string
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courtois.domain.consent import Consent
from courtois.domain.errors import InvalidInput
from courtois.domain.messages import MessageKind
from courtois.domain.preview import (
    MAX_NOTE_LENGTH,
    TOKEN_PLACEHOLDER,
    check_note,
    hash_message,
    render_invitation,
)

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
ANA = "a" * 64
BO = "b" * 64


def make_consent(**changes: Any) -> Consent:
    base = Consent(
        id="c1",
        member_id="m1",
        recipients=frozenset({ANA}),
        kind=MessageKind.INVITATION,
        preview_hash="0" * 64,
        reminders=0,
        text_shown="I agree to send exactly this email.",
        ip="192.0.2.1",
        user_agent="pytest",
        given_at=T0,
    )
    return dataclasses.replace(base, **changes)


# --- Consent.covers --------------------------------------------------------------------------


def test_active_consent_covers_the_invitation_to_its_recipient() -> None:
    consent = make_consent()
    assert consent.is_active
    assert consent.covers(ANA, MessageKind.INVITATION)


def test_consent_does_not_cover_another_recipient() -> None:
    consent = make_consent()
    for kind in MessageKind:
        assert not consent.covers(BO, kind)


def test_revoked_consent_covers_nothing() -> None:
    consent = make_consent(reminders=1, revoked_at=T0 + timedelta(minutes=3))
    assert not consent.is_active
    for kind in MessageKind:
        assert not consent.covers(ANA, kind)


def test_reminder_covered_only_when_ticked() -> None:
    assert not make_consent(reminders=0).covers(ANA, MessageKind.REMINDER)
    assert make_consent(reminders=1).covers(ANA, MessageKind.REMINDER)


def test_digest_is_covered_like_the_invitation() -> None:
    assert make_consent().covers(ANA, MessageKind.DIGEST)
    assert not make_consent().covers(BO, MessageKind.DIGEST)


def test_consent_with_several_recipients_covers_each() -> None:
    consent = make_consent(recipients=frozenset({ANA, BO}))
    assert consent.covers(ANA, MessageKind.INVITATION)
    assert consent.covers(BO, MessageKind.INVITATION)
    assert not consent.covers("c" * 64, MessageKind.INVITATION)


# --- render_invitation -----------------------------------------------------------------------

BASE_ARGS: dict[str, Any] = {
    "member_name": "Ana Lima",
    "platform": "Agora",
    "base_url": "https://agora.test",
    "locale": "en",
    "note": "",
    "reminders": 0,
    "reminder_days": 14,
}


def render(**changes: Any):
    return render_invitation(**{**BASE_ARGS, **changes})


def test_hash_is_stable_and_is_the_hash_of_what_is_shown() -> None:
    first, second = render(), render()
    assert first == second
    assert first.preview_hash == hash_message(first.subject, first.text)
    assert len(first.preview_hash) == 64
    assert set(first.preview_hash) <= set(string.hexdigits.lower())


@pytest.mark.parametrize(
    "change",
    [
        {"note": "Come and see!"},
        {"reminders": 1},
        {"locale": "fr"},
        {"member_name": "Bo Chen"},
        {"platform": "Forum"},
        {"base_url": "https://other.test"},
    ],
    ids=lambda change: next(iter(change)),
)
def test_hash_changes_when_anything_shown_changes(change: dict[str, Any]) -> None:
    assert render(**change).preview_hash != render().preview_hash


def test_note_changes_are_all_seen() -> None:
    assert render(note="Hello").preview_hash != render(note="Hello!").preview_hash


def test_reminder_days_count_only_when_a_reminder_is_listed() -> None:
    """The hash covers what is shown: the interval is shown only with a reminder."""
    assert render(reminders=0, reminder_days=14) == render(reminders=0, reminder_days=21)
    assert (
        render(reminders=1, reminder_days=14).preview_hash
        != render(reminders=1, reminder_days=21).preview_hash
    )


def test_hash_message_separates_subject_and_text() -> None:
    assert hash_message("a", "b") != hash_message("b", "a")
    assert hash_message("a", "b") != hash_message("a", "b ")


def test_english_text_lists_the_follow_ups() -> None:
    without = render(reminders=0)
    assert "This is the only email you will get about this invitation." in without.text
    assert "reminder" not in without.text
    with_one = render(reminders=1, reminder_days=14)
    assert "send one reminder" in with_one.text
    assert "14 days later" in with_one.text
    assert "only email" not in with_one.text


def test_french_text_lists_the_follow_ups() -> None:
    without = render(locale="fr", reminders=0)
    assert "C'est le seul e-mail que vous recevrez pour cette invitation." in without.text
    assert "rappel" not in without.text
    with_one = render(locale="fr", reminders=1, reminder_days=14)
    assert "un seul rappel" in with_one.text
    assert "14 jours plus tard" in with_one.text
    assert "seul e-mail" not in with_one.text


def test_locales_render_their_own_language() -> None:
    en, fr = render(locale="en"), render(locale="fr")
    assert en.subject == "Ana Lima invites you to join Agora"
    assert fr.subject == "Ana Lima vous invite à rejoindre Agora"
    assert en.text.startswith("Hello,\n")
    assert fr.text.startswith("Bonjour,\n")


@pytest.mark.parametrize("locale", ["en", "fr"])
def test_links_keep_token_placeholders(locale: str) -> None:
    preview = render(locale=locale, base_url="https://agora.test/")
    assert preview.text.count(TOKEN_PLACEHOLDER) == 3
    for path in ("join", "why", "u"):
        assert f"https://agora.test/{path}/{TOKEN_PLACEHOLDER}" in preview.text
    assert "agora.test//" not in preview.text


def test_note_is_shown_indented_and_verbatim() -> None:
    preview = render(note="Line one\nLine {member} two")
    assert "Their note to you:" in preview.text
    assert "  Line one\n  Line {member} two\n" in preview.text
    assert "Their note to you:" not in render(note="").text


@pytest.mark.parametrize("reminders", [0, 1])
@pytest.mark.parametrize("locale", ["en", "fr"])
def test_member_name_with_placeholders_is_not_substituted(locale: str, reminders: int) -> None:
    """One pass over the template only: what a member typed stays what they typed."""
    name = "{token} {platform} {base} {days} {member}"
    preview = render(member_name=name, locale=locale, reminders=reminders)
    assert preview.subject.startswith(name + " ")
    # The name shows in the body (and in the reminder sentence): literal, never expanded.
    assert preview.text.count(name) == 1 + reminders
    assert "Agora Agora" not in preview.text
    # Exactly the three real link placeholders, plus the literal ones inside the name.
    assert preview.text.count(TOKEN_PLACEHOLDER) == 3 + preview.text.count(name)
    assert preview.subject.count(TOKEN_PLACEHOLDER) == 1


def test_text_ends_with_the_stop_link() -> None:
    text = render().text
    assert text.endswith("Stop these emails: https://agora.test/u/{token}\n")


# --- check_note --------------------------------------------------------------------------------


def test_note_is_stripped_and_line_endings_normalised() -> None:
    assert check_note("") == ""
    assert check_note("  Hi\r\nthere  \n") == "Hi\nthere"
    assert check_note("a\tb\nc") == "a\tb\nc"


def test_note_length_boundary() -> None:
    at_limit = "x" * MAX_NOTE_LENGTH
    assert check_note(at_limit) == at_limit
    assert check_note(f"   {at_limit}\n\n") == at_limit  # surrounding space does not count
    with pytest.raises(InvalidInput) as caught:
        check_note("x" * (MAX_NOTE_LENGTH + 1))
    assert caught.value.details == {"note": "too long"}


def test_crlf_counts_as_one_character() -> None:
    note = "x\r\n" * (MAX_NOTE_LENGTH // 2)  # 1500 raw characters, 999 after normalising
    assert len(check_note(note)) == MAX_NOTE_LENGTH - 1


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x08", "\x0b", "\x0c", "\r", "\x1b", "\x1f"])
def test_note_refuses_control_characters(char: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_note(f"hello{char}world")
    assert caught.value.details == {"note": "control characters"}


@pytest.mark.parametrize("char", ["\x7f", "\x85", "\x9b", "\u2028", "\u2029"])
def test_note_refuses_other_control_characters(char: str) -> None:
    """DEL, C1 controls and the Unicode line/paragraph separators, as for display names."""
    with pytest.raises(InvalidInput) as caught:
        check_note(f"hello{char}world")
    assert caught.value.details == {"note": "control characters"}


_SAFE_TEXT = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Cc", "Zl", "Zp"), whitelist_characters="\n\t"
    ),
    max_size=MAX_NOTE_LENGTH,
)


@given(_SAFE_TEXT)
def test_safe_notes_are_only_stripped(note: str) -> None:
    assert check_note(note) == note.strip()
