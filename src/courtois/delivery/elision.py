"""French elision before a name: "de" and "Ana" make "d'Ana", "que" and "Élodie" make
"qu'Élodie", but "de Bruno" and "de Hugo".

A catalogue cannot write "de %(member)s" once for every name: the word's form depends on
the name's first letter. So a template passes such a name twice, as it is (`member`) and
already joined to the word before it (`de_member`, `que_member`: the French word, then the
variable's own name), and the French catalogues use the joined form wherever French puts
one of these words before a name. Other languages never use it. The catalogue tests hold
each joined variable to one the English sentence has, and to the template passing it.

The test is on the letter a reader sees first, after any quote or space: a vowel (a, e, i,
o, u, y, with or without accent, and the ligatures æ and œ, in either case) elides. "H" never
does here: some names take an apostrophe before it and some do not, and "de Hugo" or "de
Hélène" read as right where "d'Hugo" would not.
"""

from __future__ import annotations

import unicodedata

from jinja2.nodes import EvalContext
from jinja2.utils import pass_eval_context
from markupsafe import Markup

# The one the French catalogues write ("l'invitation", "d'adresses"): the typewriter one.
APOSTROPHE = "'"
# The words that give their last vowel to an apostrophe before a vowel, wherever they stand.
# Words that elide only before some words ("si" before "il", "presque" in "presqu'île")
# never stand before a name that way.
ELIDING = frozenset(
    {"de", "que", "le", "la", "ne", "je", "me", "te", "se", "lorsque", "puisque", "jusque"}
)
_VOWELS = frozenset("aeiouyæœ")
# What may come before a name's first letter without being read: spaces and quotes.
_UNREAD = " \t\u00a0\u202f\"'«»“”‘’‚„‹›"


def elides(name: str) -> bool:
    """Whether a word such as "de" elides before this name (or list of names): its first
    letter, past quotes and spaces, is a vowel."""
    shown = name.lstrip(_UNREAD)
    if not shown:
        return False
    base = unicodedata.normalize("NFD", shown[0])[0].casefold()
    return base in _VOWELS


def before_name(word: str, name: str) -> str:
    """`word` as written right before `name`: "d'" before "Ana", "de " before "Bruno".
    `word` may be a phrase ending in such a word ("en tant que")."""
    last = word.rpartition(" ")[2]
    if last.casefold() not in ELIDING:
        raise ValueError(f"{last!r} is not a word that elides.")
    if elides(name):
        return word[:-1] + APOSTROPHE
    return word + " "


def joined(word: str, name: str) -> str:
    """`word` then `name`, elided as French writes them: "d'Ana", "qu'Élodie", "de Bruno".
    A list of names ("Ana, Bo et 3 autres") elides on its first one."""
    return before_name(word, name) + name


@pass_eval_context
def after(eval_ctx: EvalContext, name: str, word: str) -> str:
    """The templates' filter, `name|after("de")`: `joined`, with the name escaped (and the
    apostrophe not) where the template autoescapes, as the catalogue's own words are."""
    if eval_ctx.autoescape:
        plain = name.unescape() if isinstance(name, Markup) else name
        return Markup(before_name(word, plain)) + name  # noqa: S704 - our own word
    return joined(word, name)
