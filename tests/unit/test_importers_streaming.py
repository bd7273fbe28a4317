"""Readers stream: they read front to back, answer before the end, and hold little memory.

The inputs here are generated on the fly by stream objects, never held whole, so that a
reader keeping what it reads would show in the traced peak.
"""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Callable, Iterator

import pytest

from courtois.domain.contacts import ContactInput, RecordProblem
from courtois.domain.errors import InvalidInput
from courtois.importers import read_contacts
from courtois.importers.decoding import CHUNK_BYTES, HEAD_BYTES

MB = 1024 * 1024


class Generated(io.RawIOBase):
    """A forward-only binary stream made of parts produced on demand; counts bytes read.

    seek, tell and readline are refused, to prove that readers need none of them (a
    progress wrapper or a network body offers only `read`).
    """

    def __init__(self, parts: Iterator[bytes]) -> None:
        self._parts = parts
        self._part = b""
        self._at = 0
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while self._at >= len(self._part):
            part = next(self._parts, None)
            if part is None:
                return 0
            self._part, self._at = part, 0
        size = min(len(buffer), len(self._part) - self._at)
        buffer[:size] = self._part[self._at : self._at + size]
        self._at += size
        self.consumed += size
        return size

    def seekable(self) -> bool:
        return False

    def seek(self, *_: object) -> int:
        raise AssertionError("readers must not seek")

    def tell(self) -> int:
        raise AssertionError("readers must not tell")

    def readline(self, *_: object) -> bytes:
        raise AssertionError("readers read with read(size)")


def repeated(piece: bytes, total: int) -> Iterator[bytes]:
    """Whole copies of `piece`, about `total` bytes in all, in parts of about 64 KB."""
    per_part = max(1, 65536 // len(piece))
    block = piece * per_part
    for _ in range(total // len(block)):
        yield block


def csv_rows() -> Iterator[bytes]:
    yield b"First Name,Last Name,E-mail Address\r\n"
    number = 0
    while True:
        yield b"".join(b"Ana,Lima,ana.%d@example.org\r\n" % (number + i) for i in range(1000))
        number += 1000


def vcards() -> Iterator[bytes]:
    number = 0
    while True:
        yield (
            b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ana Lima\r\nEMAIL:ana.%d@example.org\r\n"
            b"END:VCARD\r\n" % number
        )
        number += 1


def ldif_entries() -> Iterator[bytes]:
    number = 0
    while True:
        yield b"dn: cn=Ana Lima %d\ncn: Ana Lima\nmail: ana.%d@example.org\n\n" % (number, number)
        number += 1


@pytest.mark.parametrize("parts", [csv_rows, vcards, ldif_entries], ids=["csv", "vcard", "ldif"])
def test_first_contact_comes_before_the_stream_is_read(
    parts: Callable[[], Iterator[bytes]],
) -> None:
    stream = Generated(parts())  # endless: a reader wanting it all would never answer
    records = read_contacts(stream)  # type: ignore[arg-type]
    first = next(records)
    assert isinstance(first, ContactInput)
    assert first.email == "ana.0@example.org"
    assert stream.consumed <= HEAD_BYTES + CHUNK_BYTES
    for _ in range(20_000):
        next(records)
    assert stream.consumed < 4 * MB


def peak_while(run: Callable[[], list[ContactInput | RecordProblem]]) -> tuple[list, int]:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        records = run()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return records, peak


def read_generated(parts: Iterator[bytes], fmt: str) -> list[ContactInput | RecordProblem]:
    return list(read_contacts(Generated(parts), fmt))  # type: ignore[arg-type]


def chained(*parts: Iterator[bytes] | bytes) -> Iterator[bytes]:
    for part in parts:
        if isinstance(part, bytes):
            yield part
        else:
            yield from part


def test_a_csv_line_of_30_mb_costs_no_memory_and_is_reported() -> None:
    parts = chained(
        b"Name,Email,Notes\nAna,ana@example.org,x\nBig,big@example.org,",
        repeated(b"y", 30 * MB),
        b"\nBo,bo@example.org,z\n",
    )
    records, peak = peak_while(lambda: read_generated(parts, "csv"))
    assert records == [
        ContactInput("ana@example.org", "Ana", "line 2"),
        RecordProblem("line 3", "line too long"),
        ContactInput("bo@example.org", "Bo", "line 4"),
    ]
    assert peak < 3 * MB


def test_a_quote_left_open_is_cut_and_the_rows_after_it_are_read() -> None:
    parts = chained(
        b'Name,Email\nAna,ana@example.org\n"Open,open@example.org\n',
        repeated(b"Filler,filler@example.org\n", MB // 2),
    )
    counts = {"contacts": 0}

    def run() -> list[ContactInput | RecordProblem]:
        kept = []
        for record in read_contacts(Generated(parts), "csv"):  # type: ignore[arg-type]
            if len(kept) < 3:
                kept.append(record)
            counts["contacts"] += isinstance(record, ContactInput)
        return kept

    records, peak = peak_while(run)
    assert records[0] == ContactInput("ana@example.org", "Ana", "line 2")
    assert records[1] == RecordProblem("line 3", "record too long (a quote left open?)")
    # Reading resumes after the cut: the filler rows after it are contacts again.
    assert records[2] == ContactInput("filler@example.org", "Filler", records[2].where)
    assert int(records[2].where.split()[1]) < 10_000
    assert counts["contacts"] > 15_000
    assert peak < 3 * MB


def folded_photo(total: int) -> Iterator[bytes]:
    yield b"PHOTO;ENCODING=b;TYPE=JPEG:" + b"A" * 60 + b"\r\n"
    yield from repeated(b" " + b"QUJD" * 18 + b"\r\n", total)


def test_a_vcard_photo_of_8_mb_costs_no_memory() -> None:
    card = chained(
        b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ana Lima\r\n",
        folded_photo(8 * MB),
        b"EMAIL:ana@example.org\r\nEND:VCARD\r\n",
        b"BEGIN:VCARD\r\nVERSION:2.1\r\nFN:Bo\r\nPHOTO;ENCODING=BASE64;JPEG:",
        repeated(b"QUJD", 10 * MB),  # unfolded: one line of 10 MB
        b"\r\n\r\nEMAIL:bo@example.org\r\nEND:VCARD\r\n",
    )
    records, peak = peak_while(lambda: read_generated(card, "vcard"))
    assert records == [
        ContactInput("ana@example.org", "Ana Lima", "card 1"),
        ContactInput("bo@example.org", "Bo", "card 2"),
    ]
    assert peak < 3 * MB


def test_an_endless_folded_address_is_refused_without_growing() -> None:
    card = chained(
        b"BEGIN:VCARD\r\nFN:Ana\r\nEMAIL:ana@exa\r\n",
        repeated(b" mple.org\r\n", MB),
        b"END:VCARD\r\n",
    )
    records, peak = peak_while(lambda: read_generated(card, "vcard"))
    assert records == [RecordProblem("card 1", "line too long")]
    assert peak < 3 * MB


def test_a_card_with_too_many_addresses_is_one_problem() -> None:
    lines = b"".join(b"EMAIL:a%d@example.org\r\n" % n for n in range(1001))
    data = b"BEGIN:VCARD\r\nFN:Many\r\n" + lines + b"END:VCARD\r\n"
    records = list(read_contacts(io.BytesIO(data)))
    assert records == [RecordProblem("card 1", "card too large: more than 1000 addresses")]


def test_an_ldif_photo_of_8_mb_costs_no_memory() -> None:
    entry = chained(
        b"dn: cn=Ana\ncn: Ana Lima\njpegPhoto:: QUJD\n",
        repeated(b" " + b"QUJD" * 18 + b"\n", 8 * MB),
        b"mail: ana@example.org\n",
    )
    records, peak = peak_while(lambda: read_generated(entry, "ldif"))
    assert records == [ContactInput("ana@example.org", "Ana Lima", "entry 1")]
    assert peak < 3 * MB


def test_text_before_any_card_gives_up_early() -> None:
    """A large non-vCard file named as vCard is refused after a bounded look."""
    stream = Generated(repeated(b"this is not a card\n", 50 * MB))
    records = read_contacts(stream, "vcard")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="not a vCard file"):
        next(records)
    assert stream.consumed < 2 * MB
