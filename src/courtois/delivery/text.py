"""Member-supplied text made safe to print in an email, whatever it contains.

Names and notes are checked when they come in (`check_display_name`, `check_note`); these
functions are the second line, at rendering time, so that nothing stored before a check
existed or changed can break a header, disguise a sender or grow a message without bound.
They are deterministic, so a preview and the delivered message clean alike.
"""

from __future__ import annotations

import re
import textwrap
from functools import lru_cache

from courtois.domain.display_names import drop_invisible
from courtois.domain.members import MAX_NAME_LENGTH
from courtois.domain.preview import MAX_NOTE_LENGTH
from courtois.domain.text_controls import DIRECTION_CONTROLS

ELLIPSIS = "…"
WRAP_WIDTH = 72
# Before each line of a member's note in plain text.
QUOTE_INDENT = "  "
# C0 and C1 controls, DEL, Unicode line and paragraph separators, and the bidirectional
# embeddings, overrides and isolates that could make "Ana via Agora", or a link in a note,
# read as something else; a note keeps its line breaks and tabs.
_NAME_CONTROL = re.compile(rf"[\x00-\x1f\x7f-\x9f\u2028\u2029{DIRECTION_CONTROLS}]")
_NOTE_CONTROL = re.compile(rf"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029{DIRECTION_CONTROLS}]")


def clean_name(value: str, limit: int = MAX_NAME_LENGTH) -> str:
    """One line: every control becomes a space, characters that show nothing (zero-width
    spaces, direction marks) go, runs of space become one, at most `limit` chars, and no
    "=?" (a name that looks like an RFC 2047 encoded word is decoded by receivers into
    text the sender never checked, even an address in a From header)."""
    name = " ".join(_NAME_CONTROL.sub(" ", drop_invisible(value)).split()).replace("=?", "= ?")
    return _bounded(name, limit)


def one_line(value: str, limit: int = 300) -> str:
    """A multi-line configured value (a postal address) as one line, parts comma-separated."""
    parts = (clean_name(line, limit) for line in re.split(r"[\r\n]+", value))
    return _bounded(", ".join(part for part in parts if part), limit)


def clean_note(value: str, limit: int = MAX_NOTE_LENGTH) -> str:
    """Lines kept (LF only), tabs kept, other controls dropped, at most `limit` chars."""
    text = value.replace("\r\n", "\n").replace("\r", "\n")
    return _bounded(_NOTE_CONTROL.sub("", text).strip(), limit)


def _bounded(value: str, limit: int) -> str:
    if len(value) <= limit:
        return value
    return value[: limit - 1].rstrip() + ELLIPSIS


@lru_cache(maxsize=4096)
def wrap(value: str) -> str:
    """Plain-text paragraphs at 72 columns; links and long words are never split. Most
    paragraphs are the same in every email of a platform and language: wrapped once."""
    return "\n".join(
        textwrap.fill(line, WRAP_WIDTH, break_long_words=False, break_on_hyphens=False) or line
        for line in value.split("\n")
    )


def quote(value: str) -> str:
    """A member's note, indented; each of its lines wrapped at 72 columns like the rest of
    the text (a line that fits is kept verbatim, tabs and all), and a long line's own
    indentation kept on each line it becomes. Words and links are never split."""
    return "\n".join(_quoted(line) for line in value.split("\n"))


def _quoted(line: str) -> str:
    if not line:
        return ""
    if len(line) + len(QUOTE_INDENT) <= WRAP_WIDTH:
        return QUOTE_INDENT + line
    words = line.lstrip(" \t")
    own = line[: len(line) - len(words)]
    # An indentation that leaves no room for words is not kept: the words come first.
    indent = QUOTE_INDENT + (own if len(own) <= WRAP_WIDTH // 4 else "")
    return textwrap.fill(
        words,
        WRAP_WIDTH,
        initial_indent=indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
