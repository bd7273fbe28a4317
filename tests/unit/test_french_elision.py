"""French elision before a name: "d'Ana" and "qu'Élodie", but "de Bruno" and "de Hugo", in
the emails as French readers get them, whatever the name; and every French sentence that
writes a name joined to the word before it gets that form from its template."""

from __future__ import annotations

import re
from importlib.resources import files
from io import BytesIO
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from markupsafe import Markup

from courtois.delivery import i18n
from courtois.delivery.elision import ELIDING, before_name, elides, joined
from courtois.delivery.render import Inviter, RenderContext, render
from courtois.domain.messages import MessageKind
from courtois.web.pages.render import environment

# (name, "de" before it, "que" before it)
NAMES = [
    ("Ana", "d'Ana", "qu'Ana"),
    ("Élodie", "d'Élodie", "qu'Élodie"),
    ("Bruno", "de Bruno", "que Bruno"),
    ("Hugo", "de Hugo", "que Hugo"),
    ("Yves", "d'Yves", "qu'Yves"),
]
PLATFORMS = [
    ("Agora", "d'Agora", "qu'Agora"),
    ("Écume", "d'Écume", "qu'Écume"),
    ("Bazar", "de Bazar", "que Bazar"),
    ("Hublot", "de Hublot", "que Hublot"),
]


@pytest.mark.parametrize(
    ("word", "name", "expected"),
    [
        *(("de", name, de) for name, de, _ in NAMES),
        *(("que", name, que) for name, _, que in NAMES),
        ("de", "ana", "d'ana"),
        ("de", "ÉLODIE", "d'ÉLODIE"),
        ("de", "Œdipe", "d'Œdipe"),
        ("de", "Ùrsula", "d'Ùrsula"),
        ("de", '"Ana"', 'd\'"Ana"'),
        ("de", "« Isa »", "d'« Isa »"),
        ("de", "hélène", "de hélène"),
        ("de", "1Password", "de 1Password"),
        ("de", "", "de "),
        ("en tant que", "Ana Lima", "en tant qu'Ana Lima"),
        ("la", "Île", "l'Île"),
        ("lorsque", "Ana", "lorsqu'Ana"),
        # A list of names elides on its first.
        ("de", "Ana, Bruno et 3 autres", "d'Ana, Bruno et 3 autres"),
        ("de", "Bruno, Ana et Élodie", "de Bruno, Ana et Élodie"),
    ],
)
def test_a_word_before_a_name_elides_before_a_vowel_only(
    word: str, name: str, expected: str
) -> None:
    assert joined(word, name) == expected


def test_only_words_that_elide_are_joined() -> None:
    with pytest.raises(ValueError, match="elides"):
        before_name("from", "Ana")
    assert not elides("  ")
    assert elides("\u00a0Yves")


def test_the_filter_escapes_the_name_and_not_its_apostrophe() -> None:
    html = environment("fr").from_string('{{ name|after("de") }}')
    assert html.render(name="Ana & <Bo>") == "d'Ana &amp; &lt;Bo&gt;"
    assert html.render(name=Markup("&#34;Ana&#34;")) == "d'&#34;Ana&#34;"
    text = environment("fr").overlay(autoescape=False).from_string('{{ name|after("de") }}')
    assert text.render(name="Ana & <Bo>") == "d'Ana & <Bo>"


# --- the catalogues and the templates ---------------------------------------------------------

TEMPLATES = {
    "courtois": Path(str(files("courtois.delivery").joinpath("templates"))),
    "pages": Path(str(files("courtois.web.pages").joinpath("templates"))),
}


def _joined_variables(text: str) -> set[str]:
    return {
        variable
        for variable in re.findall(r"%\((\w+)\)[sd]", text)
        if variable.partition("_")[0] in ELIDING and variable.partition("_")[2]
    }


@pytest.mark.parametrize("domain", sorted(TEMPLATES))
def test_every_joined_name_a_french_sentence_uses_is_passed_by_its_template(domain: str) -> None:
    catalog = read_po(BytesIO(i18n.catalogue_source("fr", domain)))
    sources = [path.read_text("utf-8") for path in sorted(TEMPLATES[domain].iterdir())]
    lines = [line for source in sources for line in source.splitlines()]
    checked = 0
    for message in catalog:
        if not message.id:
            continue
        msgid = message.id if isinstance(message.id, str) else message.id[0]
        strings = (message.string,) if isinstance(message.string, str) else message.string
        wanted = set().union(*(_joined_variables(string) for string in strings))
        if not wanted:
            continue
        calls = [line for line in lines if f'"{msgid}"' in line]
        assert calls, msgid
        for call in calls:
            for variable in wanted:
                assert f"{variable}=" in call, (variable, call)
        checked += 1
    assert checked >= 5


# --- the emails, rendered -----------------------------------------------------------------------


def _context(platform: str, *names: str, by_member: bool = False) -> RenderContext:
    return RenderContext(
        platform=platform,
        base_url="https://agora.test",
        inviters=tuple(Inviter(name) for name in names),
        by_member=by_member,
    )


def _both(kind: MessageKind, context: RenderContext) -> tuple[str, str]:
    """The French email's plain text and HTML, each as one line of words."""
    rendered = render(kind, "fr", context)
    return " ".join(rendered.text.split()), " ".join(rendered.html.split())


@pytest.mark.parametrize(("name", "de", "que"), NAMES)
@pytest.mark.parametrize(("platform", "de_platform", "que_platform"), PLATFORMS)
def test_a_french_invitation_the_member_sends_elides_before_names(
    name: str, de: str, que: str, platform: str, de_platform: str, que_platform: str
) -> None:
    text, html = _both(MessageKind.INVITATION, _context(platform, name, by_member=True))
    assert f"Ne plus recevoir d'invitation ({de} seulement, ou de quiconque sur {platform}) :" in (
        text
    )
    assert f"Pourquoi vous recevez ceci, et ce {que_platform} sait de vous :" in text
    assert f"Pourquoi vous recevez ceci, et ce {que_platform} sait de vous</a>" in html
    for part in (text, html):
        assert f"sur la base de l'intérêt légitime {de_platform} à accompagner" in part


@pytest.mark.parametrize(("platform", "de_platform"), [p[:2] for p in PLATFORMS])
@pytest.mark.parametrize("name", [n[0] for n in NAMES])
def test_a_french_digest_elides_before_the_platform(
    platform: str, de_platform: str, name: str
) -> None:
    text, html = _both(MessageKind.DIGEST, _context(platform, name, "Bo", "Cy", "Di", "Ed"))
    for part in (text, html):
        assert f"5 membres {de_platform} ont choisi de vous inviter." in part


@pytest.mark.parametrize(("name", "de"), [n[:2] for n in NAMES])
@pytest.mark.parametrize(("platform", "de_platform"), [p[:2] for p in PLATFORMS])
@pytest.mark.parametrize("kind", [MessageKind.INVITATION, MessageKind.REMINDER])
def test_a_french_stop_line_says_whose_emails_stop(
    kind: MessageKind, platform: str, de_platform: str, name: str, de: str
) -> None:
    """The emails stop *from* the member or the whole platform: "pour Ana seulement, ou pour
    tout Agora" said "for Ana", and "tout Agora" is not French."""
    text, _ = _both(kind, _context(platform, name))
    assert f"Ne plus recevoir ces e-mails (ceux {de} seulement, ou tous ceux {de_platform}) :" in (
        text
    )


@pytest.mark.parametrize(("platform", "de_platform"), [p[:2] for p in PLATFORMS])
def test_a_french_digest_stop_line_says_whose_emails_stop(platform: str, de_platform: str) -> None:
    text, _ = _both(MessageKind.DIGEST, _context(platform, "Ana", "Bo"))
    stop = "Ne plus recevoir ces e-mails (ceux de ces membres seulement, ou tous ceux"
    assert f"{stop} {de_platform}) :" in text


@pytest.mark.parametrize(("name", "de"), [n[:2] for n in NAMES])
def test_a_french_reminder_the_recipient_asked_for_elides_before_the_member(
    name: str, de: str
) -> None:
    context = RenderContext(
        platform="Agora",
        base_url="https://agora.test",
        inviters=(Inviter(name),),
        first_contact=False,
        asked_by_recipient=True,
    )
    text, html = _both(MessageKind.REMINDER, context)
    sentence = f"Vous nous avez demandé de vous rappeler l'invitation {de} : la voici."
    assert sentence in text
    assert sentence in html


def test_english_keeps_its_words() -> None:
    invitation = render(MessageKind.INVITATION, "en", _context("Agora", "Ana", by_member=True))
    assert "Stop any further invitation, from Ana or from anyone on Agora:" in " ".join(
        invitation.text.split()
    )
    assert "on the basis of Agora's legitimate interest" in invitation.html
    digest = render(MessageKind.DIGEST, "en", _context("Agora", "Ana", "Bo"))
    assert "2 members of Agora chose to invite you." in digest.text
