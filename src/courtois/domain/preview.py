"""The member's note: free text, bounded, refused when it holds control characters.

The message itself is rendered by `courtois.delivery.render`, which also computes the hash
a consent pins (invariant 2).
"""

from __future__ import annotations

import re

from courtois.domain.errors import InvalidInput

MAX_NOTE_LENGTH = 1000
# C0 and C1 controls, DEL and Unicode line separators; newlines and tabs are the note's own.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def check_note(note: str) -> str:
    """A member's note is free text but bounded, and kept out of headers entirely."""
    text = note.replace("\r\n", "\n").strip()
    if len(text) > MAX_NOTE_LENGTH:
        raise InvalidInput(
            f"The note is longer than {MAX_NOTE_LENGTH} characters.", {"note": "too long"}
        )
    if _CONTROL.search(text):
        raise InvalidInput("The note contains control characters.", {"note": "control characters"})
    return text
