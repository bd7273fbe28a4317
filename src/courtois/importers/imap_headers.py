"""The addresses of one sent message's To and Cc fields, as an IMAP server sent them.

Each address is parsed on its own (`address_lists`), so that one that cannot be read is
rejected alone, and from its own raw text, so that an encoded word inside an address is
refused as the file readers refuse it. Bytes that are not UTF-8 are read as Windows-1252, as
the file readers read them.
"""

from __future__ import annotations

import email.parser
import email.policy
import re
from collections.abc import Iterator

from courtois.domain.contacts import ContactInput, RecordProblem
from courtois.importers.address_lists import RawAddress, split_address_list
from courtois.importers.decoding import fix_text
from courtois.importers.values import item_places

# The most of a message's To and Cc fields read. Fields that fill it were cut there: their
# last address may be cut too ("carol@example.co"), and is never imported.
HEADER_BYTES = 65_536
CUT_OFF = (
    f"its To and Cc headers are longer than the {HEADER_BYTES:,} bytes read: the address "
    "where they were cut off was left out"
)
UNREADABLE = "an address in To or Cc could not be read"
NONE_FOUND = "no address in To or Cc"


class _AsWritten(email.policy.Compat32):
    """compat32 without its one conversion: it turns a field that mixes characters and
    bytes that were not UTF-8 into a `Header` that cannot be made a string again, and the
    parser reads Content-Type through it when it ends, so that such a field anywhere in the
    block (a server may send more than To and Cc) made the whole message unreadable."""

    def header_fetch_parse(self, name: str, value: str) -> str:
        return value


# The fields as written; each address is then parsed alone with the default policy.
_FIELDS = email.parser.Parser(policy=_AsWritten())
_ADDRESS = email.policy.default.header_factory
_ADDRESS_FIELDS = ("to", "cc")


def addresses_of(raw: bytes, where: str, *, cut: bool) -> Iterator[ContactInput | RecordProblem]:
    """Each address of the fields, in the order written, placed at `where` ("message 12"),
    or at "message 12, item 3" when the message yields several (`item_places`, as a vCard
    names the items of a card), so that a report listing two of them does not read as the
    same place twice; problems are placed at the message. `cut` says the fields filled
    HEADER_BYTES, so that the last one is left out and said to be."""
    fields = _FIELDS.parsestr(raw.decode("utf-8", "surrogateescape"), headersonly=True)
    written = [
        address
        for name, value in fields.raw_items()
        if name.lower() in _ADDRESS_FIELDS
        for address in split_address_list(re.sub(r"\r?\n", "", value))
    ]
    if cut and written:
        written.pop()  # where the bound cut the fields: perhaps half an address
    # At most HEADER_BYTES of fields: their findings are counted before any is placed.
    found = [item for address in written for item in _parsed(address, where)]
    places = iter(item_places(where, sum(isinstance(i, ContactInput) for i in found)))
    for item in found:
        if isinstance(item, ContactInput):
            yield ContactInput(email=item.email, name=item.name, where=next(places))
        else:
            yield item
    if cut:
        yield RecordProblem(where=where, reason=CUT_OFF)
    elif not found:
        yield RecordProblem(where=where, reason=NONE_FOUND)


def _parsed(raw: RawAddress, where: str) -> Iterator[ContactInput | RecordProblem]:
    try:
        # The stdlib's parser raises ValueError, IndexError and others on malformed input.
        found = [
            (address.addr_spec, address.display_name)
            for address in _ADDRESS("to", raw.text).addresses
            if address.addr_spec
        ]
    except Exception:
        yield RecordProblem(where=where, reason=UNREADABLE)
        return
    if "=?" in raw.address:
        # The parser decodes an encoded word even inside an address, which RFC 2047
        # forbids: the address goes on as written, to be refused as file imports refuse it.
        found = [(raw.address, found[0][1] if found else "")]
    for address, name in found:
        yield ContactInput(email=_storable(address), name=_storable(name), where=where)


def _storable(text: str) -> str:
    """Header text as it can be stored: raw bytes that are not UTF-8, and those of an encoded
    word in an unknown charset, come out of the parser as lone surrogates, read here as
    Windows-1252."""
    try:
        return fix_text(text)
    except UnicodeError:  # a surrogate that stands for no byte
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
