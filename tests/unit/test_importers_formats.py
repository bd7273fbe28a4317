"""Format choice, refusals and decoding corners that the sample corpus does not reach."""

from __future__ import annotations

import codecs
import encodings.aliases
import io

import pytest

from courtois.domain.contacts import ContactInput, RecordProblem
from courtois.domain.errors import InvalidInput
from courtois.importers import FORMATS, read_contacts
from courtois.importers.csv_columns import is_address_column
from courtois.importers.decoding import fix_text, looks_like_text, sniff_encoding
from courtois.importers.detect import detect_format
from courtois.importers.vcard import read_vcards


def read(data: bytes, fmt: str | None = None) -> list[ContactInput | RecordProblem]:
    return list(read_contacts(io.BytesIO(data), fmt))


def test_formats_are_named() -> None:
    assert FORMATS == ("vcard", "csv", "ldif")


def test_an_unknown_format_is_refused_before_anything_is_read() -> None:
    stream = io.BytesIO(b"First Name,Email\nAna,ana@example.org\n")
    with pytest.raises(InvalidInput, match="Unknown address book format 'xlsx'"):
        read_contacts(stream, "xlsx")
    assert stream.tell() == 0


@pytest.mark.parametrize("fmt", [None, *FORMATS])
def test_an_empty_file_is_refused(fmt: str | None) -> None:
    with pytest.raises(InvalidInput, match="empty"):
        read(b"", fmt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_file_holding_only_a_bom_is_refused_as_empty_in_its_format(fmt: str) -> None:
    """Every reader names the format it could not read, as the API's unreadable-file needs."""
    with pytest.raises(InvalidInput) as refused:
        read(b"\xef\xbb\xbf", fmt)
    assert refused.value.details == {"format": fmt}


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4,
        b"PK\x03\x04\x14\x00\x06\x00" + bytes(200),
        b"Just a letter to a friend, with no address in it.\nSee you soon.\n",
    ],
    ids=["png", "zip", "prose"],
)
def test_what_is_no_address_book_is_refused_at_once(data: bytes) -> None:
    with pytest.raises(InvalidInput, match="not an address book"):
        read_contacts(io.BytesIO(data))


@pytest.mark.parametrize(
    ("data", "fmt", "message"),
    [
        (b"BEGIN:VCARD\r\nEMAIL:a@example.org\r\nEND:VCARD\r\n", "csv", "vCard file"),
        (b"version: 1\n\ndn: cn=a\nmail: a@example.org\n", "csv", "LDIF file"),
        (b"Name,Email\nAna,ana@example.org\n", "vcard", "not a vCard"),
        (b"Name,Email\nAna,ana@example.org\n", "ldif", "not an LDIF"),
        (b"Name,Phone\nAna,+33 6\n", "csv", "No column of email addresses"),
        (bytes(range(256)) * 8, "csv", "binary"),
    ],
)
def test_a_file_read_as_the_wrong_format_is_refused(data: bytes, fmt: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        read(data, fmt)


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\r\n\r\nBEGIN:VCARD\r\nVERSION:4.0\r\n", "vcard"),
        (b"\xef\xbb\xbfbegin:vcard\nfn:x\n", "vcard"),
        ("BEGIN:VCARD\r\n".encode("utf-16"), "vcard"),
        (b"# comment\n\nversion: 1\n", "ldif"),
        (b"dn:: Y249YQ==\nmail: a@b.example\n", "ldif"),
        (b"Email\n", "csv"),
        (b"alice@example.com\n", "csv"),
        ("Prénom;Nom;Adresse de messagerie\r\n".encode("cp1252"), "csv"),
        (b"", None),
        (b"hello\n", None),
    ],
)
def test_detection(head: bytes, expected: str | None) -> None:
    assert detect_format(head) == expected


@pytest.mark.parametrize(
    ("data", "codec"),
    [
        ("Name\tEmail\r\n".encode("utf-16-le"), "utf-16-le"),
        ("Name\tEmail\r\n".encode("utf-16-be"), "utf-16-be"),
        (codecs.BOM_UTF32_LE + "x".encode("utf-32-le"), "utf-32-le"),
        (codecs.BOM_UTF16_BE + "x".encode("utf-16-be"), "utf-16-be"),
        ("Prénom".encode("cp1252"), "utf-8"),
    ],
)
def test_encoding_sniffing(data: bytes, codec: str) -> None:
    assert sniff_encoding(data)[0] == codec


def test_utf16_without_bom_reads() -> None:
    data = "First Name\tE-mail Address\r\nZoë\tzoe@example.se\r\n".encode("utf-16-le")
    assert read(data) == [ContactInput("zoe@example.se", "Zoë", "line 2")]


def test_old_mac_line_endings_are_lines() -> None:
    data = b"Name,Email\rAna,ana@example.org\rBo,bo@example.org\r"
    assert read(data) == [
        ContactInput("ana@example.org", "Ana", "line 2"),
        ContactInput("bo@example.org", "Bo", "line 3"),
    ]


def test_fix_text_decodes_only_what_was_not_utf8() -> None:
    raw = "Ren\xe9e Ã©".encode("cp1252")  # cp1252 bytes, one pair of which is valid UTF-8
    text = raw.decode("utf-8", "surrogateescape")
    assert fix_text(text) == "Renée Ã©"
    assert fix_text("Zoë") == "Zoë"
    assert fix_text("caf\udce9", "iso-8859-15") == "café"


def test_looks_like_text() -> None:
    assert looks_like_text("Name,Email\nAna,ana@example.org\n")
    assert not looks_like_text("")
    assert not looks_like_text(bytes(range(256)).decode("latin-1"))


def test_every_codec_name_as_a_vcard_charset_is_survived() -> None:
    """CHARSET comes from the file: any codec name Python knows, or nonsense, is harmless."""
    names = sorted(set(encodings.aliases.aliases) | set(encodings.aliases.aliases.values()))
    names += ["bogus", "", "\x00", "zlib_codec", "rot_13", "idna", "punycode", "undefined"]
    for name in names:
        card = (
            f"BEGIN:VCARD\r\nFN;ENCODING=QUOTED-PRINTABLE;CHARSET={name}:\\udc80=E9=FF=00=C3\r\n"
            f"N;CHARSET={name}:Caf\xe9;;;;\r\nEMAIL;CHARSET={name}:ana@example.org\r\nEND:VCARD\r\n"
        ).encode("latin-1", "replace")
        records = list(read_vcards(io.BytesIO(card)))
        assert len(records) == 1, name
        assert isinstance(records[0], ContactInput)
        assert records[0].email == "ana@example.org"
        records[0].name.encode("utf-8")


def test_a_charset_declared_by_a_card_decodes_its_8bit_text() -> None:
    card = "BEGIN:VCARD\r\nFN;CHARSET=SHIFT_JIS:山田\r\nEMAIL:y@example.jp\r\nEND:VCARD\r\n"
    data = card.encode("shift_jis")
    assert read(data) == [ContactInput("y@example.jp", "山田", "card 1")]


def test_a_csv_with_tabs_and_semicolons_in_cells_sniffs_the_right_separator() -> None:
    data = b"Name;Email;Notes\nAna, Lima;ana@example.org;a,b,c\n"
    assert read(data) == [ContactInput("ana@example.org", "Ana, Lima", "line 2")]


def test_a_repeated_header_is_skipped_however_wide() -> None:
    header = ",".join(["Email", "Name", *(f"Extra {n}" for n in range(30))])
    data = f"{header}\na@example.org,Ana\n{header}\nb@example.org,Bo\n".encode()
    assert read(data) == [
        ContactInput("a@example.org", "Ana", "line 2"),
        ContactInput("b@example.org", "Bo", "line 4"),
    ]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("E-mail Address", True),
        ("E-mail 2 Address", True),
        ("E-mail 1 - Value", True),
        ("Adresse de messagerie 3", True),
        ("E-Mail 2: Adresse", True),
        ("Primary Email", True),
        ("Adresse électronique principale", True),
        ("Correo electrónico", True),
        ("Work email", True),
        ("E-mail 1 - Type", False),
        ("E-mail 1 - Label", False),
        ("E-mail Display Name", False),
        ("Type de messagerie", False),
        ("Nom complet de l'adresse de messagerie", False),
        ("E-Mail-Anzeigename", False),
        ("Phone", False),
        ("When exporting your connection data, some email addresses may be missing.", False),
        # Outlook and Thunderbird in other languages: words glued together or spelt out.
        ("E-mailadres", True),
        ("E-mailadres 2", True),
        ("Eerste e-mailadres", True),
        ("Tweede e-mailadres", True),
        ("E-postadress", True),
        ("E-postadresse", True),
        ("E-mail-adresse", True),
        ("Indirizzo posta elettronica", True),
        ("Indirizzo posta elettronica 2", True),
        ("Dirección de correo electrónico", True),
        ("Endereço de email", True),
        ("Endereço de e-mail", True),
        ("Adres e-mail", True),
        ("Sähköpostiosoite", True),
        ("E-mailtype", False),
        ("E-mailtype 2", False),
        ("Weergavenaam voor e-mail", False),
        ("E-mail, weergegeven naam 2", False),
        ("Tipo de correo electrónico", False),
        ("Nombre para mostrar del correo electrónico", False),
        ("Tipo posta elettronica", False),
        ("Nome visualizzato posta elettronica", False),
        ("E-mail-visningsnavn", False),
        ("E-posttyp", False),
        ("Home Mailing Address", False),
        ("Home Post Code", False),
    ],
)
def test_address_columns_by_their_wording(header: str, expected: bool) -> None:
    assert is_address_column(header) is expected


DUTCH_OUTLOOK = (
    '"Voornaam","Achternaam","E-mailadres","E-mailtype","Weergavenaam voor e-mail",'
    '"E-mailadres 2","E-mailtype 2","E-mail, weergegeven naam 2"\r\n'
    '"Jan","Jansen","jan@example.nl","SMTP","Jan Jansen (jan@example.nl)","","",""\r\n'
    '"Els","de Vries","els@example.nl","SMTP","Els de Vries (els@example.nl)",'
    '"els.devries@example.com","SMTP","Els de Vries (els.devries@example.com)"\r\n'
)
ITALIAN_OUTLOOK = (
    '"Società","Nome","Cognome","Nome visualizzato posta elettronica",'
    '"Indirizzo posta elettronica"\r\n'
    '"Rossi S.p.A.","Mario","Rossi","Mario Rossi (mario@example.it)","mario@example.it"\r\n'
)
DUTCH_THUNDERBIRD = (
    "Voornaam,Achternaam,Weergavenaam,Bijnaam,Eerste e-mailadres,Tweede e-mailadres,\r\n"
    "Piet,Bakker,Piet B.,,piet@example.nl,,\r\n"
)
SPANISH_OUTLOOK = (
    "Nombre,Segundo nombre,Apellidos,Dirección de correo electrónico,"
    "Tipo de correo electrónico,Nombre para mostrar del correo electrónico\r\n"
    "Lucía,María,García,lucia@example.es,SMTP,Lucía García (lucia@example.es)\r\n"
)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            DUTCH_OUTLOOK,
            [
                ContactInput("jan@example.nl", "Jan Jansen", "line 2"),
                ContactInput("els@example.nl", "Els de Vries", "line 3, item 1"),
                ContactInput("els.devries@example.com", "Els de Vries", "line 3, item 2"),
            ],
        ),
        (ITALIAN_OUTLOOK, [ContactInput("mario@example.it", "Mario Rossi", "line 2")]),
        (DUTCH_THUNDERBIRD, [ContactInput("piet@example.nl", "Piet B.", "line 2")]),
        (SPANISH_OUTLOOK, [ContactInput("lucia@example.es", "Lucía María García", "line 2")]),
    ],
    ids=["outlook-nl", "outlook-it", "thunderbird-nl", "outlook-es"],
)
def test_localised_exports_give_their_addresses_with_the_persons_name(
    data: str, expected: list[ContactInput]
) -> None:
    """The address columns, not their type or display-name neighbours; the name from the
    first and last name columns (or the display name), never the company."""
    assert read(data.encode("utf-8")) == expected
    assert read(data.encode("utf-8"), "csv") == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            b"ivan@mail.ru\nolga@example.org\n",
            [
                ContactInput("ivan@mail.ru", "", "line 1"),
                ContactInput("olga@example.org", "", "line 2"),
            ],
        ),
        (
            b"Ivan Petrov,ivan@mail.ru\nOlga,olga@example.org",
            [
                ContactInput("ivan@mail.ru", "Ivan Petrov", "line 1"),
                ContactInput("olga@example.org", "Olga", "line 2"),
            ],
        ),
        (
            b"Ivan <ivan@email.example>;Olga <olga@example.org>\n",
            [
                ContactInput("ivan@email.example", "Ivan", "line 1, item 1"),
                ContactInput("olga@example.org", "Olga", "line 1, item 2"),
            ],
        ),
    ],
    ids=["addresses", "names-and-addresses", "wrapped"],
)
def test_a_first_line_holding_an_address_is_data_not_a_header(
    data: bytes, expected: list[ContactInput]
) -> None:
    """A list's first address may speak of mail ("mail.ru"); it is read, not taken as a
    header naming the columns of the lines after it."""
    assert read(data) == expected
    assert read(data, "csv") == expected


def test_readers_are_lazy_until_iterated() -> None:
    """read_vcards reads nothing until asked, so a caller may build it and never run it."""

    class Untouchable(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            raise AssertionError("read too early")

    read_vcards(Untouchable())  # type: ignore[arg-type]
