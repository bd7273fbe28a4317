"""The address list of a To or Cc field (RFC 5322 section 3.4), cut into addresses as written.

The standard library parses a whole field at once: one bad address (an encoded name holding a
line break) makes it refuse the field and every good address in it, and it decodes encoded
words even inside an address, which RFC 2047 forbids. Cut first, each address is parsed, and
judged, on its own and from its own raw text.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RawAddress:
    """One address of a list: all its text, and the part that stands for the address (inside
    the angle brackets, else the text without its comments), both as written."""

    text: str
    address: str


def split_address_list(value: str) -> list[RawAddress]:
    """Cut at each comma or semicolon outside quotes, comments, angle brackets and domain
    literals; a group's name (the text before its colon) is dropped, its members kept."""
    found: list[RawAddress] = []
    text: list[str] = []  # the current address, as written
    bare: list[str] = []  # the same without comments
    angled: list[str] | None = None  # inside <...>, once seen
    quoted = escaped = in_angle = in_literal = False
    depth = 0  # of nested comments

    def finish() -> None:
        written = "".join(text).strip()
        if written:
            address = "".join(angled) if angled is not None else "".join(bare)
            found.append(RawAddress(written, address.strip()))

    for char in value:
        in_comment = depth > 0
        if escaped:
            escaped = False
        elif char == "\\" and (quoted or depth):
            escaped = True
        elif depth:
            depth += {"(": 1, ")": -1}.get(char, 0)
        elif quoted:
            quoted = char != '"'
        elif in_literal:
            in_literal = char != "]"
        elif char == '"':
            quoted = True
        elif char == "(":
            depth, in_comment = 1, True
        elif char == "[":
            in_literal = True
        elif char == "<" and not in_angle:
            in_angle, angled = True, []
            text.append(char)
            continue
        elif char == ">" and in_angle:
            in_angle = False
            text.append(char)
            continue
        elif char in ",;" and not in_angle:
            finish()
            text, bare, angled = [], [], None
            continue
        elif char == ":" and not in_angle:
            text, bare, angled = [], [], None  # a group's name: its members follow
            continue
        text.append(char)
        if not in_comment:
            bare.append(char)
            if in_angle and angled is not None:
                angled.append(char)
    finish()
    return found
