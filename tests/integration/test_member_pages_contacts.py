"""Member pages, choosing: the contact list, searched on the server by name or address and
paged; nobody ticked until the member ticks them; "select all on this page" choosing that
page only; ticking and unticking one by one; another member's contacts out of reach;
deleting every imported contact. Over real HTTP, on both engines."""

from __future__ import annotations

import re
import unicodedata

from member_pages_support import (
    MemberBrowser,
    add_member,
    contact_ids,
    import_some,
    member_session,
    shown_ids,
    signed_in,
)
from page_reading import DONE, ERROR, box_of, title_of
from support import T0

from courtois.domain.contacts import ContactInput
from courtois.services.contacts import import_contacts
from courtois.services.context import Context


def _choose(member: MemberBrowser, action: str, shown: list[int], **fields: object) -> None:
    response = member.post("/member/contacts", {"action": action, "shown": shown, **fields})
    assert response.status_code == 303, response.text
    assert "done=saved" in response.headers["location"]


def test_nobody_is_ticked_and_pages_hold_fifty(ctx: Context) -> None:
    add_member(ctx)
    import_some(ctx, "ana", 120)
    ids = contact_ids(ctx, "ana")
    with signed_in(ctx) as ana:
        first = ana.get("/member/contacts").text
        third = ana.get("/member/contacts?page=3").text
        past = ana.get("/member/contacts?page=99").text
    assert shown_ids(first) == ids[:50]
    assert shown_ids(third) == ids[100:]
    assert shown_ids(past) == ids[100:]  # past the end: the last page
    assert "Page 1 of 3" in first
    assert 'href="/member/contacts?page=2"' in first
    for page in (first, third):
        assert " checked" not in page
        # One box per contact shown, and the one that confirms deleting them all.
        assert page.count('type="checkbox"') == len(shown_ids(page)) + 1
        # "Select all" is a button the member presses, never a box ticked for them.
        assert '<button type="submit" name="action" value="select-page"' in page
    assert "120 imported contacts, 0 chosen" in first


def test_search_by_name_or_address_on_the_server(ctx: Context) -> None:
    add_member(ctx)
    records = [
        ContactInput(email="bo.berg@example.com", name="Bo Berg", where="1"),
        ContactInput(email="cy@example.org", name="Cyrille Bonnet", where="2"),
        ContactInput(email="dee@bonbon.example", name="Dee", where="3"),
        ContactInput(email="eve@example.com", name="Eve 100%_sure", where="4"),
    ]
    import_contacts(ctx, "ana", records, "test", T0)
    import_some(ctx, "ana", 60)
    with signed_in(ctx) as ana:

        def found(query: str) -> set[str]:
            page = ana.http.get("/member/contacts", params={"q": query}).text
            return set(re.findall(r"<td[^>]*>([^<@]+@[^<]+)</td>", page))

        assert found("BON") == {"cy@example.org", "dee@bonbon.example"}
        assert found("berg") == {"bo.berg@example.com"}
        assert found("100%_") == {"eve@example.com"}  # wildcards are taken literally
        assert found("%") == {"eve@example.com"}
        assert found("nobody-like-this") == set()
        assert len(found("person-0")) == 50  # 60 match: paged too
        second = ana.http.get("/member/contacts", params={"q": "person-0", "page": 2}).text
        assert "60 contacts match" in second
        assert len(shown_ids(second)) == 10
        assert (
            "No contact matches this search."
            in ana.http.get("/member/contacts", params={"q": "zzz"}).text
        )


def test_search_sets_case_and_accents_aside_in_any_script(ctx: Context) -> None:
    add_member(ctx)
    records = [
        ContactInput(email="elodie@example.fr", name="Élodie Dupré", where="1"),
        ContactInput(email="zoe@example.se", name="ZOË ÅNGSTRÖM", where="2"),
        # Decomposed, as some address books store it: "e" then a combining accent.
        ContactInput(
            email="rene@example.ca", name=unicodedata.normalize("NFD", "René Lévêque"), where="3"
        ),
        ContactInput(email="jurgen@example.de", name="Jürgen Straße", where="4"),
        ContactInput(email="olga@example.ru", name="Ольга Петрова", where="5"),
    ]
    import_contacts(ctx, "ana", records, "test", T0)
    with signed_in(ctx) as ana:

        def found(query: str) -> set[str]:
            page = ana.http.get("/member/contacts", params={"q": query}).text
            return set(re.findall(r"<td[^>]*>([^<@]+@[^<]+)</td>", page))

        for query in ("Élodie", "élodie", "ELODIE", "elodie", "dupre", "DUPRÉ"):
            assert found(query) == {"elodie@example.fr"}, query
        for query in ("ZOË", "zoë", "angstrom", "Ångström"):
            assert found(query) == {"zoe@example.se"}, query
        for query in ("René", "levêque", unicodedata.normalize("NFD", "Lévêque")):
            assert found(query) == {"rene@example.ca"}, query
        assert found("strasse") == {"jurgen@example.de"}
        assert found("ольга") == {"olga@example.ru"}
        assert found("ПЕТРОВА") == {"olga@example.ru"}
        assert found("fr elodie") == set()  # never across the address and the name


def test_select_all_on_a_page_chooses_that_page_only(ctx: Context) -> None:
    add_member(ctx)
    import_some(ctx, "ana", 120)
    ids = contact_ids(ctx, "ana")
    with signed_in(ctx) as ana:
        second = shown_ids(ana.get("/member/contacts?page=2").text)
        _choose(ana, "select-page", second, page="2")
        assert contact_ids(ctx, "ana", selected=True) == ids[50:100]
        page = ana.get("/member/contacts?page=2").text
        assert page.count(" checked") == 50
        assert " checked" not in ana.get("/member/contacts").text
        assert "120 imported contacts, 50 chosen" in page
        _choose(ana, "unselect-page", second, page="2")
    assert contact_ids(ctx, "ana", selected=True) == []


SAVED = "Your choice is saved."


def test_only_the_members_own_save_says_saved(ctx: Context) -> None:
    """A link cannot tell the member their choice was saved: only the save's redirect, in
    the session that saved, says so (and keeps the search and page)."""
    add_member(ctx)
    import_some(ctx, "ana", 60)
    with signed_in(ctx) as ana, member_session(ana.site) as other:
        for link in ("/member/contacts?done=saved", "/member/contacts?done=saved&seal=00"):
            forged = ana.get(link)
            assert forged.status_code == 200
            assert SAVED not in forged.text
            assert DONE not in forged.text
        second = shown_ids(ana.get("/member/contacts?page=2").text)
        answer = ana.post(
            "/member/contacts",
            {"action": "save", "shown": second, "chosen": second[:1], "page": "2"},
        )
        back = answer.headers["location"]
        assert back.startswith("/member/contacts?page=2&done=saved&seal=")
        shown = ana.get(back).text
        assert box_of(shown, SAVED) == DONE
        assert "Page 2 of 2" in shown
        elsewhere = other.get(back)
        assert elsewhere.status_code == 200
        assert SAVED not in elsewhere.text
        assert "Page 2 of 2" in elsewhere.text


def test_ticking_and_unticking_one_by_one(ctx: Context) -> None:
    add_member(ctx)
    add_member(ctx, "bruno")
    import_some(ctx, "ana", 5)
    import_some(ctx, "bruno", 2)
    ids = contact_ids(ctx, "ana")
    brunos = contact_ids(ctx, "bruno")
    with signed_in(ctx) as ana:
        _choose(ana, "save", ids, chosen=[ids[1], ids[3]])
        assert contact_ids(ctx, "ana", selected=True) == [ids[1], ids[3]]
        _choose(ana, "save", ids, chosen=[ids[3], ids[4]])
        assert contact_ids(ctx, "ana", selected=True) == [ids[3], ids[4]]
        # Ids of someone else's contacts, or of contacts not on the page, change nothing.
        _choose(ana, "save", [*ids[:3], *brunos], chosen=[ids[0], *brunos, ids[4]])
        assert contact_ids(ctx, "ana", selected=True) == [ids[0], ids[3], ids[4]]
    assert contact_ids(ctx, "bruno", selected=True) == []


def test_deleting_every_imported_contact(ctx: Context) -> None:
    add_member(ctx)
    add_member(ctx, "bruno")
    import_some(ctx, "ana", 7)
    import_some(ctx, "bruno", 2)
    with signed_in(ctx) as ana:
        page = ana.get("/member/contacts").text
        assert 'name="confirm" value="yes" required' in page
        assert "Yes, delete all my 7 imported contacts, chosen or not" in page
        response = ana.post("/member/contacts/delete", {"confirm": "yes"})
        assert response.status_code == 303
        dashboard = ana.get(response.headers["location"]).text
        assert "7 imported contacts deleted." in dashboard
        assert box_of(dashboard, "7 imported contacts deleted.") == DONE
        assert title_of(dashboard) == "My invitations – Agora"
        assert "You have no imported contacts." in ana.get("/member/contacts").text
    assert contact_ids(ctx, "ana") == []
    assert len(contact_ids(ctx, "bruno")) == 2


def test_deleting_the_address_book_needs_the_box_ticked(ctx: Context) -> None:
    """One click on the red button (a browser that ignores `required`, a form replayed
    without the box) deletes nothing and says why."""
    add_member(ctx)
    import_some(ctx, "ana", 4)
    with signed_in(ctx) as ana:
        for fields in ({}, {"confirm": ""}, {"confirm": "no"}, {"confirm": "on"}):
            response = ana.post("/member/contacts/delete", fields)
            assert response.status_code == 303
            dashboard = ana.get(response.headers["location"]).text
            assert "Nothing was deleted: tick the box" in dashboard
            assert box_of(dashboard, "Nothing was deleted") == ERROR
            assert title_of(dashboard) == "Error: My invitations – Agora"
            assert len(contact_ids(ctx, "ana")) == 4


def test_two_contacts_of_one_name_are_told_apart_by_their_address(ctx: Context) -> None:
    """A screen reader names each box by name and address, not by the name alone."""
    add_member(ctx)
    people = [
        ContactInput("dee@one.example", "Dee Okafor"),
        ContactInput("dee@two.example", "Dee Okafor"),
    ]
    import_contacts(ctx, "ana", people, "test", T0)
    with signed_in(ctx) as ana:
        page = ana.get("/member/contacts").text
    boxes = re.findall(r'<input type="checkbox" id="c(\d+)"', page)
    assert len(boxes) == 2
    for box_id in boxes:
        named_by = re.search(rf'id="c{box_id}"[^>]*aria-labelledby="([^"]+)"', page)
        assert named_by is not None
        assert named_by.group(1) == f"n{box_id} a{box_id}"
        assert re.search(rf'<td id="a{box_id}"[^>]*>dee@(one|two)\.example</td>', page)
