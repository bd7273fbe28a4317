"""French HTML never breaks "e-mail" at its hyphen ("un seul e-" / "mail" at a line's end):
there the hyphen is U+2011, which never breaks; the plain text keeps the ASCII hyphen,
and what members typed and the platform's links are printed as they are."""

from __future__ import annotations

from dataclasses import replace
from itertools import product

import pytest
from markupsafe import Markup

from courtois.delivery.hyphens import NON_BREAKING_HYPHEN, unbroken
from courtois.delivery.render import Inviter, RenderContext, render
from courtois.domain.members import SUPPORTED_LOCALES
from courtois.domain.messages import MessageKind

HYPHEN = NON_BREAKING_HYPHEN


def contexts() -> list[tuple[MessageKind, RenderContext]]:
    """Every kind of email, with and without the Article 14 notice, each reminder choice,
    the reminder the recipient asked for, and the text a member sends themselves."""
    base = RenderContext(
        platform="Agora",
        base_url="https://agora.test",
        inviters=(Inviter("Ana Lima", "Hi"),),
        postal_address="1 rue de la Paix, 75002 Paris",
    )
    found = []
    for kind, first_contact, reminders in product(MessageKind, (True, False), (0, 1)):
        count = 3 if kind is MessageKind.DIGEST else 1
        inviters = tuple(Inviter(f"Member {i}", "Hi", reminders) for i in range(count))
        context = replace(base, inviters=inviters, first_contact=first_contact)
        found.append((kind, context))
        if kind is MessageKind.REMINDER:
            found.append((kind, replace(context, asked_by_recipient=True)))
    found.append((MessageKind.INVITATION, replace(base, by_member=True)))
    return found


@pytest.mark.parametrize(("kind", "context"), contexts())
def test_french_html_keeps_every_e_mail_whole_and_the_text_keeps_the_ascii_hyphen(
    kind: MessageKind, context: RenderContext
) -> None:
    rendered = render(kind, "fr", context)
    assert "e-mail" not in rendered.html
    assert f"e{HYPHEN}mail" in rendered.html
    assert "e-mail" in rendered.text
    assert HYPHEN not in rendered.text + rendered.subject


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_what_members_typed_and_the_links_are_printed_as_they_are(locale: str) -> None:
    """Only the catalogue's words change: a note or a link holding "e-mail" is copied by the
    reader as printed."""
    context = RenderContext(
        platform="Agora",
        base_url="https://e-mail.agora.test",
        inviters=(Inviter("Ana e-mail Lima", "Write to my e-mail, e-mails welcome"),),
        by_member=True,
    )
    html = render(MessageKind.INVITATION, locale, context).html
    assert "Write to my e-mail, e-mails welcome" in html
    assert "Ana e-mail Lima" in html
    assert "(https://e-mail.agora.test)" in html


def test_english_has_no_hyphen_to_keep() -> None:
    for kind, context in contexts():
        rendered = render(kind, "en", context)
        assert HYPHEN not in rendered.html + rendered.text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("un seul e-mail.", f"un seul e{HYPHEN}mail."),
        ("ces e-mails, et l'e-mail", f"ces e{HYPHEN}mails, et l'e{HYPHEN}mail"),
        ("E-mail : x", f"E{HYPHEN}mail : x"),
        ("https://e-mail.example/e-mail", "https://e-mail.example/e-mail"),
        ("e-mail.example, x@e-mail.test", "e-mail.example, x@e-mail.test"),
        ("re-mail, e-mailing, e-mail-x", "re-mail, e-mailing, e-mail-x"),
    ],
)
def test_only_the_word_alone_is_changed(value: str, expected: str) -> None:
    assert unbroken(value) == expected


def test_markup_stays_markup() -> None:
    changed = unbroken(Markup("<a>ces e-mails</a>"))
    assert isinstance(changed, Markup)
    assert str(changed) == f"<a>ces e{HYPHEN}mails</a>"
    assert type(unbroken("e-mail")) is str
