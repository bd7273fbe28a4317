"""RFC 2047 encoded words for header text that is not plain ASCII.

The stdlib's `Header.encode` and its address folder both write encoded words of 76 and 77
characters, over the 75 that RFC 2047 section 2 allows (a strict reader then shows the raw
`=?utf-8?...` text), and cut them mid-word. Here each is at most 75 characters and is cut
after a space wherever one is in reach: a reader that keeps the whitespace between encoded
words (Python's address parser does) shows a doubled space rather than a word torn in two.
"""

from __future__ import annotations

from base64 import b64encode
from email import quoprimime

MAX_WORD = 75
_CHROME = len("=?utf-8?q??=")
# Bytes that Q writes as themselves (a space as "_"); any other byte takes three ("=XX").
# The same set as the stdlib's Q encoder, all of them allowed in a phrase (RFC 2047 5.3).
_Q_PLAIN = frozenset(b"!*+-/0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz ")


def encoded_words(text: str, first: int = MAX_WORD) -> list[str]:
    """`text` as encoded words that decode to exactly it, the first at most `first`
    characters long (the room its header's first line leaves), the others MAX_WORD: in Q
    or B, whichever is shorter for the whole text, as the stdlib chooses."""
    costs = [_q_cost(char) for char in text]
    sizes = [len(char.encode("utf-8")) for char in text]
    base64 = 4 * -(-sum(sizes) // 3) < sum(costs)
    measure = sizes if base64 else costs
    words: list[str] = []
    room = min(first, MAX_WORD) - _CHROME
    start, size, after_space = 0, 0, 0
    for index, char in enumerate(text):
        size += measure[index]
        # text[start : index + 1] is too long: the word ends after its last space, or
        # before this character when none is left in it.
        while index > start and (4 * -(-size // 3) if base64 else size) > room:
            cut = after_space if after_space > start else index
            words.append(_encode(text[start:cut], base64))
            start, room = cut, MAX_WORD - _CHROME
            size = sum(measure[start : index + 1])
        if char == " ":
            after_space = index + 1
    if start < len(text):
        words.append(_encode(text[start:], base64))
    return words


def _q_cost(char: str) -> int:
    """How many characters Q writes for this one."""
    return sum(1 if byte in _Q_PLAIN else 3 for byte in char.encode("utf-8"))


def _encode(chunk: str, base64: bool) -> str:
    data = chunk.encode("utf-8")
    if base64:
        return f"=?utf-8?b?{b64encode(data).decode('ascii')}?="
    return quoprimime.header_encode(data, "utf-8")
