"""Which columns of a CSV export hold addresses and names, from the header's wording.

Exporters name their columns in the user's language and their own style: Google's
"E-mail 1 - Value" (old) and "E-mail 1 - Label"/"E-mail 1 - Value" (new), Outlook's
"E-mail Address", "E-mail 2 Address", French "Adresse de messagerie 2", German
"E-Mail 2: Adresse", LinkedIn's "Email Address", Thunderbird's "Primary Email" or
"Adresse électronique principale", spreadsheets' "Email" or "Work email"; other languages
glue the words together (Dutch "E-mailadres" and "E-mailtype", Swedish "E-postadress",
Finnish "Sähköpostiosoite") or spell them out (Italian "Indirizzo posta elettronica").
Any column whose words speak of mail is an address column unless they say it is a type, a
label or a name. A cell holding an address is data, never a header's.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# A header cell is short; a long cell speaking of email is prose (LinkedIn's "Notes:").
MAX_HEADER_CELL = 64
_MAIL_WORDS = frozenset(
    {"mail", "email", "courriel", "messagerie", "electronique", "elettronica", "correo", "correio"}
)
# How a word glued to what follows begins when it speaks of mail: "e-mailadres" is read
# "e mailadres", its first two words glued "emailadres".
_MAIL_STEMS = ("email", "epost", "sahkoposti", "mailadres", "courriel", "messagerie")
_NOT_ADDRESS = frozenset(
    {
        *("type", "typ", "tipo", "tyyppi", "label", "labels", "kind", "format"),
        *("display", "name", "nom", "anzeigename", "nome", "nombre", "nazwa"),
        *("weergegeven", "visualizzato", "mostrar", "exibicao", "wyswietlana"),
    }
)
# How a word glued to a mail word ends when it names the address's type or display name:
# Dutch "E-mailtype" and "Weergavenaam", Danish "E-mail-visningsnavn", German "Anzeigename".
_NOT_ADDRESS_ENDS = ("type", "typ", "name", "naam", "namn", "navn", "nimi")
# Something@something: what an address looks like, however it is wrapped.
_HOLDS_ADDRESS = re.compile(r"[^\s@]@[^\s@]")
_FULL = frozenset(
    {
        *("name", "full name", "display name"),
        *("nom complet", "nom a afficher"),
        *("anzeigename", "vollstandiger name"),
        *("naam", "volledige naam", "weergavenaam"),
        *("nome completo", "nome visualizzato", "nome de exibicao"),
        *("nombre completo", "nombre para mostrar"),
    }
)
_FIRST = frozenset(
    {"first name", "given name", "first", "prenom", "vorname", "voornaam", "nome", "nombre"}
)
_MIDDLE = frozenset(
    {
        *("middle name", "additional name", "deuxieme prenom", "weitere vornamen"),
        *("middelste naam", "tweede voornaam", "secondo nome", "segundo nome", "nome do meio"),
        "segundo nombre",
    }
)
_LAST = frozenset(
    {
        *("last name", "family name", "surname", "last", "nom", "nom de famille", "nachname"),
        *("achternaam", "cognome", "sobrenome", "apellidos", "apellido"),
    }
)
_NON_WORD = re.compile(r"[^0-9a-z]+")


@dataclass(frozen=True, slots=True)
class Columns:
    """Indexes of the address columns and of the name columns (-1 when absent)."""

    emails: tuple[int, ...]
    full: int = -1
    first: int = -1
    middle: int = -1
    last: int = -1


def normalize(header: str) -> str:
    """Lower-case ASCII words of a header cell: "Prénom " is "prenom", "E-mail 2" "e mail 2"."""
    folded = unicodedata.normalize("NFKD", header.casefold())
    plain = "".join(char for char in folded if not unicodedata.combining(char))
    return " ".join(_NON_WORD.sub(" ", plain).split())


def is_address_column(header: str) -> bool:
    """Whether a header cell names a column of addresses."""
    if len(header) > MAX_HEADER_CELL:
        return False
    words = normalize(header).split()
    glued = {"".join(words[i : i + 2]) for i in range(len(words))}  # "e mail" is "email"
    if not (
        _MAIL_WORDS & set(words)
        or _MAIL_WORDS & glued
        or any(w.startswith(_MAIL_STEMS) for w in glued)
        or any("email" in w for w in words)
    ):
        return False
    return not (
        _NOT_ADDRESS & set(words)
        or any(w.startswith("anzeige") or w.endswith(_NOT_ADDRESS_ENDS) for w in words)
    )


def classify(header: list[str]) -> Columns | None:
    """The roles of a header row's columns, or None when no column holds addresses or a
    cell holds an address: a list's first line "ivan@mail.ru" speaks of mail, yet is data.

    A repeated column name (two "E-mail Address") gives two address columns; for names
    the first column of each role wins.
    """
    if any(_HOLDS_ADDRESS.search(cell) for cell in header):
        return None
    emails = tuple(i for i, cell in enumerate(header) if is_address_column(cell))
    if not emails:
        return None
    roles: dict[str, int] = {}
    for index, cell in enumerate(header):
        key = normalize(cell)
        for role, names in (("full", _FULL), ("first", _FIRST), ("middle", _MIDDLE)):
            if key in names:
                roles.setdefault(role, index)
        if key in _LAST:
            roles.setdefault("last", index)
    return Columns(emails=emails, **roles)
