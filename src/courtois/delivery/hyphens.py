"""The word "e-mail" kept whole at a line's end, in the HTML of the emails.

A browser or mail client may end a line after any hyphen, and French writes "e-mail": a
narrow screen showed "un seul e-" at the end of one line and "mail" at the start of the
next. In HTML the hyphen of that word becomes U+2011, the non-breaking hyphen, which reads
the same and is never a place to break. The plain text keeps the ASCII hyphen: its lines
are wrapped by `text.wrap`, which never breaks at a hyphen, and its words stay the ones a
search or a screen reader expects.

Applied to the catalogue's sentences in the HTML templates (`|unbroken`): the only word it
changes is "e-mail" or "e-mails" standing alone, never one inside an address, a link or a
longer word ("https://e-mail.example", "re-mail"), which the reader may copy as printed.
"""

from __future__ import annotations

import re

from markupsafe import Markup

NON_BREAKING_HYPHEN = "\u2011"
# The word alone: no letter, digit, dot, slash, "@" or hyphen touching it on either side
# (a final "." or "," is punctuation after it, so only the characters inside a host or a
# path are refused after it: a letter, digit, "-", "/" or "@", or a dot followed by one).
_WORD = re.compile(r"(?<![\w./@-])([eE])-(mails?)(?![\w/@-]|\.\w)")


def unbroken(value: str) -> str:
    """`value` with each "e-mail(s)" hyphen made non-breaking; markup stays markup (the
    change adds no character HTML treats specially)."""
    changed = _WORD.sub(rf"\1{NON_BREAKING_HYPHEN}\2", value)
    if isinstance(value, Markup):
        return Markup(changed)  # noqa: S704 - the same safe markup, one hyphen swapped
    return changed
