"""One member's email is rendered once with placeholders and each recipient's tokens put
in their places: whatever the member, the platform and the tokens, that is the email the
templates render with the tokens themselves, and a placeholder a member typed stays as
typed."""

from __future__ import annotations

from dataclasses import replace

from compose_support import MEMBER_TEXT
from hypothesis import given, settings
from hypothesis import strategies as st

from courtois.delivery.render import (
    JOIN_SLOT,
    UNSUBSCRIBE_SLOT,
    Inviter,
    RenderContext,
    Tokens,
    _rendered,
    render,
)
from courtois.domain.members import SUPPORTED_LOCALES
from courtois.domain.messages import MessageKind

# Tokens as minted, and shapes that no link prints as itself (escaped in HTML, say).
TOKEN = st.from_regex(r"[A-Za-z0-9_.-]{1,60}", fullmatch=True) | st.text(min_size=1, max_size=20)
# Text that may hold a placeholder, or the braces of one.
WRITTEN = (
    MEMBER_TEXT
    | st.sampled_from(["{token:u}", "{token:join}", "{token:why}", "x{y}", "{", "Ana"])
    | st.builds(lambda a, b: f"{a}{{token:u}}{b}", MEMBER_TEXT, MEMBER_TEXT)
)


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(list(MessageKind)),
    locale=st.sampled_from(SUPPORTED_LOCALES),
    name=WRITTEN.filter(lambda text: text.strip()),
    note=WRITTEN,
    reminders=st.integers(0, 1),
    platform=WRITTEN.filter(lambda text: text.strip()),
    postal=WRITTEN,
    first_contact=st.booleans(),
    asked=st.booleans(),
    by_member=st.booleans(),
    tokens=st.tuples(TOKEN, TOKEN, TOKEN),
)
def test_tokens_put_in_place_are_the_email_rendered_with_them(
    kind: MessageKind,
    locale: str,
    name: str,
    note: str,
    reminders: int,
    platform: str,
    postal: str,
    first_contact: bool,
    asked: bool,
    by_member: bool,
    tokens: tuple[str, str, str],
) -> None:
    context = RenderContext(
        platform=platform,
        base_url="https://agora.test",
        inviters=(Inviter(name, note, reminders),),
        postal_address=postal,
        first_contact=first_contact,
        asked_by_recipient=asked,
        by_member=by_member,
    )
    given_tokens = Tokens(tokens[0], tokens[1], (tokens[2],))
    assert render(kind, locale, context, given_tokens) == _rendered(
        kind, locale, context, given_tokens
    )
    # And rendered again (from the cache), the same.
    assert render(kind, locale, context, given_tokens) == _rendered(
        kind, locale, context, given_tokens
    )
    assert render(kind, locale, context) == _rendered(kind, locale, context, Tokens.placeholders())


def test_a_placeholder_a_member_typed_is_printed_as_typed() -> None:
    context = RenderContext(
        platform="Agora",
        base_url="https://agora.test",
        inviters=(Inviter("Ana", f"See {UNSUBSCRIBE_SLOT} and {JOIN_SLOT}"),),
    )
    email = render(MessageKind.INVITATION, "en", context, Tokens("u" * 30, "w" * 30, ("j" * 30,)))
    assert f"See {UNSUBSCRIBE_SLOT} and {JOIN_SLOT}" in email.text
    assert email.text.count("u" * 30) == 1
    assert email.text.count("j" * 30) == 1
    other = replace(context, inviters=(Inviter("Ana", "See you"),))
    plain = render(MessageKind.INVITATION, "en", other, Tokens("u" * 30, "w" * 30, ("j" * 30,)))
    assert UNSUBSCRIBE_SLOT not in plain.text + plain.html
