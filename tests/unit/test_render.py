"""Rendering every kind of email in every language: escaping, limits, digests, catalogues."""

from __future__ import annotations

import html
import re
from dataclasses import replace

import pytest
from catalogue_support import (
    french_spacing_faults,
    held_messages,
    template_messages,
    translations,
    variables,
)
from hypothesis import given
from hypothesis import strategies as st

from courtois.delivery.hyphens import NON_BREAKING_HYPHEN
from courtois.delivery.i18n import catalogue_source
from courtois.delivery.render import (
    JOIN_SLOT,
    UNSUBSCRIBE_SLOT,
    WHY_SLOT,
    Inviter,
    RenderContext,
    Tokens,
    preview,
    render,
    sections,
)
from courtois.delivery.text import ELLIPSIS, clean_name, clean_note
from courtois.domain.members import MAX_NAME_LENGTH, SUPPORTED_LOCALES
from courtois.domain.messages import MessageKind
from courtois.domain.preview import MAX_NOTE_LENGTH

NAMES = ("Ana Lima", "Bo Chen", "Cy Diaz", "Di Egan", "Ed Fox")


def context(*inviters: Inviter, first_contact: bool = True) -> RenderContext:
    return RenderContext(
        platform="Agora",
        base_url="https://agora.test",
        inviters=inviters or (Inviter("Ana Lima"),),
        postal_address="1 rue de la Paix\n75002 Paris",
        first_contact=first_contact,
    )


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
@pytest.mark.parametrize("kind", list(MessageKind))
def test_every_kind_renders_in_every_language(kind: MessageKind, locale: str) -> None:
    rendered = render(kind, locale, context(Inviter("Ana Lima", "Hi", 1)))
    assert rendered.subject
    assert "\n" not in rendered.subject
    for part in (rendered.text, rendered.html):
        assert part.endswith("\n")
        assert "\r" not in part
        assert "%(" not in part  # every gettext variable was filled
    assert rendered.html.startswith("<!DOCTYPE html>")
    assert f'<html lang="{locale}">' in rendered.html
    # Plain text reads well in a plain-text client: no markup, short lines but for links.
    assert "<p>" not in rendered.text
    for line in rendered.text.splitlines():
        assert len(line) <= 72 or "https://" in line


def test_note_and_name_are_escaped_in_html_and_verbatim_in_text() -> None:
    note = "<script>alert('x')</script> & <b>bold</b>"
    rendered = render(
        MessageKind.INVITATION, "en", context(Inviter('Ana <img src=x onerror="y">', note))
    )
    assert "<script" not in rendered.html
    assert "<img" not in rendered.html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in (
        rendered.html
    )
    assert "Ana &lt;img src=x onerror=&#34;y&#34;&gt;" in rendered.html
    assert f"  {note}\n" in rendered.text
    assert rendered.subject.startswith('Ana <img src=x onerror="y"> invites you')


@pytest.mark.parametrize(
    "raw",
    [
        "Ana\r\nBcc: x@y",
        "Ana\nLima",
        "Ana\x00\x1b[31m",
        "Ana\u2028Lima",
        "Ana\u202eamiL",
        "Ana\x85",
    ],
)
def test_names_become_one_clean_line(raw: str) -> None:
    rendered = render(MessageKind.INVITATION, "en", context(Inviter(raw)))
    assert not re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e]", rendered.subject)
    assert rendered.subject.startswith(clean_name(raw) + " invites you")


def test_names_cannot_pass_for_encoded_words() -> None:
    """Receivers decode "=?utf-8?q?...?=" in headers: a name must never carry one."""
    assert clean_name("Ana =?utf-8?q?Bcc=3A_x=40y?=") == "Ana = ?utf-8?q?Bcc=3A_x=40y?="
    rendered = render(MessageKind.INVITATION, "en", context(Inviter("=?utf-8?b?QQ==?=")))
    assert "=?" not in rendered.subject


def test_long_names_and_notes_are_bounded() -> None:
    name, note = "N" * 5000, "x" * 50_000
    assert len(clean_name(name)) == MAX_NAME_LENGTH
    assert clean_name(name).endswith(ELLIPSIS)
    assert len(clean_note(note)) == MAX_NOTE_LENGTH
    rendered = render(MessageKind.INVITATION, "en", context(Inviter(name, note)))
    assert len(rendered.subject) < MAX_NAME_LENGTH + 40
    assert "N" * (MAX_NAME_LENGTH) not in rendered.text
    assert "x" * MAX_NOTE_LENGTH not in rendered.text
    assert "x" * (MAX_NOTE_LENGTH - 1) + ELLIPSIS in rendered.text
    assert len(rendered.text) < 10_000


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_the_note_is_wrapped_in_plain_text_like_the_rest(locale: str) -> None:
    """Each line of the note at 72 columns, as every other paragraph; a link or a word too
    long for a line is kept whole, and short lines are kept as typed, tabs too."""
    link = "https://example.org/" + "x" * 90
    paragraph = " ".join(["Viens voir,"] * 40)
    note = f"{paragraph} {link} fin.\n\n\tshort\tline\n    - an indented point " + "and more " * 12
    text = render(MessageKind.INVITATION, locale, context(Inviter("Ana Lima", note))).text
    quoted = text.split("\n\n", 3)[3].split("\n\n", 1)[0].split("\n")
    for line in quoted:
        assert len(line) <= 72 or line == f"  {link}", line
        assert line.startswith("  ")
    assert f"  {link}" in quoted
    assert " ".join(" ".join(quoted).split()) == " ".join(paragraph.split()) + f" {link} fin."
    assert "\n  \tshort\tline\n      - an indented point and more" in text
    assert "\n      and more" in text
    for line in text.splitlines():
        assert len(line) <= 72 or "https://" in line


def test_note_keeps_lines_and_tabs_but_no_other_controls() -> None:
    assert clean_note("a\r\nb\rc\td\x00e\x1b\u2028f") == "a\nb\nc\tdef"


def test_a_note_stored_with_a_direction_override_renders_without_it() -> None:
    """Refused when a note comes in (`check_note`); one stored before that, rendered
    again when its email leaves, no longer reads reversed (and so no longer matches the
    preview its consent pins: the worker holds it back)."""
    assert clean_note("see \u202egro.live\u202c and \u2067x\u2069, \u200fok") == (
        "see gro.live and x, \u200fok"
    )


@pytest.mark.parametrize(
    ("count", "en", "fr"),
    [
        (2, "Ana Lima and Bo Chen invited you to join Agora", "Ana Lima et Bo Chen vous invitent"),
        (3, "Ana Lima, Bo Chen and Cy Diaz invited you", "Ana Lima, Bo Chen et Cy Diaz vous"),
        (4, "Ana Lima, Bo Chen and 2 others invited you", "Bo Chen et 2 autres personnes vous"),
        (5, "Ana Lima, Bo Chen and 3 others invited you to join Agora", "et 3 autres personnes"),
    ],
)
def test_digest_subject_names_the_first_members_and_counts_the_rest(
    count: int, en: str, fr: str
) -> None:
    ctx = context(*(Inviter(name) for name in NAMES[:count]))
    assert en in render(MessageKind.DIGEST, "en", ctx).subject
    assert fr in render(MessageKind.DIGEST, "fr", ctx).subject


def test_english_lists_of_members_have_one_style_everywhere() -> None:
    """No comma before "and", in the subject of three members as in that of four and more
    ("Ana, Bo and 2 others"), and in the body's lists."""
    three = render(MessageKind.DIGEST, "en", context(*(Inviter(name) for name in NAMES[:3])))
    assert three.subject == "Ana Lima, Bo Chen and Cy Diaz invited you to join Agora"
    for part in (flat(three.text), flat(three.html)):
        assert "Ana Lima, Bo Chen and Cy Diaz each invited you personally" in part
        assert "Source: Ana Lima, Bo Chen and Cy Diaz, from their own contacts." in part
        assert "Bo Chen, and" not in part


# French puts a space before ":", ";", "!" and "?": an ordinary one lets a line break there.
_ORPHAN = re.compile(r"(^|\n)\s*[:;!?]")
_BREAKABLE = re.compile(r"[ \t\n][:;!?]")


@pytest.mark.parametrize("length", range(1, 60))
def test_french_punctuation_never_starts_a_line(length: int) -> None:
    """The space before French double punctuation is a no-break one (U+00A0 before ":",
    U+202F before ";", "!" and "?"): wrapping never leaves one alone at a line's start,
    and a browser does not either."""
    member = "M" * length
    one = context(Inviter(member, "Salut", 1))
    emails = [
        render(MessageKind.INVITATION, "fr", one),
        render(MessageKind.REMINDER, "fr", replace(one, first_contact=False)),
        render(
            MessageKind.REMINDER,
            "fr",
            replace(one, first_contact=False, asked_by_recipient=True),
        ),
        render(MessageKind.DIGEST, "fr", context(Inviter(member), Inviter("Bo " * (length % 7)))),
    ]
    for email in emails:
        assert not _ORPHAN.search(email.text), email.text
        assert not _BREAKABLE.search(email.text)
        assert not _BREAKABLE.search(email.html)
        assert not _BREAKABLE.search(email.subject)


def test_the_french_catalogue_has_no_breakable_space_before_double_punctuation() -> None:
    for message in held_messages(catalogue_source("fr")).values():
        for string in translations(message):
            assert french_spacing_faults(string) == [], string


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_digest_lists_every_member_with_their_own_join_link(locale: str) -> None:
    ctx = context(*(Inviter(name, f"note of {name}") for name in NAMES))
    tokens = Tokens("U", "W", tuple(f"J{i}" for i in range(len(NAMES))))
    rendered = render(MessageKind.DIGEST, locale, ctx, tokens)
    for index, name in enumerate(NAMES):
        for part in (rendered.text, rendered.html):
            assert name in part
            assert f"note of {name}" in part
            assert f"https://agora.test/join/J{index}" in part
    assert "5" in rendered.text.split("\n\n")[1]


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_each_digest_section_is_what_its_member_previewed(locale: str) -> None:
    """A digest is made of the very sections each member saw in their own preview."""
    inviters = [Inviter(name, f"Come, from {name}", index % 2) for index, name in enumerate(NAMES)]
    digest = render(MessageKind.DIGEST, locale, context(*inviters))
    for inviter in inviters:
        (section,) = sections(locale, context(inviter))
        shown = preview(locale, context(inviter))
        assert section.text in shown.text
        assert section.text in digest.text
        assert section.html in shown.html
        assert section.html in digest.html


def test_a_reminder_lists_no_further_follow_up_and_no_notice_when_not_first_contact() -> None:
    ctx = context(Inviter("Ana Lima", "Hi", 1), first_contact=False)
    reminder = render(MessageKind.REMINDER, "en", ctx)
    assert reminder.subject == "Reminder: Ana Lima invites you to join Agora"
    assert "You will get nothing more about it." in flat(reminder.text)
    assert "asked us to send one reminder, at the earliest" not in flat(reminder.text)
    assert "GDPR" not in reminder.text
    assert "GDPR" not in reminder.html


@pytest.mark.parametrize(
    ("locale", "subject", "said", "untrue"),
    [
        (
            "en",
            "The reminder you asked for: Ana Lima invites you to join Agora",
            (
                "You asked us to remind you of Ana Lima's invitation: here it is.",
                "asked Agora to send their invitation. This reminder of it is the one you "
                "asked for. Agora did not pick you.",
            ),
            ("reminder Ana Lima asked us to send", "asked Agora to send this."),
        ),
        (
            "fr",
            "Le rappel que vous avez demandé\u00a0: Ana Lima vous invite à rejoindre Agora",
            (
                "Vous nous avez demandé de vous rappeler l'invitation d'Ana Lima : la voici.",
                "Agora vous a transmis son invitation à sa demande. Ce rappel, c'est vous qui "
                "l'avez demandé.",
            ),
            ("demandé par Ana Lima", "Agora vous écrit à sa demande"),
        ),
    ],
)
def test_a_reminder_the_recipient_asked_for_says_so_not_that_the_member_did(
    locale: str, subject: str, said: tuple[str, ...], untrue: tuple[str, ...]
) -> None:
    """ "Remind me later" is the recipient's request: the email, its footer included, must
    not claim the member asked for a reminder they never ticked."""
    asked = replace(context(Inviter("Ana Lima"), first_contact=False), asked_by_recipient=True)
    reminder = render(MessageKind.REMINDER, locale, asked)
    assert reminder.subject == subject
    for part in (flat(reminder.text), flat(reminder.html.replace("&#39;", "'"))):
        for sentence in said:
            assert sentence in part
        for sentence in untrue:
            assert sentence not in part
    # The member's own reminder keeps its words; a preview never carries the recipient's.
    ticked = render(MessageKind.REMINDER, locale, context(Inviter("Ana Lima", "", 1)))
    for part in (flat(ticked.text), flat(ticked.html.replace("&#39;", "'"))):
        for sentence in untrue:
            assert sentence in part
        for sentence in said:
            assert sentence not in part
    assert (
        not preview(locale, context(Inviter("Ana Lima", "", 1)))
        .follow_ups[0]
        .subject.startswith(subject[:12])
    )


@pytest.mark.parametrize(("locale", "title"), [("en", "GDPR, Article 14"), ("fr", "RGPD")])
def test_first_contact_carries_the_article_14_notice(locale: str, title: str) -> None:
    first = render(MessageKind.INVITATION, locale, context(Inviter("Ana Lima")))
    later = render(
        MessageKind.INVITATION, locale, context(Inviter("Ana Lima"), first_contact=False)
    )
    for part in (first.text, first.html):
        assert title in part
        assert "Agora, 1 rue de la Paix, 75002 Paris" in flat(part)  # controller, postal address
        assert "30" in part  # retention
        assert f"https://agora.test/why/{WHY_SLOT}#forget" in part  # erasure link
        assert flat(part).count("Ana Lima") >= 3  # inviter, footer, source
    assert title not in later.text
    assert title not in later.html
    # Who invited, what the platform is, its address, why and how to stop: always there.
    for part in (later.text, later.html):
        assert "https://agora.test" in part
        assert "75002 Paris" in part
        assert f"/why/{WHY_SLOT}" in part
        assert f"/u/{UNSUBSCRIBE_SLOT}" in part


@pytest.mark.parametrize(
    ("locale", "said", "untrue"),
    [
        (
            "en",
            ("sent you this themselves, from their own mailbox", "it sends you no email"),
            ("asked Agora to send", "only when a member asks", "only email you will get",
             "Stop these emails", "what we hold", "our legitimate interest"),
        ),
        (
            "fr",
            ("de sa propre messagerie", "ne vous envoie aucun e-mail"),
            ("vous écrit à sa demande", "qu'à la demande d'un membre", "seul e-mail",
             "ces e-mails", "ce que nous savons", "notre intérêt légitime"),
        ),
    ],
)  # fmt: skip
def test_a_text_the_member_sends_does_not_speak_for_the_platform(
    locale: str, said: tuple[str, ...], untrue: tuple[str, ...]
) -> None:
    """strict-eu: the member sends the invitation from their own mailbox, so it may not say
    the platform sent it, will send more, or speaks as "we"; its links stay."""
    by_member = replace(context(Inviter("Ana Lima", "Hi")), by_member=True)
    shown = render(MessageKind.INVITATION, locale, by_member)
    # The HTML's "e-mail" cannot break at its hyphen (test_unbroken_hyphens.py).
    shown_html = shown.html.replace("&#39;", "'").replace(NON_BREAKING_HYPHEN, "-")
    for part in (flat(shown.text), flat(shown_html)):
        assert all(words in part for words in said), part
        assert [words for words in untrue if words in part] == []
        for slot in (f"/join/{JOIN_SLOT}", f"/why/{WHY_SLOT}", f"/u/{UNSUBSCRIBE_SLOT}"):
            assert slot in part
    sent_by_platform = render(MessageKind.INVITATION, locale, context(Inviter("Ana Lima", "Hi")))
    assert all(words in flat(sent_by_platform.text) for words in untrue[:3])


def test_tokens_replace_every_placeholder() -> None:
    rendered = render(MessageKind.INVITATION, "en", context(), Tokens("UU", "WW", ("JJ",)))
    for part in (rendered.text, rendered.html):
        assert "{token" not in part
        assert "/u/UU" in part
        assert "/why/WW" in part
        assert "/join/JJ" in part


def test_kind_and_count_must_agree() -> None:
    two = context(Inviter("Ana"), Inviter("Bo"))
    with pytest.raises(ValueError, match="one invitation"):
        render(MessageKind.INVITATION, "en", two)
    with pytest.raises(ValueError, match="One join token"):
        render(MessageKind.DIGEST, "en", two, Tokens("u", "w", ("j",)))
    with pytest.raises(ValueError, match="one member"):
        preview("en", two)


@given(name=st.text(max_size=300), note=st.text(max_size=1500))
def test_any_input_renders_safely(name: str, note: str) -> None:
    rendered = render(MessageKind.INVITATION, "en", context(Inviter(name or "x", note)))
    assert "\n" not in rendered.subject
    assert "\r" not in rendered.subject
    assert "\r" not in rendered.text
    # Whatever was typed, the only tags in the HTML are the template's.
    tags = set(re.findall(r"<([a-zA-Z!/][a-zA-Z]*)", rendered.html))
    assert tags <= {
        "!DOCTYPE", "html", "/html", "head", "/head", "meta", "title", "/title", "body", "/body",
        "div", "/div", "p", "/p", "blockquote", "/blockquote", "a", "/a", "hr", "br", "strong",
        "/strong", "ul", "/ul", "li", "/li",
    }  # fmt: skip


# --- catalogues --------------------------------------------------------------------------------


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_catalogues_hold_exactly_the_template_messages(locale: str) -> None:
    used = template_messages("courtois.delivery", ("txt", "html"))
    held = held_messages(catalogue_source(locale))
    assert sorted(held) == sorted(used)
    if locale == "en":
        return
    for msgid, message in held.items():
        strings = translations(message)
        assert all(strings), f"untranslated: {msgid!r}"
        for string in strings:
            assert variables(string) <= variables(" ".join(used[msgid])), string
            assert "fuzzy" not in message.flags


# --- what a digest says of each invitation it carries ----------------------------------------


def accept_links(html: str) -> dict[str, str]:
    """Each join link's visible words, by the link."""
    found = re.findall(r'<a href="(https://agora\.test/join/[^"]+)"[^>]*>(.*?)</a>', html)
    return dict(found)


@pytest.mark.parametrize(
    ("locale", "accepts"),
    [
        (
            "en",
            ("Accept Ana Lima's invitation", "Accept Bruno's invitation",
             "Accept Élodie <b>&</b> Co's invitation"),
        ),
        (
            "fr",
            ("Accepter l'invitation d'Ana Lima", "Accepter l'invitation de Bruno",
             "Accepter l'invitation d'Élodie <b>&</b> Co"),
        ),
    ],
)  # fmt: skip
def test_each_accept_link_of_a_digest_names_whose_invitation_it_accepts(
    locale: str, accepts: tuple[str, ...]
) -> None:
    """One email, several invitations: a button each, and each says whose invitation it
    accepts (French elides "de" before a vowel). A name is escaped in HTML like any other
    member input, and printed as cleaned in the text."""
    names = ("Ana Lima", "Bruno", "Élodie\n<b>&</b> Co")
    ctx = context(*(Inviter(name) for name in names))
    tokens = Tokens("U", "W", ("J0", "J1", "J2"))
    digest = render(MessageKind.DIGEST, locale, ctx, tokens)
    links = {
        link: html.unescape(words.replace("&#39;", "'"))
        for link, words in accept_links(digest.html).items()
    }
    assert links == {f"https://agora.test/join/J{i}": accepts[i] for i in range(3)}
    assert "<b>" not in digest.html
    colon = "\u00a0:" if locale == "fr" else ":"
    text = digest.text.split("\n")
    for index, accept in enumerate(accepts):
        at = text.index(f"https://agora.test/join/J{index}")
        assert text[at - 1] == accept + colon


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_an_invitation_alone_names_its_member_on_the_button_as_a_digest_does(
    locale: str,
) -> None:
    """A digest is made of the sections each member previewed alone: the button names the
    member there too, so the words a member consented to are the words the digest shows."""
    alone = render(MessageKind.INVITATION, locale, context(Inviter("Ana Lima")))
    (words,) = accept_links(alone.html).values()
    assert "Ana Lima" in words


@pytest.mark.parametrize(
    ("locale", "singular", "plural"),
    [
        (
            "en",
            ("Purpose: delivering this invitation and keeping your choices about it",
             "until the invitation expires after 30 days"),
            ("Purpose: delivering these invitations and keeping your choices about them",
             "passing on invitations members chose to send",
             "until the invitations expire after 30 days"),
        ),
        (
            "fr",
            ("remettre cette invitation et respecter vos choix à son sujet",
             "ou que l'invitation expire après 30 jours"),
            ("remettre ces invitations et respecter vos choix à leur sujet",
             "transmettre des invitations que des membres ont choisi d'envoyer",
             "ou que les invitations expirent après 30 jours"),
        ),
    ],
)  # fmt: skip
def test_the_article_14_notice_of_a_digest_speaks_of_every_invitation_it_carries(
    locale: str, singular: tuple[str, ...], plural: tuple[str, ...]
) -> None:
    digest = render(MessageKind.DIGEST, locale, context(*(Inviter(name) for name in NAMES[:3])))
    alone = render(MessageKind.INVITATION, locale, context(Inviter("Ana Lima")))
    for part in (digest.text, digest.html):
        shown = flat(part.replace("&#39;", "'"))
        assert [words for words in plural if words not in shown] == []
        assert [words for words in singular if words in shown] == []
    for part in (alone.text, alone.html):
        shown = flat(part.replace("&#39;", "'"))
        assert [words for words in singular if words not in shown] == []
        assert [words for words in plural if words in shown] == []


@pytest.mark.parametrize(
    ("locale", "words"),
    [("en", "Data-protection contact: "), ("fr", "Contact pour la protection des données\u00a0: ")],
)
def test_the_notice_names_the_privacy_contact_when_one_is_set(locale: str, words: str) -> None:
    """Article 14(1)(b): the data-protection officer's contact details, where there is one.
    Unset, no line (and an email previewed before the setting existed is unchanged)."""
    contact = 'dpo@agora.test <b>"DPO"</b>\nline two'
    named = replace(context(Inviter("Ana Lima")), privacy_contact=contact)
    first = render(MessageKind.INVITATION, locale, named)
    assert flat(f'{words}dpo@agora.test <b>"DPO"</b>, line two') in flat(first.text)
    escaped = f"{words}dpo@agora.test &lt;b&gt;&#34;DPO&#34;&lt;/b&gt;, line two"
    assert flat(escaped) in flat(first.html)
    unset = render(MessageKind.INVITATION, locale, context(Inviter("Ana Lima")))
    later = render(MessageKind.INVITATION, locale, replace(named, first_contact=False))
    for rendered in (unset, later):
        assert words.strip() not in rendered.text
        assert words.strip() not in rendered.html
