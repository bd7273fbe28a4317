"""Member pages, importing: a file upload (vCard here, any format the importers read) with its
report of counts and of each record left out, where it was and why; a file that is not an
address book, a file too big and an upload without a file, each refused with nothing
stored; addresses pasted one per line or separated by commas. Over real HTTP, both engines.
"""

from __future__ import annotations

import re

import pytest
from member_pages_support import MemberBrowser, add_member, contact_ids, signed_in
from page_reading import DONE, ERROR, box_of, title_of
from support import rows

from courtois.services import contacts as contacts_service
from courtois.services.context import Context
from courtois.store.tables import contacts

VCARDS = (
    b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Bo Berg\r\nEMAIL:bo@example.com\r\nEND:VCARD\r\n"
    b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:No Mail\r\nTEL:+33 1 23 45 67 89\r\nEND:VCARD\r\n"
    b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Cy Chen\r\nEMAIL:cy@example.com\r\nEND:VCARD\r\n"
    b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Bad\r\nEMAIL:bad@@example\r\nEND:VCARD\r\n"
    b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Me\r\nEMAIL:ana@members.example\r\nEND:VCARD\r\n"
)
LIMIT = 4096


def _upload(
    member: MemberBrowser, content: bytes, name: str = "book.vcf", file_format: str = ""
) -> str:
    response = member.http.post(
        "/member/import/file",
        data={"csrf": member.csrf(), "format": file_format},
        files={"file": (name, content, "text/vcard")},
    )
    return f"{response.status_code} {response.text}"


def _cells(html: str) -> list[tuple[str, str]]:
    """The (where, why) rows of the report's tables."""
    return re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td></tr>", html)


def test_an_uploaded_address_book_is_imported_unselected_with_its_report(ctx: Context) -> None:
    add_member(ctx)
    with signed_in(ctx, import_max_bytes=LIMIT) as ana:
        form = ana.get("/member/import").text
        assert 'enctype="multipart/form-data"' in form
        assert 'name="addresses"' in form  # the paste box sits beside the upload
        answer = _upload(ana, VCARDS)
    assert answer.startswith("200 ")
    assert "2 contacts imported." in answer
    counts = dict(re.findall(r"<tr><th>([^<]+)</th><td>(\d+)</td></tr>", answer))
    assert counts == {
        "Records read": "5",
        "Imported": "2",
        "Duplicates": "0",
        "Set aside": "1",
        "Rejected": "2",
    }
    cells = _cells(answer)
    assert ("card 2", "no address") in cells
    assert any(where == "card 4" and why.startswith("invalid address") for where, why in cells)
    assert ("card 5", "your own address") in cells
    stored = rows(ctx, contacts)
    assert sorted(r.address for r in stored) == ["bo@example.com", "cy@example.com"]
    assert not any(r.selected for r in stored)


def test_a_file_that_is_no_address_book_is_refused_and_nothing_is_stored(ctx: Context) -> None:
    add_member(ctx)
    with signed_in(ctx, import_max_bytes=LIMIT) as ana:
        unreadable = _upload(ana, b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "photo.png")
        too_big = _upload(ana, VCARDS * 20)
        no_file = ana.http.post("/member/import/file", data={"csrf": ana.csrf()}, files={})
        forged = ana.http.post(
            "/member/import/file",
            data={"csrf": "forged"},
            files={"file": ("book.vcf", VCARDS, "text/vcard")},
        )
    assert unreadable.startswith("422 ")
    assert "could not be read as an address book" in unreadable
    assert too_big.startswith("413 ")
    assert "bigger than 4 kB" in too_big
    assert no_file.status_code == 422
    assert forged.status_code == 403
    assert contact_ids(ctx, "ana") == []


def test_a_refusal_is_shown_as_an_error_and_a_report_as_done(ctx: Context) -> None:
    """Not the same green box for both: a refusal has its own box, is announced to screen
    readers (role=alert), and the tab's title says so."""
    add_member(ctx)
    with signed_in(ctx, import_max_bytes=LIMIT) as ana:
        refused = _upload(ana, b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "photo.png")
        empty = ana.post("/member/import/paste", {"addresses": " "}).text
        imported = _upload(ana, VCARDS)
    assert box_of(refused, "Nothing was imported") == ERROR
    assert box_of(empty, "Nothing was imported") == ERROR
    assert title_of(refused) == title_of(empty) == "Error: Import contacts – Agora"
    assert 'class="done"' not in refused
    assert box_of(imported, "2 contacts imported.") == DONE
    assert title_of(imported) == "Import contacts – Agora"
    assert 'role="alert"' not in imported


def test_a_file_with_too_many_records_says_so(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A readable address book past the contacts one import may hold is named as such, not
    as unreadable (the limit lowered here: the real one is a hundred thousand)."""
    monkeypatch.setattr(contacts_service, "MAX_CONTACTS_PER_IMPORT", 1)
    add_member(ctx)
    with signed_in(ctx) as ana:
        answer = _upload(ana, VCARDS)
    assert answer.startswith("413 ")
    assert "more addresses than one import may hold" in answer
    assert contact_ids(ctx, "ana") == []


def test_pasted_addresses_one_per_line_or_comma_separated(ctx: Context) -> None:
    add_member(ctx)
    pasted = (
        "bo@example.com, Cy Chen <cy@example.com>\r\n"
        "not an address\r\n"
        "\r\n"
        "dee@example.com; BO@example.com\r\n"
    )
    with signed_in(ctx) as ana:
        response = ana.post("/member/import/paste", {"addresses": pasted})
        empty = ana.post("/member/import/paste", {"addresses": "  \r\n "})
    assert response.status_code == 200
    assert "3 contacts imported." in response.text
    cells = _cells(response.text)
    assert any(where == "line 2" and why.startswith("invalid address") for where, why in cells)
    assert ("line 4, item 2", "duplicate of line 1, item 1") in cells
    stored = {r.address: r for r in rows(ctx, contacts)}
    assert set(stored) == {"bo@example.com", "cy@example.com", "dee@example.com"}
    assert stored["cy@example.com"].display_name == "Cy Chen"
    assert stored["cy@example.com"].source == "paste"
    assert not any(r.selected for r in stored.values())
    assert empty.status_code == 422
    assert "paste at least one address" in empty.text


def test_separators_alone_are_nothing_pasted(ctx: Context) -> None:
    """Commas and semicolons without an address between them are an empty box, said so."""
    add_member(ctx)
    with signed_in(ctx) as ana:
        response = ana.post("/member/import/paste", {"addresses": ",;,;\n;"})
    assert response.status_code == 422
    assert "paste at least one address" in response.text
    assert box_of(response.text, "Nothing was imported") == ERROR
    assert "0 contacts imported" not in response.text


def test_the_readers_reasons_are_in_the_members_language(ctx: Context) -> None:
    add_member(ctx, locale="fr")
    with signed_in(ctx) as ana:
        csv_report = _upload(ana, b'Name,Email\r\nBo,bo@example.com\r\n,"unterminated', "a.csv")
        card_report = _upload(ana, b"BEGIN:VCARD\r\nFN:Cy\r\nEMAIL;ENCODING=b:!!!\r\nEND:VCARD\r\n")
    assert _cells(csv_report) == [
        ("ligne 3", "enregistrement illisible\u00a0: un guillemet ouvert ici n'est jamais refermé")
    ]
    assert _cells(card_report) == [
        ("fiche 1", "fiche illisible\u00a0: une valeur n'est pas du base64 valide")
    ]


def test_the_report_speaks_the_members_language(ctx: Context) -> None:
    add_member(ctx, locale="fr")
    pasted = (
        "bo@example.com, Cy <cy@example.com>\r\nnot an address\r\ndee@example.com; BO@example.com"
        "\r\nnoreply@shop.example"
    )
    with signed_in(ctx) as ana:
        response = ana.post("/member/import/paste", {"addresses": pasted})
    assert response.status_code == 200
    cells = _cells(response.text)
    assert ("ligne 2", "adresse non valide") in cells
    assert ("ligne 3, élément 2", "doublon de ligne 1, élément 1") in cells
    assert ("ligne 4", "une boîte de service ou «\u202fno-reply\u202f», pas une personne") in cells
    assert not any("line" in where or "duplicate" in why for where, why in cells)


def test_pasted_names_may_hold_commas_as_mail_clients_copy_them(ctx: Context) -> None:
    add_member(ctx)
    pasted = (
        '"Doe, John" <john.doe@example.com>; "Smith, Ann" <ann.smith@example.com>, '
        '"O\\"Brien; Pat" <pat@example.com>'
    )
    with signed_in(ctx) as ana:
        response = ana.post("/member/import/paste", {"addresses": pasted})
    assert response.status_code == 200
    assert "3 contacts imported." in response.text
    names = {r.address: r.display_name for r in rows(ctx, contacts)}
    assert names == {
        "john.doe@example.com": "Doe, John",
        "ann.smith@example.com": "Smith, Ann",
        "pat@example.com": 'O"Brien; Pat',
    }


@pytest.mark.parametrize(
    ("locale", "empty", "not_csv"),
    [
        ("en", "The file is empty.", "not a CSV file but a vCard file: choose the vCard format"),
        (
            "fr",
            "Le fichier est vide.",
            "pas un fichier CSV mais un fichier vCard\u00a0: choisissez le format vCard",
        ),
    ],
)
def test_a_refused_file_is_refused_with_its_reason(
    ctx: Context, locale: str, empty: str, not_csv: str
) -> None:
    """As the API says why ("The file is empty."), so does the page, in its language."""
    add_member(ctx, locale=locale)
    with signed_in(ctx) as ana:
        nothing = _upload(ana, b"", "empty.csv")
        vcard_as_csv = _upload(ana, VCARDS, "book.csv", file_format="csv")
    assert nothing.startswith("422 ")
    assert empty in nothing
    assert vcard_as_csv.startswith("422 ")
    assert not_csv in vcard_as_csv
    assert contact_ids(ctx, "ana") == []


def test_each_address_of_a_card_has_its_own_place_in_the_report(ctx: Context) -> None:
    add_member(ctx)
    add_member(ctx, "lea", locale="fr")
    book = (
        b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Bo Berg\r\nEMAIL:bo@example.com\r\nEND:VCARD\r\n"
        b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Dee Okafor\r\nEMAIL;TYPE=work:dee@example.com\r\n"
        b"EMAIL;TYPE=home:dee@example.net\r\nEND:VCARD\r\n"
    )
    ldif = (
        b"dn: cn=Dee Okafor\r\ncn: Dee Okafor\r\nmail: dee@example.com\r\n"
        b"mozillaSecondEmail: dee@example.net\r\n\r\n"
    )
    with signed_in(ctx) as ana:
        _upload(ana, book)
        again = _upload(ana, book)
        entries = ana.http.post(
            "/member/import/file",
            data={"csrf": ana.csrf(), "format": ""},
            files={"file": ("book.ldif", ldif, "text/plain")},
        ).text
    with signed_in(ctx, "lea") as lea:
        _upload(lea, book)
        french = _upload(lea, book)
    assert _cells(again) == [
        ("card 1", "already in your contacts"),
        ("card 2, item 1", "already in your contacts"),
        ("card 2, item 2", "already in your contacts"),
    ]
    assert _cells(entries) == [
        ("entry 1, item 1", "already in your contacts"),
        ("entry 1, item 2", "already in your contacts"),
    ]
    assert _cells(french) == [
        ("fiche 1", "déjà dans vos contacts"),
        ("fiche 2, élément 1", "déjà dans vos contacts"),
        ("fiche 2, élément 2", "déjà dans vos contacts"),
    ]
