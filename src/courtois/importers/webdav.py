"""WebDAV multistatus answers, read as a stream and parsed with DTDs and entities refused.

The server is chosen by a member, so its XML is untrusted: defusedxml refuses any DTD or
entity (billion laughs, external entities) whichever expat the interpreter links against,
and every byte read is counted against one budget so a server cannot fill the memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as DefusedElementTree

from courtois.domain.errors import InvalidInput

DAV = "{DAV:}"
CARDDAV = "{urn:ietf:params:xml:ns:carddav}"

_NAMESPACES = 'xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:carddav"'


def propfind_body(*props: str) -> bytes:
    """A PROPFIND asking for the given properties, written as `d:name` or `c:name`."""
    wanted = "".join(f"<{prop}/>" for prop in props)
    return (
        f'<?xml version="1.0" encoding="utf-8"?><d:propfind {_NAMESPACES}>'
        f"<d:prop>{wanted}</d:prop></d:propfind>"
    ).encode()


# No filter: RFC 6352 section 8.6 makes the query match every card of the collection.
ADDRESSBOOK_QUERY = (
    f'<?xml version="1.0" encoding="utf-8"?><c:addressbook-query {_NAMESPACES}>'
    "<d:prop><d:getetag/><c:address-data/></d:prop></c:addressbook-query>"
).encode()


class ByteBudget:
    """What may still be read from the server, over every answer of one import."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.remaining = max_bytes

    def spend(self, count: int) -> None:
        self.remaining -= count
        if self.remaining < 0:
            megabytes = self.max_bytes / 1_000_000
            raise InvalidInput(
                f"The address book is larger than the {megabytes:g} MB this import accepts; "
                "export it as a vCard file and import the file instead."
            )


class BudgetedStream:
    """A file-like view of chunks for the XML parser, charging each chunk to the budget."""

    def __init__(self, chunks: Iterable[bytes], budget: ByteBudget) -> None:
        self._chunks = iter(chunks)
        self._budget = budget
        self._pending = b""

    def read(self, size: int = -1) -> bytes:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return b""
            self._budget.spend(len(chunk))
            self._pending = chunk
        if size < 0 or size >= len(self._pending):
            out, self._pending = self._pending, b""
        else:
            out, self._pending = self._pending[:size], self._pending[size:]
        return out


@dataclass
class DavResponse:
    """One `<response>` of a multistatus: its href and the properties found (status 200)."""

    href: str
    props: dict[str, Element] = field(default_factory=dict)

    def has_type(self, tag: str) -> bool:
        kinds = self.props.get(f"{DAV}resourcetype")
        return kinds is not None and kinds.find(tag) is not None

    def href_in(self, prop: str) -> str | None:
        holder = self.props.get(prop)
        found = holder.find(f"{DAV}href") if holder is not None else None
        text = (found.text or "").strip() if found is not None else ""
        return text or None

    def text_of(self, prop: str) -> str | None:
        element = self.props.get(prop)
        return None if element is None else (element.text or "")


def read_multistatus(stream: BudgetedStream, source: str) -> Iterator[DavResponse]:
    """Yield each `<response>` as soon as it closes, then drop it from the tree."""
    root: Element | None = None
    try:
        for event, element in DefusedElementTree.iterparse(stream, events=("start", "end")):
            if root is None:
                root = element
            elif event == "end" and element.tag == f"{DAV}response":
                yield _to_response(element)
                root.clear()  # the responses read so far, so memory stays flat
    except (DefusedElementTree.ParseError, DefusedXmlException, LookupError, ValueError) as exc:
        # An XML declaration may name an encoding Python does not know (LookupError) or one
        # expat cannot read (ValueError: multi-byte ones such as EUC-JP): not WebDAV either.
        raise InvalidInput(
            f"{source} does not look like a CardDAV server: its answer is not WebDAV XML."
        ) from exc


def _to_response(element: Element) -> DavResponse:
    href = (element.findtext(f"{DAV}href") or "").strip()
    response = DavResponse(href=href)
    for propstat in element.iterfind(f"{DAV}propstat"):
        status = propstat.findtext(f"{DAV}status") or ""
        if " 200 " not in f"{status} ":
            continue
        prop = propstat.find(f"{DAV}prop")
        for child in prop if prop is not None else ():
            response.props[child.tag] = child
    return response
