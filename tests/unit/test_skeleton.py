"""An email filled in from a skeleton is the email `compose` makes: the same bytes (bar the
multipart boundary, drawn once per skeleton), the same subject and plain text, whatever a
member typed and whatever the recipient's address, id, date and tokens."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from compose_support import (
    ADDRESS,
    MEMBER_TEXT,
    SEND_TIME,
    SETTINGS,
    assert_quoted_printable_lines_fit,
    assert_words_as_composed,
    boundless,
    message,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from courtois.delivery.compose import Carried, ComposeInput, compose, make_tokens, to_bytes
from courtois.delivery.render import Tokens
from courtois.delivery.skeleton import compose_wire
from courtois.domain.errors import InvalidInput
from courtois.domain.messages import MessageKind

ID = "3f1c2a9e-0000-4000-8000-{:012d}"


def assert_as_composed(outgoing: ComposeInput, tokens: Tokens) -> None:
    reference = compose(SETTINGS, outgoing, tokens)
    filled = compose_wire(SETTINGS, outgoing, tokens)
    assert boundless(filled.raw) == boundless(to_bytes(reference))
    assert_words_as_composed(filled, reference)
    assert_quoted_printable_lines_fit(filled.raw)


@pytest.mark.parametrize("locale", ["en", "fr"])
@pytest.mark.parametrize("kind", [MessageKind.INVITATION, MessageKind.REMINDER])
@pytest.mark.parametrize("reply_to", [None, "ana@member.test"])
def test_a_filled_email_is_the_composed_one(
    locale: str, kind: MessageKind, reply_to: str | None
) -> None:
    # A reminder the member ticked and one the recipient asked for, alternately: their words
    # differ, so one must never be filled from the other's skeleton.
    for recipient in range(4):
        outgoing = message(
            Carried(ID.format(recipient), "Ána Lima", "Viens voir !\n.\nÀ bientôt", 1, reply_to),
            kind=kind,
            locale=locale,
            to=f"r{recipient}.x+y@example{recipient}.org",
            message_id=ID.format(100 + recipient),
            asked_by_recipient=recipient % 2 == 1,
        )
        assert_as_composed(outgoing, make_tokens(SETTINGS, outgoing.invitation_ids))


@pytest.mark.parametrize("locale", ["en", "fr"])
def test_a_filled_reminder_replies_to_its_own_invitation_email(locale: str) -> None:
    """Each recipient's reminder names its own invitation's email, from one skeleton; an id
    long enough to fold its header lines is composed the reference way, alike."""
    from courtois.delivery import skeleton

    before = skeleton._skeleton.cache_info()
    for recipient in range(4):
        invitation = str(uuid.uuid4())
        replied = ID.format(300 + recipient)
        outgoing = message(
            Carried(invitation, "Ána Lima", "Viens voir !", 1),
            kind=MessageKind.REMINDER,
            locale=locale,
            to=f"r{recipient}@example{recipient}.org",
            message_id=ID.format(400 + recipient),
            in_reply_to=replied,
        )
        assert_as_composed(outgoing, make_tokens(SETTINGS, outgoing.invitation_ids))
        raw = compose_wire(SETTINGS, outgoing).raw
        assert f"\r\nIn-Reply-To: <{replied}@agora.test>\r\n".encode() in raw
        assert f"\r\nReferences: <{replied}@agora.test>\r\n".encode() in raw
    after = skeleton._skeleton.cache_info()
    assert after.misses - before.misses == 1
    folded = message(kind=MessageKind.REMINDER, in_reply_to="x" * 100, message_id=ID.format(5))
    assert_as_composed(folded, make_tokens(SETTINGS, folded.invitation_ids))


def test_one_instant_at_two_offsets_is_dated_as_each_says() -> None:
    """Equal instants at different offsets compare equal: the Date of one must not be
    reused for the other (a pass run with `--now ...+01:00` after one in UTC)."""
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    for index, sent_at in enumerate((at, at.astimezone(timezone(timedelta(hours=1))))):
        outgoing = message(sent_at=sent_at, message_id=ID.format(200 + index))
        assert_as_composed(outgoing, make_tokens(SETTINGS, outgoing.invitation_ids))
    assert b"Date: Mon, 02 Mar 2026 10:00:00 +0100\r\n" in compose_wire(SETTINGS, outgoing).raw


@pytest.mark.parametrize("count", [2, 3, 5])
def test_a_filled_digest_is_the_composed_one(count: int) -> None:
    carried = tuple(Carried(ID.format(i), f"Member {i}", f"note {i}", i % 2) for i in range(count))
    outgoing = message(*carried, kind=MessageKind.DIGEST)
    assert_as_composed(outgoing, make_tokens(SETTINGS, outgoing.invitation_ids))


def test_recipients_of_one_member_share_one_skeleton() -> None:
    from courtois.delivery import skeleton

    before = skeleton._skeleton.cache_info()
    for recipient in range(5):
        # Invitation ids as the store makes them: random, so their tokens share one length.
        invitation = str(uuid.uuid4())
        outgoing = message(
            Carried(invitation, "A member seen once", "hello"),
            to=f"someone{recipient}@example{recipient}.org",
        )
        compose_wire(SETTINGS, outgoing, make_tokens(SETTINGS, (invitation,)))
    after = skeleton._skeleton.cache_info()
    assert (after.misses - before.misses, after.hits - before.hits) == (1, 4)
    assert after.currsize > before.currsize


@settings(max_examples=150, deadline=None)
@given(
    names=st.lists(MEMBER_TEXT.filter(lambda t: t.strip()), min_size=1, max_size=3),
    note=MEMBER_TEXT,
    reminders=st.integers(0, 1),
    reply=st.booleans(),
    locale=st.sampled_from(["en", "fr"]),
    to=ADDRESS,
    message_id=st.uuids().map(str)
    | st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,60}", fullmatch=True),
    sent_at=SEND_TIME,
    ids=st.lists(st.uuids().map(str) | st.just("inv-1"), min_size=3, max_size=3),
)
def test_any_member_input_and_any_recipient_give_the_composed_email(
    names: list[str],
    note: str,
    reminders: int,
    reply: bool,
    locale: str,
    to: str,
    message_id: str,
    sent_at: datetime,
    ids: list[str],
) -> None:
    carried = tuple(
        Carried(ids[i], name, note, reminders, "ana@member.test" if reply else None)
        for i, name in enumerate(names)
    )
    kind = MessageKind.DIGEST if len(carried) > 1 else MessageKind.INVITATION
    outgoing = message(
        *carried, kind=kind, locale=locale, to=to, message_id=message_id, sent_at=sent_at
    )
    try:
        compose(SETTINGS, outgoing)
    except InvalidInput:
        # What the reference refuses (an address or id it cannot print) is refused alike.
        with pytest.raises(InvalidInput):
            compose_wire(SETTINGS, outgoing)
        return
    assert_as_composed(outgoing, make_tokens(SETTINGS, outgoing.invitation_ids))


def test_a_privacy_contact_is_filled_as_composed() -> None:
    """The notice's contact comes from the settings, like the postal address: the skeleton
    and `compose` write it alike, on a first contact and a digest."""
    named = replace(SETTINGS, privacy_contact="Déléguée: dpo@agora.test, +33 1 23 45 67 89")
    for locale in ("en", "fr"):
        outgoing = message(locale=locale)
        tokens = make_tokens(named, outgoing.invitation_ids)
        reference = compose(named, outgoing, tokens)
        filled = compose_wire(named, outgoing, tokens)
        assert boundless(filled.raw) == boundless(to_bytes(reference))
        assert "dpo@agora.test" in reference.get_body(("plain",)).get_content()
