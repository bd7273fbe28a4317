"""Bytes to lines of text, streamed, whatever the encoding an address book was saved in.

Exports come as UTF-8 (with or without a BOM), UTF-16 (Outlook's "Unicode" CSV, Windows
vCards), Windows-1252 (Outlook and Excel in Western Europe), or a mix of these when a file
was assembled by hand. A BOM or the pattern of zero bytes decides UTF-16 and UTF-32 for the
whole file. Otherwise the bytes are read as UTF-8 with `surrogateescape`, so that a byte that
is not UTF-8 survives as a lone surrogate until `fix_text` decodes it from Windows-1252 (or a
charset the file declares): each value gets the encoding it was written in, line by line,
and nothing is lost or guessed for the whole file from its first bytes.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import BinaryIO

CHUNK_BYTES = 64 * 1024
# No address, name or header needs more; longer lines are cut and flagged.
MAX_LINE_CHARS = 64 * 1024
HEAD_BYTES = 64 * 1024

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Line breaks that str.splitlines honours but address books do not (form feeds and the
# Unicode separators turn up inside notes); text holding one is split by the pattern instead.
# Eight substring searches are a hundred times faster than one character-class search.
_ODD_BREAKS = ("\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")
_ESCAPED = re.compile("[\udc80-\udcff]")
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f]")


def sniff_encoding(head: bytes) -> tuple[str, int]:
    """The codec for the whole file and the length of its BOM.

    "utf-8" without a BOM means "UTF-8 where valid, byte by byte otherwise" (see `fix_text`).
    """
    for bom, codec in _BOMS:
        if head.startswith(bom):
            return codec, len(bom)
    sample = head[:4096]
    pairs = len(sample) // 2
    if pairs >= 4:
        even_zeros = sample[0::2].count(0)
        odd_zeros = sample[1::2].count(0)
        # Mostly-Latin UTF-16 without a BOM: one byte in two is zero, always on the same side.
        if odd_zeros > pairs * 0.3 and even_zeros < pairs * 0.05:
            return "utf-16-le", 0
        if even_zeros > pairs * 0.3 and odd_zeros < pairs * 0.05:
            return "utf-16-be", 0
    return "utf-8", 0


def decode_head(head: bytes) -> str:
    """The first bytes as text, for format detection and sniffing."""
    codec, skip = sniff_encoding(head)
    decoder = codecs.getincrementaldecoder(codec)(_errors(codec))
    return str(decoder.decode(head[skip:], final=False))


def looks_like_text(text: str) -> bool:
    """False for binary data: control characters, or mostly bytes that are not UTF-8."""
    if not text:
        return False
    controls = len(_CONTROL.findall(text))
    escaped = len(_ESCAPED.findall(text))
    return controls <= len(text) // 200 and escaped <= len(text) // 5


def fix_text(text: str, charset: str | None = None) -> str:
    """Turn bytes that were not UTF-8 (kept as surrogates) into characters.

    Valid UTF-8 wins; otherwise the declared charset, else Windows-1252, which every Western
    exporter that is not UTF-8 writes (and which reads ISO-8859-1 text the same way).
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return decode_bytes(text.encode("utf-8", "surrogateescape"), charset)
    return text


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Decoded bytes of a value (quoted-printable, base64): UTF-8, else charset, else cp1252."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    codec = _text_codec(charset) if charset else None
    if codec is not None:
        try:
            # A codec may still refuse these bytes (idna) or make lone surrogates (utf-7),
            # which nothing stores.
            text = data.decode(codec, "replace")
            text.encode("utf-8")
        except ValueError:
            pass
        else:
            return text
    return data.decode("cp1252", "replace")


@lru_cache(maxsize=64)
def _text_codec(charset: str) -> str | None:
    """The codec a file's declared charset names, if it is one to read text with. The name
    comes from the file: unknown names, codecs that are not about text ("zlib", "hex") and
    escape codecs ("unicode_escape", which reads a backslash as the start of an escape and
    warns about the file's bytes) are none."""
    try:
        info = codecs.lookup(charset)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name.endswith("escape"):
        return None
    return info.name


def stream_chunks(stream: BinaryIO, head: bytes = b"") -> Iterator[bytes]:
    """`head` (bytes already read for detection), then the rest of the stream in order.

    Only `read(size)` is called, front to back, so a wrapper counting bytes for a progress
    bar sees the true position.
    """
    if head:
        yield head
    while True:
        chunk = stream.read(CHUNK_BYTES)
        if not chunk:
            return
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise TypeError("address books are read from a binary stream")
        yield bytes(chunk)


def read_head(stream: BinaryIO) -> bytes:
    """Up to HEAD_BYTES from the start of the stream (fewer only at its end)."""
    parts: list[bytes] = []
    size = 0
    while size < HEAD_BYTES:
        chunk = stream.read(HEAD_BYTES - size)
        if not chunk:
            break
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise TypeError("address books are read from a binary stream")
        parts.append(bytes(chunk))
        size += len(chunk)
    return b"".join(parts)


def _errors(codec: str) -> str:
    return "surrogateescape" if codec == "utf-8" else "replace"


class TextLines:
    """The lines of a byte stream, each with its line ending, numbered from 1.

    Memory stays bounded by one chunk plus MAX_LINE_CHARS: a longer line is cut to its first
    MAX_LINE_CHARS characters (or, with `keep_overlong_head=False`, to nothing) and its number
    added to `overlong`, which readers consult to report "line too long".
    """

    def __init__(self, chunks: Iterable[bytes], *, keep_overlong_head: bool = True) -> None:
        self._chunks = chunks
        self._keep_head = keep_overlong_head
        self.overlong: set[int] = set()
        self.codec = ""

    def __iter__(self) -> Iterator[str]:
        decoder: codecs.IncrementalDecoder | None = None
        pending = ""
        skipping = False  # inside an overlong line, dropping text until its end
        count = 0
        for chunk in _sniffable(self._chunks):
            if decoder is None:
                self.codec, bom = sniff_encoding(chunk)
                decoder = codecs.getincrementaldecoder(self.codec)(_errors(self.codec))
                chunk = chunk[bom:]
            text = decoder.decode(chunk)
            if skipping:
                text, skipping = _after_break(text)
                if skipping:
                    continue
            text = pending + text
            cut = text.rfind("\n")
            if cut < 0:
                cut = text.rfind("\r", 0, len(text) - 1)
            if cut < 0:
                pending = text
                if len(pending) > MAX_LINE_CHARS:
                    count += 1
                    yield self._overlong(count, pending)
                    pending, skipping = "", True
                continue
            block, pending = text[: cut + 1], text[cut + 1 :]
            lines = _split(block)
            if len(block) > MAX_LINE_CHARS and max(map(len, lines)) > MAX_LINE_CHARS:
                lines = [
                    self._overlong(count + index, line) if len(line) > MAX_LINE_CHARS else line
                    for index, line in enumerate(lines, start=1)
                ]
            count += len(lines)
            yield from lines
            if len(pending) > MAX_LINE_CHARS:
                count += 1
                yield self._overlong(count, pending)
                pending, skipping = "", True
        if decoder is not None and not skipping:
            pending += decoder.decode(b"", final=True)
            if pending:
                yield from _split(pending)

    def _overlong(self, number: int, text: str) -> str:
        self.overlong.add(number)
        return (text[:MAX_LINE_CHARS] if self._keep_head else "") + "\n"


def _sniffable(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The same bytes, the first chunk made long enough to sniff the encoding from."""
    first = b""
    iterator = iter(chunks)
    for chunk in iterator:
        first += chunk
        if len(first) >= 4096:
            break
    if first:
        yield first
    yield from iterator


def _split(text: str) -> list[str]:
    if not any(odd in text for odd in _ODD_BREAKS):
        return text.splitlines(keepends=True)
    return _LINE.findall(text)


def _after_break(text: str) -> tuple[str, bool]:
    """The text after the first line break, and whether none was found (still skipping)."""
    match = re.search(r"\r\n|\r|\n", text)
    if match is None:
        return "", True
    return text[match.end() :], False
