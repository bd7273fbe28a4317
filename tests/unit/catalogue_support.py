"""What the catalogue tests of the emails and of the pages share: the messages a folder of
templates uses, as Babel's extractor finds them, and the variables a sentence names, so
that each test checks its catalogue against its own templates the same way."""

from __future__ import annotations

import re
from importlib.resources import files
from io import BytesIO

from babel.messages.catalog import Message
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from courtois.delivery.elision import ELIDING


def template_messages(package: str, suffixes: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Every msgid the package's templates use, keyed by msgid (singular), with its plural
    if any."""
    templates = str(files(package).joinpath("templates"))
    found = extract_from_dir(
        templates,
        method_map=[(f"**.{suffix}", "jinja2") for suffix in suffixes],
        options_map={"**": {"extensions": "jinja2.ext.i18n"}},
    )
    messages: dict[str, tuple[str, ...]] = {}
    for _file, _line, message, _comments, _context in found:
        ids = (message,) if isinstance(message, str) else tuple(message)
        messages[ids[0]] = ids
    return messages


def held_messages(source: bytes) -> dict[str, Message]:
    """A catalogue's messages, keyed by msgid (singular), its header left out."""
    catalog = read_po(BytesIO(source))
    return {(m.id if isinstance(m.id, str) else m.id[0]): m for m in catalog if m.id}


def translations(message: Message) -> tuple[str, ...]:
    """A message's strings: one, or one per plural form."""
    return (message.string,) if isinstance(message.string, str) else tuple(message.string)


def variables(text: str) -> set[str]:
    """The variables a sentence uses; a name joined to the French word before it
    (`de_member`: "d'Ana", see `courtois.delivery.elision`) counts as the name."""
    return {_named(variable) for variable in re.findall(r"%\((\w+)\)[sd]", text)}


# French puts a space before ":", ";", "!" and "?": an ordinary one lets a browser or a mail
# client wrap the line there and leave the mark alone at the start of the next.
_BREAKABLE = re.compile(r"[ \t\n][:;!?]|«[ \t\n]|[ \t\n]»")
_UNSPACED = re.compile(r"\w[:;!?](\s|$)")
# No-break, but not the one French typography puts there.
_WRONG_SPACE = re.compile(r"\u202f:|\u00a0[;!?]")
# What a file is to hold, quoted as written: the keywords an LDIF file starts with.
_LITERAL = re.compile(r"\b(version|dn):")


def french_spacing_faults(text: str) -> list[str]:
    """What breaks French typography in a sentence: U+00A0 before ":", U+202F before ";",
    "!" and "?", and U+202F inside guillemets, none left out and none of the wrong kind."""
    faults = []
    if _BREAKABLE.search(text):
        faults.append("a breakable space before double punctuation or inside guillemets")
    if _UNSPACED.search(_LITERAL.sub("", text)):
        faults.append("no space before double punctuation")
    if _WRONG_SPACE.search(text):
        faults.append("the wrong no-break space")
    return faults


def _named(variable: str) -> str:
    word, _, name = variable.partition("_")
    return name if name and word in ELIDING else variable
