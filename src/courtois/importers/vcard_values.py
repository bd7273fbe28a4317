"""One vCard property: its name, parameters and decoded value (RFC 2426, 6350 and vCard 2.1).

vCard 2.1 marks encodings and charsets with parameters (`ENCODING=QUOTED-PRINTABLE`,
`CHARSET=ISO-8859-1`, or bare `QUOTED-PRINTABLE`); 3.0 and 4.0 are UTF-8 text with
backslash escapes, and may still carry `ENCODING=b`. Phones mixed them freely, so every
decoding applies to every version.
"""

from __future__ import annotations

import base64
import binascii
import re

from courtois.importers.decoding import decode_bytes, fix_text
from courtois.importers.values import join_name

_BARE_ENCODINGS = frozenset({"QUOTED-PRINTABLE", "BASE64", "B", "8BIT", "7BIT"})
_PARAM = re.compile(r'(?:"[^"]*"|[^;"])+')
_ITEM = re.compile(r'(?:"[^"]*"|[^,"])+')
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_TOKENS = {sep: re.compile(rf"\\.|{sep}|[^\\{sep}]+|\\", re.DOTALL) for sep in ";,"}


class Unreadable(ValueError):
    """A value that cannot be decoded; the message says what is wrong with it."""


def split_property(line: str) -> tuple[str, str, str] | None:
    """(NAME, parameters, value) of one unfolded line, or None for a line without a colon.

    NAME is upper-case without its group (`item1.EMAIL` is EMAIL); a colon inside a quoted
    parameter value (`LABEL="a:b"`) does not end the name.
    """
    colon = line.find(":")
    if colon < 0:
        return None
    if '"' in line[:colon]:
        colon = _colon_outside_quotes(line)
        if colon < 0:
            return None
    head = line[:colon]
    semi = head.find(";")
    name = head if semi < 0 else head[:semi]
    dot = name.rfind(".")
    if dot >= 0:
        name = name[dot + 1 :]
    return name.strip().upper(), ("" if semi < 0 else head[semi + 1 :]), line[colon + 1 :]


def _colon_outside_quotes(line: str) -> int:
    quoted = False
    for index, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == ":" and not quoted:
            return index
    return -1


def parse_params(text: str) -> dict[str, list[str]]:
    """Parameters by upper-case name; vCard 2.1's bare values become ENCODING or TYPE."""
    params: dict[str, list[str]] = {}
    for piece in _PARAM.findall(text):
        key, equals, value = piece.partition("=")
        key = key.strip().upper()
        if not equals:
            key, value = ("ENCODING" if key in _BARE_ENCODINGS else "TYPE"), key
        values = [item.strip().strip('"') for item in _ITEM.findall(value)]
        params.setdefault(key, []).extend(values)
    return params


def is_quoted_printable(params_text: str) -> bool:
    """Whether a line's parameters announce quoted-printable (soft line breaks follow)."""
    return "QUOTED-PRINTABLE" in params_text.upper()


def decode_value(value: str, params_text: str) -> str:
    """The text of a value after its transfer encoding and charset, escapes still in."""
    if not params_text:
        return fix_text(value)
    params = parse_params(params_text)
    charset = (params.get("CHARSET") or [""])[0] or None
    encoding = (params.get("ENCODING") or [""])[0].upper()
    if encoding == "QUOTED-PRINTABLE":
        data = binascii.a2b_qp(value.encode("utf-8", "surrogateescape"))
        return decode_bytes(data, charset)
    if encoding in ("B", "BASE64"):
        try:
            data = base64.b64decode("".join(value.split()), validate=True)
        except (binascii.Error, ValueError):
            raise Unreadable("a value is not valid base64") from None
        return decode_bytes(data, charset)
    return fix_text(value, charset)


def unescape(text: str) -> str:
    """Undo backslash escapes: `\\n` is a line break, any other escaped character itself."""
    if "\\" not in text:
        return text
    return _ESCAPE.sub(lambda m: "\n" if m.group(1) in "nN" else m.group(1), text)


def split_unescaped(text: str, separator: str) -> list[str]:
    """Split on separators that are not backslash-escaped; the parts keep their escapes."""
    if "\\" not in text:
        return text.split(separator)
    parts: list[str] = []
    current: list[str] = []
    for token in _TOKENS[separator].findall(text):
        if token == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(token)
    parts.append("".join(current))
    return parts


def name_from_n(value: str) -> str:
    """A display name from N (family; given; additional; prefix; suffix), in reading order.

    A component may list several values separated by commas (4.0: "Ana,Maria").
    """
    parts = [
        " ".join(unescape(item) for item in split_unescaped(component, ","))
        for component in split_unescaped(value, ";")
    ]
    parts += [""] * (5 - len(parts))
    family, given, additional, prefix, suffix = parts[:5]
    return join_name(prefix, given, additional, family, suffix)
