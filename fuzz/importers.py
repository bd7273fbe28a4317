"""Coverage-guided fuzzing of every address-book reader (atheris, libFuzzer).

Run: `python fuzz/importers.py -max_total_time=60 CORPUS_DIR`; an empty CORPUS_DIR is
seeded with tests/data/imports and tests/fuzz/regressions. Each input is read as every
format, as an IMAP header block, as IMAP LIST lines and as a WebDAV multistatus answer.
Anything raised but InvalidInput, or any record that cannot be stored, is a crash; pass
`-timeout=N` to count an input that takes N seconds as one too.
"""

from __future__ import annotations

import io
import sys

import atheris
from seeds import seed

with atheris.instrument_imports():
    from courtois.domain.contacts import ContactInput, RecordProblem
    from courtois.domain.errors import InvalidInput
    from courtois.importers import read_contacts
    from courtois.importers.imap_folders import choose_sent, parse_list
    from courtois.importers.imap_headers import addresses_of
    from courtois.importers.webdav import BudgetedStream, ByteBudget, read_multistatus

FORMATS = (None, "vcard", "csv", "ldif")
HEADER_BYTES = 4096  # the standard library's header parser is superlinear beyond


def storable(*texts: str) -> None:
    for text in texts:
        text.encode("utf-8")


def test_one_input(data: bytes) -> None:
    for chosen in FORMATS:
        try:
            records = list(read_contacts(io.BytesIO(data), chosen))
        except InvalidInput:
            continue
        for record in records:
            if isinstance(record, ContactInput):
                storable(record.email, record.name, record.where)
            elif isinstance(record, RecordProblem):
                storable(record.where, record.reason)
            else:
                raise TypeError(f"a reader yielded {type(record).__name__}")
    for found in addresses_of(data[:HEADER_BYTES], "message 1", cut=False):
        storable(found.where)
    boxes = parse_list(data.splitlines())
    choose_sent(boxes, None)
    try:
        for response in read_multistatus(BudgetedStream([data], ByteBudget(10**7)), "server"):
            storable(response.href)
    except InvalidInput:
        pass


def main() -> None:
    seed(sys.argv, "tests/data/imports", "tests/fuzz/regressions")
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
