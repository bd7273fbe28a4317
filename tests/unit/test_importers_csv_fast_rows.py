"""The CSV reader's inline path names people and spots blank rows as the rules say.

A row without a quote is split on the separator and its name built from the pieces in one
go; these are the rows where such a shortcut could go wrong: a missing middle name,
whitespace inside pieces, a blank full-name column, a name past the length limit, bytes
that are not UTF-8, rows shorter or longer than the header, and rows of separators only.
"""

from __future__ import annotations

import io

from courtois.domain.contacts import ContactInput, RecordProblem
from courtois.importers.csv_exports import read_csv
from courtois.importers.values import MAX_NAME_CHARS

GOOGLE = b"First Name,Middle Name,Last Name,E-mail 1 - Value,E-mail 2 - Value\r\n"
THUNDERBIRD = b"Display Name,First Name,Last Name,Primary Email\r\n"


def read(data: bytes) -> list[ContactInput | RecordProblem]:
    return list(read_csv(io.BytesIO(data)))


def test_a_missing_middle_name_leaves_one_space() -> None:
    assert read(GOOGLE + b"Ana,,Lima,ana@example.org,bo@example.org\r\n") == [
        ContactInput("ana@example.org", "Ana Lima", "line 2, item 1"),
        ContactInput("bo@example.org", "Ana Lima", "line 2, item 2"),
    ]


def test_whitespace_inside_and_around_pieces_is_folded() -> None:
    row = " Ana\t, Maria ,Lima  da\u00a0Silva ,ana@example.org,\r\n".encode()
    assert read(GOOGLE + row) == [
        ContactInput("ana@example.org", "Ana Maria Lima da Silva", "line 2")
    ]


def test_a_blank_full_name_gives_way_to_the_pieces() -> None:
    data = (
        THUNDERBIRD + b" \t ,Ana,Lima,ana@example.org\r\nAna  Lima (work),Bo,Berg,b@example.org\r\n"
    )
    assert read(data) == [
        ContactInput("ana@example.org", "Ana Lima", "line 2"),
        ContactInput("b@example.org", "Ana Lima (work)", "line 3"),
    ]


def test_a_long_name_is_cut_where_single_spaced_pieces_reach_the_limit() -> None:
    first, last = "a" * 600, "b" * 600
    (record,) = read(GOOGLE + f"{first},,{last},ana@example.org,\r\n".encode())
    assert isinstance(record, ContactInput)
    assert record.name == first + " " + "b" * (MAX_NAME_CHARS - 601)
    assert len(record.name) == MAX_NAME_CHARS


def test_windows_1252_bytes_in_a_name_are_decoded_before_spaces_are_folded() -> None:
    # 0xE9 is "é" and 0xA0 a no-break space in Windows-1252; neither is UTF-8 on its own.
    data = GOOGLE + b"Ana\xa0Maria,,Dupr\xe9,ana@example.org,\r\n"
    assert read(data) == [ContactInput("ana@example.org", "Ana Maria Dupré", "line 2")]


def test_short_long_and_blank_rows() -> None:
    data = GOOGLE + (
        b"Ana,,Lima,ana@example.org\r\n"  # no cell for the second address
        b"Bo,Berg\r\n"  # no address cell at all
        b",,,,\r\n"  # blank
        b" , ,\t, , \r\n"  # blank too: only separators and whitespace
        b"Cy,,,,,extra,cells\r\n"  # more cells than the header, none an address
        b",,,,dee@example.org\r\n"
    )
    assert read(data) == [
        ContactInput("ana@example.org", "Ana Lima", "line 2"),
        RecordProblem("line 3", "no address"),
        RecordProblem("line 6", "no address"),
        ContactInput("dee@example.org", "", "line 7"),
    ]


def test_tab_separated_blank_rows_yield_nothing() -> None:
    header = GOOGLE.replace(b",", b"\t")
    data = header + b"\t\t\t\t\r\n \t \t\t\t\r\nAna\t\tLima\tana@example.org\t\r\n"
    assert read(data) == [ContactInput("ana@example.org", "Ana Lima", "line 4")]


def test_a_quoted_row_shorter_than_the_header() -> None:
    data = GOOGLE + b'"Lima, Ana",,,"ana@example.org"\r\n"Bo ""B"""\r\n'
    assert read(data) == [
        ContactInput("ana@example.org", "Lima, Ana", "line 2"),
        RecordProblem("line 3", "no address"),
    ]
