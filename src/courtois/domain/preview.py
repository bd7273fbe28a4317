"""The member's note: free text, bounded, refused when it holds control characters or
direction overrides.

The message itself is rendered by `courtois.delivery.render`, which also computes the hash
a consent pins (invariant 2).
"""

from __future__ import annotations

import re

from courtois.domain.errors import InvalidInput
from courtois.domain.members import not_text
from courtois.domain.text_controls import DIRECTION_CONTROLS, holds_lone_surrogate

MAX_NOTE_LENGTH = 1000
# C0 and C1 controls, DEL and Unicode line separators; newlines and tabs are the note's own.
# And, as in a member's name, the direction embeddings, overrides and isolates: the note is
# quoted in an email sent in the platform's name, where one would make a link or a sentence
# read reversed. Direction marks stay: right-to-left text carries them.
_CONTROL = re.compile(rf"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029{DIRECTION_CONTROLS}]")


def check_note(note: str) -> str:
    """A member's note is free text but bounded, kept out of headers entirely, and shown
    in the direction it was typed."""
    text = note.replace("\r\n", "\n").strip()
    if holds_lone_surrogate(text):
        raise not_text("note")
    if len(text) > MAX_NOTE_LENGTH:
        raise InvalidInput(
            f"The note is longer than {MAX_NOTE_LENGTH} characters.", {"note": "too long"}
        )
    if _CONTROL.search(text):
        raise InvalidInput(
            "The note contains control characters (direction overrides, line separators...).",
            {"note": "control characters"},
        )
    return text
