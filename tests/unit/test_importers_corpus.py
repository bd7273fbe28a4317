"""Every sample address book in tests/data/imports gives exactly what its .expected.json says.

The samples copy what real exporters write (Android and Nokia vCard 2.1, Apple, Google and
RFC 6350 vCards, Google, Outlook, LinkedIn, Thunderbird and Numbers CSVs, Thunderbird and
OpenLDAP LDIF) and the ways files go wrong (mixed encodings, UTF-16, Windows-1252, broken
quotes, overlong lines, cards without END). Each expectation was written from the sample's
content, record by record, in the order the reader must yield them.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from courtois.domain.contacts import ContactInput, RecordProblem
from courtois.importers import FORMATS, read_contacts
from courtois.importers.csv_exports import read_csv
from courtois.importers.detect import detect_format
from courtois.importers.ldif import read_ldif
from courtois.importers.vcard import read_vcards

CORPUS = Path(__file__).resolve().parents[1] / "data" / "imports"
EXPECTATIONS = sorted(CORPUS.glob("*.expected.json"))
READERS = {"vcard": read_vcards, "csv": read_csv, "ldif": read_ldif}


def as_dicts(records: list[ContactInput | RecordProblem]) -> list[dict[str, str]]:
    result = []
    for record in records:
        if isinstance(record, ContactInput):
            result.append({"email": record.email, "name": record.name, "where": record.where})
        else:
            result.append({"problem": record.reason, "where": record.where})
    return result


def test_corpus_is_large_and_covers_every_format() -> None:
    formats = [json.loads(path.read_text("utf-8"))["format"] for path in EXPECTATIONS]
    assert len(EXPECTATIONS) >= 20
    assert set(formats) == set(FORMATS)


@pytest.mark.parametrize("expected_path", EXPECTATIONS, ids=lambda path: path.name)
def test_sample_gives_its_expected_records(expected_path: Path) -> None:
    expected = json.loads(expected_path.read_text("utf-8"))
    data = (CORPUS / expected["file"]).read_bytes()

    assert detect_format(data[:65536]) == expected["format"]
    detected = list(read_contacts(io.BytesIO(data)))
    assert as_dicts(detected) == expected["records"]
    # Named explicitly, and through the format's own reader, the answer is the same.
    assert list(read_contacts(io.BytesIO(data), expected["format"])) == detected
    assert list(READERS[expected["format"]](io.BytesIO(data))) == detected


@pytest.mark.parametrize("expected_path", EXPECTATIONS, ids=lambda path: path.name)
def test_sample_read_in_tiny_chunks_gives_the_same(expected_path: Path) -> None:
    """Chunk boundaries (inside a UTF-8 or UTF-16 character, between CR and LF) change
    nothing: a network stream may hand over a few bytes at a time."""
    expected = json.loads(expected_path.read_text("utf-8"))
    data = (CORPUS / expected["file"]).read_bytes()

    class Trickle(io.RawIOBase):
        def __init__(self) -> None:
            self.position = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            piece = data[self.position : self.position + 7]
            buffer[: len(piece)] = piece
            self.position += len(piece)
            return len(piece)

    records = list(read_contacts(Trickle(), expected["format"]))  # type: ignore[arg-type]
    assert as_dicts(records) == expected["records"]
