"""The invisible characters that reorder text, as regular-expression class fragments.

Written as escapes, not as the characters themselves, so that both Python's `re` and the
pattern engine of the API's request models read them, and an error quoting a pattern shows
no live override. Each field still picks its own line-break and control-character rules
(a note keeps its newlines and tabs, a name keeps none).
"""

from __future__ import annotations

import re

# The bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069):
# invisible, they reverse or reorder whatever follows them, so "Ana via Agora" or a link in
# a note can read as something else in an email sent in the platform's name. Refused
# wherever free text comes in, never stripped: the text would no longer be what was typed.
DIRECTION_CONTROLS = r"\u202a-\u202e\u2066-\u2069"
# The direction marks (left-to-right, right-to-left, Arabic letter mark): they only set the
# direction of the neutral characters next to them, and right-to-left text pasted into a
# name or a note carries them, so names drop them and notes keep them. An IP address or a
# user agent never holds one: evidence refuses them with the controls above.
DIRECTION_MARKS = r"\u061c\u200e\u200f"
# Half of a UTF-16 pair on its own: JSON may spell one (`"\\ud800"`), but no encoding can
# write it, so a database driver, a hash or an email would fail on it far from where it
# came in. Refused where free text comes in, as text that is not text.
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def holds_lone_surrogate(text: str) -> bool:
    """Whether `text` holds a character that cannot be written in UTF-8."""
    return _LONE_SURROGATE.search(text) is not None
