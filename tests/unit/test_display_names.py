"""A member's display name opens every invitation's subject and names the sender in From:
one that reads as a reply, a forward or one of the platform's own reminders, in any
language it has and however disguised (look-alike letters, fullwidth forms, invisible
characters), is refused, as is one that shows an email address; characters that show
nothing are dropped, at input and again when an email is written."""

from __future__ import annotations

import pytest
from compose_support import SETTINGS
from hypothesis import given, settings
from hypothesis import strategies as st

from courtois.delivery.render import Inviter, RenderContext, render
from courtois.delivery.text import clean_name
from courtois.domain.errors import InvalidInput
from courtois.domain.members import SUPPORTED_LOCALES, check_display_name
from courtois.domain.messages import MessageKind

# Characters that show nothing (U+200C and U+200D only outside a word or an emoji).
INVISIBLE = "\u00ad\u061c\u180e\u200b\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff"


def refusal(name: str) -> str:
    """Why the name is refused."""
    with pytest.raises(InvalidInput) as refused:
        check_display_name(name)
    return refused.value.details["name"]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("Reminder: Ana Lima", "reminder prefix"),
        ("Rappel : Ana Lima", "reminder prefix"),
        ("Rappel\u202f: Ana Lima", "reminder prefix"),  # narrow no-break space, as French
        ("RAPPEL\u00a0: Ana", "reminder prefix"),
        ("reminder:Ana", "reminder prefix"),
        ("Reminder Ana Lima", "reminder prefix"),
        ("Friendly reminder - Ana", "reminder prefix"),
        ("Petit rappel – Ana", "reminder prefix"),
        ("[Reminder] Ana", "reminder prefix"),
        ("(Rappel) Ana", "reminder prefix"),
        ("R\u0435minder: Ana", "reminder prefix"),  # Cyrillic е
        ("Rаppel\u2236 Ana", "reminder prefix"),  # Cyrillic а, ratio sign for a colon
        ("R\u0435: Ana Lima", "reply prefix"),  # Cyrillic е
        ("RE\uff1aAna", "reply prefix"),  # fullwidth colon
        ("\uff32\uff45: Ana", "reply prefix"),  # fullwidth letters
        ("\u0280\u1d07: Ana", "reply prefix"),  # small capitals
        ("Re\u200b: Ana", "reply prefix"),
        ("R\u0301e: Ana", "reply prefix"),  # a combining accent on the R
        ("\u0391W: Ana", "reply prefix"),  # Greek Alpha: German "AW:"
        ("FW: Ana", "reply prefix"),
        ("[Fwd] Ana", "reply prefix"),
        ("«Re» : Ana", "reply prefix"),
        # Other languages' mail clients: Italian, Polish, Portuguese, Turkish, Chinese,
        # Japanese, Korean, Russian, Greek, Dutch, Finnish, Hungarian, Hebrew, Arabic.
        ("R: ciao", "reply prefix"),
        ("RIF: Ana", "reply prefix"),
        ("Odp: Ana", "reply prefix"),
        ("RES: oi", "reply prefix"),
        ("ENC: Ana", "reply prefix"),
        ("YNT: Ana", "reply prefix"),
        ("İLT: Ana", "reply prefix"),  # Turkish dotted capital I
        ("回复: 你好", "reply prefix"),
        ("回覆：Ana", "reply prefix"),
        ("转发: Ana", "reply prefix"),
        ("返信: Ana", "reply prefix"),
        ("회신: Ana", "reply prefix"),
        ("Отв: Ana", "reply prefix"),
        ("ПЕРЕСЛ: Ana", "reply prefix"),
        ("ΑΠ: Ana", "reply prefix"),
        ("ΣΧΕΤ: Ana", "reply prefix"),
        ("Doorst: Ana", "reply prefix"),
        ("VL: Ana", "reply prefix"),
        ("Vá: Ana", "reply prefix"),
        ("השב: Ana", "reply prefix"),
        ("رد: Ana", "reply prefix"),
        ("[RIF] Ana", "reply prefix"),
        ('Ana "The Boss" \\ Lima, <ceo@bank.example>', "address"),
        ("Ana <ceo@bank>", "address"),
        ("Ana \u2039ceo@bank\u203a", "address"),  # single angle quotation marks
        ("ceo@bank.example", "address"),
        ("Ana (ana.lima@bänk.example)", "address"),
        ("Ana ceo\uff20bank\uff0eexample", "address"),  # fullwidth @ and full stop
        ("\u200b\u200f", "empty"),
    ],
)
def test_a_name_that_disguises_the_email_is_refused(name: str, reason: str) -> None:
    assert refusal(name) == reason


@pytest.mark.parametrize(
    ("name", "kept"),
    [
        ("Ana\u200f Lima\u200b", "Ana Lima"),
        ("عائشة\u200f", "عائشة"),
        ("\ufeffAna\u2060 Lima\u00ad", "Ana Lima"),
        ("Ana\u200d Lima", "Ana Lima"),  # a joiner joining nothing
        ("👩\u200d💻 Ana", "👩\u200d💻 Ana"),  # an emoji sequence
        (
            "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
            "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
        ),
        ("Ana @ Home", "Ana @ Home"),
        ("@ana", "@ana"),
        ("Ana@Home", "Ana@Home"),
        ("Réa Lima", "Réa Lima"),
        ("Renée", "Renée"),
        ("Ana (Re)", "Ana (Re)"),
        ("RAPPEL Jean", "RAPPEL Jean"),  # a surname written first
        ("Rappel-Dupont Jean", "Rappel-Dupont Jean"),
        ("Ana Lima – Rappel", "Ana Lima – Rappel"),
        ("Svetlana: the boss", "Svetlana: the boss"),
        ("Ρένα", "Ρένα"),  # Greek Rena
        ("Ревекка", "Ревекка"),  # Cyrillic Revekka
        ("Ivan", "Ivan"),
        ("Irene: the boss", "Irene: the boss"),
        ("Resa Lima", "Resa Lima"),
        ("R2: Ana", "R2: Ana"),
        ("回家", "回家"),
    ],
)
def test_names_near_those_refusals_are_kept(name: str, kept: str) -> None:
    assert check_display_name(name) == kept


# What passes for the full stop of an address: Unicode's confusables for "." (U+002E) and
# for the middle dot (U+00B7), which reads as one between a domain's labels, and the forms
# NFKC folds to either or to the ideographic full stop. Unicode lists nothing for "@"
# beyond the forms NFKC folds (fullwidth and small commercial at).
LOOKALIKE_DOTS = [
    "𝅭",  # musical symbol combining augmentation dot
    "․",  # one dot leader
    "܁",  # Syriac supralinear full stop
    "܂",  # Syriac sublinear full stop
    "꘎",  # Vai full stop
    "𐩐",  # Kharoshthi punctuation dot
    "٠",  # Arabic-Indic digit zero
    "۰",  # extended Arabic-Indic digit zero
    "ꓸ",  # Lisu letter tone mya ti
    "﹒",  # small full stop
    "．",  # fullwidth full stop
    "。",  # ideographic full stop
    "｡",  # halfwidth ideographic full stop
    "·",  # middle dot
    "·",  # Greek ano teleia
    "・",  # katakana middle dot
    "･",  # halfwidth katakana middle dot
    "᛫",  # runic single punctuation
    "⸱",  # word separator middle dot
    "𐄁",  # Aegean word separator dot
    "•",  # bullet
    "‧",  # hyphenation point
    "∙",  # bullet operator
    "⋅",  # dot operator
    "ꞏ",  # Latin letter sinological dot
    "ᐧ",  # Canadian syllabics final middle dot
]


@pytest.mark.parametrize("dot", LOOKALIKE_DOTS, ids=[f"U+{ord(d):04X}" for d in LOOKALIKE_DOTS])
@pytest.mark.parametrize("at", ["@", "\uff20", "\ufe6b"], ids=["at", "fullwidth-at", "small-at"])
def test_an_address_written_with_look_alike_dots_is_refused(dot: str, at: str) -> None:
    assert refusal(f"support{at}paypal{dot}com") == "address"
    assert refusal(f"Ana (ana{dot}lima{at}bank{dot}example)") == "address"
    assert refusal(f"support{at}paypal{dot}co{dot}uk via Agora") == "address"


@pytest.mark.parametrize(
    "name",
    [
        "Gal·la Puig",  # Catalan ela geminada
        "Paul·la",
        "Gal\u0387la Puig",  # the same, typed with the Greek ano teleia
        "Gal·la @ Casa",
        "Gal·la@Casa",  # an at sign, but no domain after it
        "ジョン・スミス",  # katakana middle dot between given name and surname
        "ｼﾞｮﾝ･ｽﾐｽ",  # the same in halfwidth forms
        "山田・太郎@営業部",
        "ꓡꓲ ꓢꓴꓸ",  # Lisu, with its tone mark
        "أحمد ٢٠٢٤",  # Arabic-Indic digits, zero among them
        "Ana • Lima",
        "Dr. Ana Lima",
    ],
)
def test_names_with_middle_dots_that_show_no_address_are_kept(name: str) -> None:
    assert check_display_name(name) == name


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
@pytest.mark.parametrize("asked", [False, True])
def test_no_name_can_open_with_the_platforms_own_reminder_subject(locale: str, asked: bool) -> None:
    """Whatever the catalogues say a reminder's subject opens with, in every language, a
    name cannot open with it, or a first invitation would read as a reminder."""
    inviter = Inviter("Zoé Marchand", "", 1)
    context = RenderContext.from_settings(
        SETTINGS, (inviter,), first_contact=False, asked_by_recipient=asked
    )
    subject = render(MessageKind.REMINDER, locale, context).subject
    opening = subject.split("Zoé Marchand")[0]
    assert opening.strip()
    assert refusal(opening + "Ana Lima") == "reminder prefix"
    assert refusal(opening.upper() + "Ana Lima") == "reminder prefix"


# Each Latin letter of the prefixes, and what passes for it: itself in the other case, its
# fullwidth form, and look-alikes from Cyrillic, Greek and the small capitals.
_DISGUISES = {
    "a": "aAａＡаАαΑᴀ",
    "d": "dDｄＤԁᴅ",
    "e": "eEｅＥеЕΕᴇ",
    "f": "fFｆＦꜰ",
    "i": "iIｉＩіІιΙɪ",
    "l": "lLｌＬӏʟ",
    "m": "mMｍＭМΜᴍ",
    "n": "nNｎＮΝɴ",
    "p": "pPｐＰрРρΡᴘ",
    "r": "rRｒＲгʀ",
    "w": "wWｗＷԝᴡ",
}
_COLONS = ":：∶꞉ː﹕"
_PREFIXES = ["re", "fw", "fwd", "reminder", "rappel", "le rappel", "the reminder"]


@st.composite
def disguised_prefixes(draw: st.DrawFn) -> tuple[str, str]:
    """A reply or reminder prefix, each letter drawn from its look-alikes, an invisible
    character slipped in here and there, and a colon or something that passes for one."""
    prefix = draw(st.sampled_from(_PREFIXES))
    letters = [draw(st.sampled_from(_DISGUISES.get(char, char))) for char in prefix]
    hidden = [draw(st.sampled_from(["", "", "", *INVISIBLE])) for _ in letters]
    written = "".join(letter + extra for letter, extra in zip(letters, hidden, strict=True))
    colon = draw(st.sampled_from(_COLONS))
    space = draw(st.sampled_from(["", " ", "\u00a0", "\u202f"]))
    reason = "reply prefix" if prefix in ("re", "fw", "fwd") else "reminder prefix"
    return written + space + colon, reason


@settings(max_examples=300, deadline=None)
@given(prefix=disguised_prefixes(), rest=st.sampled_from(["Ana Lima", " Ana", "Bo", "李雷"]))
def test_a_disguised_prefix_is_refused_however_it_is_written(
    prefix: tuple[str, str], rest: str
) -> None:
    written, reason = prefix
    assert refusal(written + " " + rest) == reason


@settings(max_examples=300, deadline=None)
@given(
    name=st.text(max_size=60)
    | st.text(alphabet=st.sampled_from(list(f"Ana @<>.{INVISIBLE}\u200c\u200d👩")), max_size=30)
)
def test_what_is_kept_and_what_is_written_shows_no_invisible_character(name: str) -> None:
    cleaned = clean_name(name)
    assert not set(cleaned) & set(INVISIBLE)
    joiners = ("\u200c", "\u200d")
    assert not cleaned.startswith(joiners)
    assert not cleaned.endswith(joiners)
    try:
        kept = check_display_name(name)
    except InvalidInput:
        return
    assert not set(kept) & set(INVISIBLE)
    assert clean_name(kept) == " ".join(kept.split()).replace("=?", "= ?")
