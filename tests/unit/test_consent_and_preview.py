"""Consent coverage (invariant 1) and the previewed text its hash pins (invariant 2)."""

from __future__ import annotations

import dataclasses
import string
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courtois.delivery.render import (
    JOIN_SLOT,
    UNSUBSCRIBE_SLOT,
    WHY_SLOT,
    Inviter,
    Previewed,
    RenderContext,
    Rendered,
    preview,
    preview_hash,
)
from courtois.domain.consent import Consent
from courtois.domain.errors import InvalidInput
from courtois.domain.members import check_display_name
from courtois.domain.messages import MessageKind
from courtois.domain.preview import MAX_NOTE_LENGTH, check_note

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


# --- the preview a consent pins (courtois.delivery.render) -----------------------------------

BASE_ARGS: dict[str, Any] = {
    "member_name": "Ana Lima",
    "platform": "Agora",
    "base_url": "https://agora.test",
    "locale": "en",
    "note": "",
    "reminders": 0,
    "reminder_days": 14,
}
SLOTS = (UNSUBSCRIBE_SLOT, WHY_SLOT, JOIN_SLOT)


def flat(text: str) -> str:
    """Plain text is wrapped at 72 columns: compare phrases, not line breaks."""
    return " ".join(text.split())


def render(**changes: Any) -> Previewed:
    args = {**BASE_ARGS, **changes}
    context = RenderContext(
        platform=args["platform"],
        base_url=args["base_url"],
        inviters=(Inviter(args["member_name"], args["note"], args["reminders"]),),
        reminder_days=args["reminder_days"],
    )
    return preview(args["locale"], context)


def test_hash_is_stable_and_is_the_hash_of_what_is_shown() -> None:
    first, second = render(), render()
    assert first == second
    assert first.preview_hash == preview_hash(first.message, *first.follow_ups)
    assert len(first.preview_hash) == 64
    assert set(first.preview_hash) <= set(string.hexdigits.lower())
    ticked = render(reminders=1)
    assert ticked.preview_hash == preview_hash(ticked.message, *ticked.follow_ups)


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


def test_preview_hash_separates_its_parts() -> None:
    assert preview_hash(Rendered("a", "b", "c")) != preview_hash(Rendered("b", "a", "c"))
    assert preview_hash(Rendered("a", "b", "c")) != preview_hash(Rendered("ab", "", "c"))
    assert preview_hash(Rendered("a", "b", "c")) != preview_hash(Rendered("a", "b ", "c"))
    assert preview_hash(Rendered("a", "b", "c")) != preview_hash(Rendered("a", "b", "c "))
    one = Rendered("a", "b", "c")
    assert preview_hash(one) != preview_hash(one, one)


def test_english_text_lists_the_follow_ups() -> None:
    without = render(reminders=0)
    assert without.follow_ups == ()
    assert "This is the only email you will get about this invitation." in flat(without.text)
    assert "reminder" not in flat(without.text).lower()
    assert "reminder" not in without.html.lower()
    with_one = render(reminders=1, reminder_days=14)
    assert "send one reminder" in flat(with_one.text)
    assert "14 days later" in flat(with_one.text)
    assert "only email" not in flat(with_one.text)
    # The reminder itself is part of what the member sees and consents to.
    (reminder,) = with_one.follow_ups
    assert reminder.subject == "Reminder: Ana Lima invites you to join Agora"
    assert "one reminder Ana Lima asked us to send" in flat(reminder.text)


def test_french_text_lists_the_follow_ups() -> None:
    without = render(locale="fr", reminders=0)
    assert "C'est le seul e-mail que vous recevrez pour cette invitation." in flat(without.text)
    assert "rappel" not in flat(without.text).lower()
    assert without.follow_ups == ()
    with_one = render(locale="fr", reminders=1, reminder_days=14)
    assert "un seul rappel" in flat(with_one.text)
    assert "14 jours plus tard" in flat(with_one.text)
    assert "seul e-mail" not in flat(with_one.text)
    (reminder,) = with_one.follow_ups
    assert reminder.subject == "Rappel\u00a0: Ana Lima vous invite à rejoindre Agora"


def test_locales_render_their_own_language() -> None:
    en, fr = render(locale="en"), render(locale="fr")
    assert en.subject == "Ana Lima invites you to join Agora"
    assert fr.subject == "Ana Lima vous invite à rejoindre Agora"
    assert en.text.startswith("Hello,\n")
    assert fr.text.startswith("Bonjour,\n")
    assert '<html lang="en">' in en.html
    assert '<html lang="fr">' in fr.html


@pytest.mark.parametrize("locale", ["en", "fr"])
def test_links_keep_token_placeholders(locale: str) -> None:
    shown = render(locale=locale, base_url="https://agora.test/")
    for part in (shown.text, shown.html):
        assert f"https://agora.test/join/{JOIN_SLOT}" in part
        assert f"https://agora.test/why/{WHY_SLOT}" in part
        assert f"https://agora.test/why/{WHY_SLOT}#forget" in part
        assert f"https://agora.test/u/{UNSUBSCRIBE_SLOT}" in part
        assert "agora.test//" not in part
    assert shown.text.count(JOIN_SLOT) == 1
    assert shown.text.count(UNSUBSCRIBE_SLOT) == 1


def test_note_is_shown_indented_and_verbatim() -> None:
    shown = render(note="Line one\nLine {member} two")
    assert "Their note to you:" in shown.text
    assert "  Line one\n  Line {member} two\n" in shown.text
    assert "Line one\nLine {member} two</blockquote>" in shown.html
    assert "Their note to you:" not in render(note="").text


@pytest.mark.parametrize("reminders", [0, 1])
@pytest.mark.parametrize("locale", ["en", "fr"])
def test_member_name_with_placeholders_is_not_substituted(locale: str, reminders: int) -> None:
    """Names are data, never template: what a member typed stays what they typed."""
    name = "{token:u} {token:join} %(platform)s {{ 7 * 7 }} {member}"
    shown = render(member_name=name, locale=locale, reminders=reminders)
    assert shown.subject.startswith(name + " ")
    plain = render(locale=locale, reminders=reminders)
    # Each place the name shows, it is printed literally, never expanded.
    assert flat(shown.text).count(name) == flat(plain.text).count("Ana Lima") > 0
    assert "49" not in shown.text
    assert "Agora Agora" not in shown.text
    # The real slots are exactly those of a plain name, plus the literal ones inside the name.
    for slot in SLOTS:
        literal = flat(shown.text).count(name) * name.count(slot)
        assert shown.text.count(slot) == plain.text.count(slot) + literal


def test_text_ends_with_the_footer_links() -> None:
    text = render().text
    assert "Stop these emails, from Ana Lima or from Agora altogether:" in flat(text)
    assert text.endswith(f"https://agora.test/why/{WHY_SLOT}#forget\n")


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


# The bidirectional embeddings, overrides and isolates: refused in a member's name too.
DIRECTION_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


@pytest.mark.parametrize("char", DIRECTION_CONTROLS)
def test_note_refuses_direction_overrides_as_names_do(char: str) -> None:
    """The note is quoted in an email sent in the platform's name: an override would make
    a link or a sentence in it read reversed. Refused as in a member's name."""
    with pytest.raises(InvalidInput) as caught:
        check_note(f"see {char}gro.live")
    assert caught.value.details == {"note": "control characters"}
    assert "direction overrides" in caught.value.message
    with pytest.raises(InvalidInput, match="direction overrides"):
        check_display_name(f"Ana {char}amiL")


def test_note_keeps_the_direction_marks_of_right_to_left_text() -> None:
    """Left-to-right, right-to-left and Arabic letter marks only set the direction of the
    punctuation next to them, and right-to-left text carries them: kept."""
    note = "\u05e9\u05dc\u05d5\u05dd!\u200f \u0645\u0631\u062d\u0628\u0627\u061c (1)\u200e"
    assert check_note(note) == note


_SAFE_TEXT = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Cc", "Zl", "Zp"),
        whitelist_characters="\n\t",
        blacklist_characters=DIRECTION_CONTROLS,
    ),
    max_size=MAX_NOTE_LENGTH,
)


@given(_SAFE_TEXT)
def test_safe_notes_are_only_stripped(note: str) -> None:
    assert check_note(note) == note.strip()
