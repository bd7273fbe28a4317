"""The words a consent keeps are the ones previewed: read back, they hash to the preview,
and filled with a recipient's tokens they are the email the templates render with those
tokens; composed from them, the email is the one composed by rendering, byte for byte (bar
the boundary). Nothing is kept where a placeholder could come from what someone wrote, and
what cannot be read as kept words is no words."""

from __future__ import annotations

from dataclasses import replace

import pytest
from compose_support import MEMBER_TEXT, SETTINGS, boundless, message
from hypothesis import given, settings
from hypothesis import strategies as st

from courtois.delivery.compose import Carried, compose, make_tokens, to_bytes
from courtois.delivery.consented_words import fill, kept, read
from courtois.delivery.render import Inviter, RenderContext, Tokens, preview, render
from courtois.delivery.skeleton import compose_wire
from courtois.domain.members import SUPPORTED_LOCALES
from courtois.domain.messages import MessageKind

PLAIN = st.from_regex(r"[A-Za-z0-9_.-]{1,60}", fullmatch=True)
ID = "3f1c2a9e-0000-4000-8000-{:012d}"


@settings(max_examples=200, deadline=None)
@given(
    locale=st.sampled_from(SUPPORTED_LOCALES),
    name=MEMBER_TEXT.filter(lambda text: text.strip()),
    note=MEMBER_TEXT,
    reminders=st.integers(0, 1),
    postal=MEMBER_TEXT | st.just("1 rue de la Paix, 75002 Paris"),
    tokens=st.tuples(PLAIN, PLAIN, PLAIN),
)
def test_kept_words_are_the_preview_and_fill_as_rendered(
    locale: str, name: str, note: str, reminders: int, postal: str, tokens: tuple[str, str, str]
) -> None:
    context = RenderContext(
        platform="Agora",
        base_url="https://agora.test",
        inviters=(Inviter(name, note, reminders),),
        postal_address=postal,
    )
    previewed = preview(locale, context)
    stored = kept(previewed, context)
    if any("{" in text for text in (name, note, postal)) or not postal.strip():
        assert stored is None
        return
    words = read(stored)
    assert words is not None
    assert words.name == name
    assert words.preview_hash == previewed.preview_hash
    given_tokens = Tokens(tokens[0], tokens[1], (tokens[2],))
    assert fill(words.invitation, given_tokens) == render(
        MessageKind.INVITATION, locale, context, given_tokens
    )
    if reminders:
        assert words.reminder is not None
        reminding = replace(context, first_contact=False)
        assert fill(words.reminder, given_tokens) == render(
            MessageKind.REMINDER, locale, reminding, given_tokens
        )
    else:
        assert words.reminder is None


@pytest.mark.parametrize(
    "stored",
    [
        None,
        "",
        "not json",
        "[]",
        '{"v": 2, "name": "Ana", "emails": [["s", "t", "h"]]}',
        '{"v": 1, "name": "Ana", "emails": []}',
        '{"v": 1, "name": "Ana", "emails": [["s", "t"]]}',
        '{"v": 1, "name": "Ana", "emails": [["s", "t", "h"], ["s", "t", "h"], ["s", "t", "h"]]}',
        '{"v": 1, "emails": [["s", "t", "h"]]}',
    ],
)
def test_what_is_not_kept_words_is_no_words(stored: str | None) -> None:
    assert read(stored) is None


def test_a_token_that_would_not_print_as_itself_fills_nothing() -> None:
    context = RenderContext("Agora", "https://agora.test", (Inviter("Ana"),), "1 Main St")
    assert kept(preview("en", context), replace(context, postal_address=" ")) is None
    words = read(kept(preview("en", context), context))
    assert words is not None
    assert fill(words.invitation, Tokens("a" * 30, "b" * 30, ("c" * 30,))) is not None
    for tokens in (
        Tokens("a<b", "b" * 30, ("c" * 30,)),
        Tokens("a" * 30, "b c", ("c" * 30,)),
        Tokens("a" * 30, "b" * 30, ("c&d",)),
        Tokens("a" * 30, "b" * 30, ("c" * 30, "d" * 30)),
    ):
        assert fill(words.invitation, tokens) is None


@pytest.mark.parametrize("locale", ["en", "fr"])
@pytest.mark.parametrize("kind", [MessageKind.INVITATION, MessageKind.REMINDER])
def test_an_email_of_kept_words_is_the_one_composed_by_rendering(
    locale: str, kind: MessageKind
) -> None:
    """Under the settings it was kept with: the skeleton's path and the reference path,
    from the words, give the bytes rendering gives."""
    carried = Carried(ID.format(1), "Ána Lima", "Viens voir !\n.\nÀ bientôt", 1)
    context = RenderContext.from_settings(SETTINGS, (Inviter("Ána Lima", carried.note, 1),))
    words = read(kept(preview(locale, context), context))
    assert words is not None
    chosen = words.invitation if kind is MessageKind.INVITATION else words.reminder
    for recipient in range(3):
        rendered = message(
            replace(carried, invitation_id=ID.format(recipient)),
            kind=kind,
            locale=locale,
            to=f"r{recipient}@example{recipient}.org",
            message_id=ID.format(100 + recipient),
        )
        from_words = replace(rendered, words=chosen)
        tokens = make_tokens(SETTINGS, rendered.invitation_ids)
        reference = boundless(to_bytes(compose(SETTINGS, rendered, tokens)))
        assert boundless(to_bytes(compose(SETTINGS, from_words, tokens))) == reference
        assert boundless(compose_wire(SETTINGS, from_words, tokens).raw) == reference


def test_the_words_kept_are_sent_whatever_the_settings_say_now() -> None:
    """What makes them worth keeping: other settings render other words, kept words stay."""
    carried = Carried(ID.format(1), "Ana", "", 0)
    context = RenderContext.from_settings(SETTINGS, (Inviter("Ana"),))
    words = read(kept(preview("en", context), context))
    assert words is not None
    moved = replace(SETTINGS, platform_postal_address="2 Other Street, Elsewhere")
    outgoing = replace(message(carried), words=words.invitation)
    tokens = make_tokens(moved, outgoing.invitation_ids)
    for sent in (compose_wire(moved, outgoing, tokens).text, compose(moved, outgoing, tokens)):
        text = sent if isinstance(sent, str) else sent.get_body(("plain",)).get_content()
        assert "1 rue de la Paix, 75002 Paris" in text
        assert "Elsewhere" not in text
    rendered = compose_wire(moved, replace(outgoing, words=None), tokens)
    assert "Elsewhere" in rendered.text
