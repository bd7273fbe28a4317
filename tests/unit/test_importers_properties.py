"""Generated address books read back as written, and no input makes a reader crash.

vCard files are written by vobject (another implementation, so that a shared mistake cannot
hide), CSV files by the csv module in the column layouts of real exporters, with every
separator, line ending and encoding the readers claim to handle.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import vobject
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from courtois.domain.contacts import ContactInput, RecordProblem
from courtois.domain.errors import InvalidInput
from courtois.importers import read_contacts
from courtois.importers.csv_exports import read_csv
from courtois.importers.ldif import read_ldif
from courtois.importers.vcard import read_vcards

CORPUS = Path(__file__).resolve().parents[1] / "data" / "imports"
ATEXT = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"
BREAKS = re.compile(r"\r\n|\r|\n")

local_parts = st.text(alphabet=ATEXT + "éßжç", min_size=1, max_size=20)
domains = st.lists(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12),
    min_size=1,
    max_size=3,
).map(lambda labels: ".".join([*labels, "example"]))
emails = st.builds(lambda local, domain: f"{local}@{domain}", local_parts, domains)
# Any printable or spacing text, line breaks included; no control characters but \t \n \r.
names = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Cc"), whitelist_characters="\t\n\r", max_codepoint=0x2FFFF
    ),
    max_size=30,
)


@dataclass(frozen=True)
class Person:
    name: str
    emails: tuple[str, ...]


def people(max_emails: int) -> st.SearchStrategy[list[Person]]:
    person = st.builds(Person, names, st.lists(emails, max_size=max_emails).map(tuple))
    return st.lists(person, min_size=1, max_size=12)


def tidy(name: str) -> str:
    return " ".join(name.split())


def check_output(records: list[ContactInput | RecordProblem]) -> None:
    """What any reader yields: the two record types, with text that can be stored."""
    for record in records:
        assert type(record) in (ContactInput, RecordProblem)
        for text in (
            record.where,
            *(
                (record.email, record.name)
                if isinstance(record, ContactInput)
                else (record.reason,)
            ),
        ):
            assert isinstance(text, str)
            text.encode("utf-8")  # no lone surrogate escapes a reader


# --- vCard round trip ------------------------------------------------------------------------


def item_place(where: str, number: int, count: int) -> str:
    """Where the `number`th of a record's `count` addresses is said to be: the record's
    place alone when it holds one address, else the place and the address's rank."""
    return where if count == 1 else f"{where}, item {number}"


def vcard_file(persons: list[Person]) -> str:
    cards = []
    for person in persons:
        card = vobject.vCard()
        card.add("fn").value = person.name
        card.add("n").value = vobject.vcard.Name(given=person.name)
        for address in person.emails:
            line = card.add("email")
            line.value = address
            line.type_param = "INTERNET"
        cards.append(card.serialize())
    return "".join(cards)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(people(max_emails=4), st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]))
def test_vcards_written_by_vobject_read_back(persons: list[Person], encoding: str) -> None:
    data = vcard_file(persons).encode(encoding)
    records = list(read_vcards(io.BytesIO(data)))
    expected: list[ContactInput | RecordProblem] = []
    for number, person in enumerate(persons, start=1):
        where = f"card {number}"
        if not person.emails:
            expected.append(RecordProblem(where, "no address"))
        expected += [
            ContactInput(e, tidy(person.name), item_place(where, k, len(person.emails)))
            for k, e in enumerate(person.emails, start=1)
        ]
    assert records == expected
    assert list(read_contacts(io.BytesIO(data))) == expected


# --- CSV round trip --------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Where an exporter puts names and addresses; `multi` joins extra addresses in a cell."""

    header: tuple[str, ...]
    full: int | None
    first: int | None
    last: int | None
    emails: tuple[int, ...]
    multi: bool = False
    preamble: tuple[str, ...] = ()


LAYOUTS = {
    "google-old": Layout(
        (
            "Name",
            "Given Name",
            "Family Name",
            "Notes",
            "Group Membership",
            "E-mail 1 - Type",
            "E-mail 1 - Value",
            "E-mail 2 - Type",
            "E-mail 2 - Value",
        ),
        full=0,
        first=None,
        last=None,
        emails=(6, 8),
        multi=True,
    ),
    "google-new": Layout(
        (
            "First Name",
            "Middle Name",
            "Last Name",
            "Labels",
            "E-mail 1 - Label",
            "E-mail 1 - Value",
            "E-mail 2 - Label",
            "E-mail 2 - Value",
            "Phone 1 - Value",
        ),
        full=None,
        first=0,
        last=2,
        emails=(5, 7),
    ),
    "outlook-en": Layout(
        (
            "First Name",
            "Middle Name",
            "Last Name",
            "E-mail Address",
            "E-mail Type",
            "E-mail Display Name",
            "E-mail 2 Address",
            "E-mail 3 Address",
        ),
        full=None,
        first=0,
        last=2,
        emails=(3, 6, 7),
    ),
    "outlook-fr": Layout(
        (
            "Prénom",
            "Deuxième prénom",
            "Nom",
            "Adresse de messagerie",
            "Type de messagerie",
            "Nom complet de l'adresse de messagerie",
            "Adresse de messagerie 2",
        ),
        full=None,
        first=0,
        last=2,
        emails=(3, 6),
    ),
    "linkedin": Layout(
        ("First Name", "Last Name", "URL", "Email Address", "Company", "Position", "Connected On"),
        full=None,
        first=0,
        last=1,
        emails=(3,),
        preamble=(
            "Notes:",
            '"When exporting your connection data, you may notice that some '
            'of the email addresses are missing."',
            "",
        ),
    ),
    "thunderbird": Layout(
        (
            "First Name",
            "Last Name",
            "Display Name",
            "Nickname",
            "Primary Email",
            "Secondary Email",
            "",
        ),
        full=2,
        first=0,
        last=1,
        emails=(4, 5),
    ),
    "numbers": Layout(("Full name", "Email", "Work email", "Phone"), 0, None, None, (1, 2)),
}


def layout_row(layout: Layout, person: Person) -> tuple[list[str], tuple[str, ...]]:
    """The cells of a person's row and the addresses the row really holds."""
    cells = [""] * len(layout.header)
    if "Labels" in layout.header or "Group Membership" in layout.header:
        cells[3 if "Labels" in layout.header else 4] = "* myContacts"
    if layout.full is not None:
        cells[layout.full] = person.name
    else:
        assert layout.first is not None
        assert layout.last is not None
        words = person.name.split()
        cells[layout.first] = words[0] if words else ""
        cells[layout.last] = " ".join(words[1:])
    kept = person.emails[: len(layout.emails)]
    for column, address in zip(layout.emails, kept, strict=False):
        cells[column] = address
    if layout.multi and len(person.emails) > len(layout.emails):
        cells[layout.emails[-1]] = " ::: ".join(person.emails[len(layout.emails) - 1 :])
        kept = person.emails
    return cells, kept


def encodable(text: str, encoding: str) -> bool:
    """Whether `text` survives `encoding` unambiguously for a reader that tries UTF-8 first."""
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:
        return False
    if encoding != "cp1252":
        return True
    for value in re.split(r"[,;\t\r\n]", text):  # a cp1252 value that happens to be UTF-8
        raw = value.encode("cp1252")
        if not raw.isascii():
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                continue
            return False
    return bool(data) or True


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    people(max_emails=4),
    st.sampled_from(sorted(LAYOUTS)),
    st.sampled_from([",", ";", "\t"]),
    st.sampled_from(["\r\n", "\n"]),
    st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"]),
)
def test_csv_exports_read_back(
    persons: list[Person], style: str, separator: str, ending: str, encoding: str
) -> None:
    layout = LAYOUTS[style]
    # The csv module quotes a field only for the characters of its own line ending: a lone
    # CR written with "\n" endings breaks the row in two for any reader.
    assume(ending == "\r\n" or not any("\r" in person.name for person in persons))
    out = io.StringIO(newline="")
    for line in layout.preamble:
        out.write(line + ending)
    writer = csv.writer(out, delimiter=separator, lineterminator=ending)
    writer.writerow(layout.header)
    number = len(layout.preamble) + 1
    expected: list[ContactInput | RecordProblem] = []
    for person in persons:
        cells, kept = layout_row(layout, person)
        row = io.StringIO(newline="")
        csv.writer(row, delimiter=separator, lineterminator=ending).writerow(cells)
        text = row.getvalue()
        writer.writerow(cells)
        start = number + 1
        number += len(BREAKS.findall(text))
        where = f"line {start}"
        if kept:
            expected += [
                ContactInput(e, tidy(person.name), item_place(where, k, len(kept)))
                for k, e in enumerate(kept, start=1)
            ]
        elif any(cell.strip() for cell in cells):
            expected.append(RecordProblem(where, "no address"))
    content = out.getvalue()
    assume(encodable(content, encoding))
    data = content.encode(encoding)

    records = list(read_csv(io.BytesIO(data)))
    assert records == expected
    assert list(read_contacts(io.BytesIO(data))) == expected


# --- nothing crashes ---------------------------------------------------------------------------


def read_all(data: bytes, reader: str) -> None:
    """Consume a reader on `data`; only InvalidInput may escape, and records are sound."""
    stream = io.BytesIO(data)
    try:
        if reader == "vcard":
            records = list(read_vcards(stream))
        elif reader == "csv":
            records = list(read_csv(stream))
        elif reader == "ldif":
            records = list(read_ldif(stream))
        else:
            records = list(read_contacts(stream))
    except InvalidInput as error:
        message = error.message
        records = []
    else:
        message = "read"
    assert message  # a refusal always says why
    check_output(records)


READER_NAMES = st.sampled_from(["vcard", "csv", "ldif", "detect"])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000), READER_NAMES)
def test_random_bytes_never_crash_a_reader(data: bytes, reader: str) -> None:
    read_all(data, reader)


SAMPLES = sorted(path for path in CORPUS.iterdir() if path.suffix not in (".json", ".md"))
mutation = st.tuples(
    st.sampled_from(["delete", "insert", "duplicate", "truncate", "flip"]),
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=0, max_value=200),
    st.binary(min_size=1, max_size=40),
)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(SAMPLES), st.lists(mutation, min_size=1, max_size=6), READER_NAMES)
def test_damaged_samples_never_crash_a_reader(
    sample: Path, edits: list[tuple[str, int, int, bytes]], reader: str
) -> None:
    data = bytearray(sample.read_bytes())
    for kind, position, length, noise in edits:
        at = position % (len(data) + 1)
        if kind == "delete":
            del data[at : at + length]
        elif kind == "insert":
            data[at:at] = noise
        elif kind == "duplicate":
            data[at:at] = data[at : at + length]
        elif kind == "truncate":
            del data[at:]
        elif data:
            data[at % len(data)] ^= noise[0]
    read_all(bytes(data), reader)


# Lines that reach the deepest branches: parameters, encodings, charsets, folds, soft breaks.
vcard_lines = st.lists(
    st.sampled_from(
        [
            "BEGIN:VCARD",
            "END:VCARD",
            "VERSION:2.1",
            "AGENT:",
            "FN:Ana",
            "N:Lima;Ana;;;",
            "EMAIL:ana@example.org",
            "EMAIL;ENCODING=QUOTED-PRINTABLE:a=",
            "EMAIL;CHARSET=utf-16;ENCODING=QUOTED-PRINTABLE:=FF=FE=00",
            "FN;CHARSET=bogus;ENCODING=QUOTED-PRINTABLE:=E9=",
            "N;ENCODING=b:!!",
            "EMAIL;ENCODING=BASE64:YUBiLmM=",
            'EMAIL;X="a:b";Y="c:',
            " folded",
            "\tfolded",
            "=",
            "",
            "item1.EMAIL;type=pref:mailto:",
            "FN:\\",
            "N:\\;\\,,;",
        ]
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(vcard_lines, st.sampled_from(["\r\n", "\n", "\r"]))
def test_vcard_shaped_noise_never_crashes(lines: list[str], ending: str) -> None:
    read_all(ending.join(lines).encode("utf-8"), "vcard")


ldif_lines = st.lists(
    st.sampled_from(
        [
            "version: 1",
            "dn: cn=a",
            "dn:: Y249YQ==",
            "mail: a@b.c",
            "mail:: !!",
            "mail:< x",
            "cn:: w6k=",
            "givenName: A",
            "sn:",
            " fold",
            "#c",
            "-",
            "",
            "mail",
            ":",
            "mail;x: y",
        ]
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(ldif_lines)
def test_ldif_shaped_noise_never_crashes(lines: list[str]) -> None:
    read_all("\n".join(lines).encode("utf-8"), "ldif")
