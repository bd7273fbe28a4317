"""`/v1/members/{id}/contacts`: pages by cursor, bounded limits, picking and deleting."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
from api_support import Api, add_member, problem, running_api
from support import count

from courtois.services.context import Context
from courtois.store.tables import contacts


@pytest.fixture
def api(ctx: Context) -> Iterator[Api]:
    with running_api(ctx) as running:
        add_member(running)
        book = [{"email": f"p{i}@example.com", "name": f"P{i}"} for i in range(7)]
        running.ok(running.post("/v1/members/ana/imports", {"contacts": book}))
        yield running


def walk(api: Api, path: str, limit: int) -> list[list[str]]:
    """Every page, following next_cursor to the end."""
    pages, cursor = [], None
    while True:
        params: dict[str, str | int] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        page = api.ok(api.get(path, params=params))
        pages.append([item["email"] for item in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages


def test_pages_cover_every_contact_once_in_import_order(api: Api) -> None:
    pages = walk(api, "/v1/members/ana/contacts", 3)
    assert [len(page) for page in pages] == [3, 3, 1]
    assert [email for page in pages for email in page] == [f"p{i}@example.com" for i in range(7)]
    exact = walk(api, "/v1/members/ana/contacts", 7)
    assert exact == [[f"p{i}@example.com" for i in range(7)]]


def test_a_page_stays_right_when_contacts_arrive_meanwhile(api: Api) -> None:
    first = api.ok(api.get("/v1/members/ana/contacts", params={"limit": 4}))
    api.ok(api.post("/v1/members/ana/imports", {"contacts": [{"email": "late@example.com"}]}))
    rest = api.ok(
        api.get("/v1/members/ana/contacts", params={"limit": 50, "cursor": first["next_cursor"]})
    )
    emails = [c["email"] for c in first["items"] + rest["items"]]
    assert emails == [*(f"p{i}@example.com" for i in range(7)), "late@example.com"]
    assert rest["next_cursor"] is None


@pytest.mark.parametrize("limit", [0, -1, 501, "many"])
def test_a_limit_out_of_bounds_is_refused(api: Api, limit: object) -> None:
    body = problem(
        api.get("/v1/members/ana/contacts", params={"limit": limit}), 422, "invalid-request"
    )
    assert "query.limit" in body["errors"]


@pytest.mark.parametrize(
    "cursor", ["bm90LWpzb24", "WyJ4Il0", "WzEsMl0", "e30", "xyz", "", "a b", "W1s=", "x" * 401]
)
def test_a_cursor_this_api_did_not_give_out_is_refused(api: Api, cursor: str) -> None:
    problem(api.get("/v1/members/ana/contacts", params={"cursor": cursor}), 422, "invalid-cursor")


def _cursor(position: list[object]) -> str:
    raw = json.dumps(position, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize("row_id", [2**31, 2**32, 2**63 - 1])
def test_a_cursor_past_what_a_contact_id_can_be_is_refused_on_both_engines(
    api: Api, row_id: int
) -> None:
    """`contacts.id` is a 4-byte integer on PostgreSQL, which refused to compare one past
    it (a 500); no such id was ever given out, so it is the one cursor problem."""
    cursor = _cursor([row_id])
    problem(api.get("/v1/members/ana/contacts", params={"cursor": cursor}), 422, "invalid-cursor")


def test_the_largest_contact_id_is_a_cursor_past_every_contact(api: Api) -> None:
    page = api.get("/v1/members/ana/contacts", params={"cursor": _cursor([2**31 - 1])})
    assert api.ok(page) == {"items": [], "next_cursor": None}


def test_picked_contacts_are_marked_and_deleting_takes_everything(api: Api) -> None:
    picked = api.post(
        "/v1/members/ana/contacts/selection",
        {"emails": ["p1@example.com", "P2@example.com", "stranger@example.com"]},
    )
    assert api.ok(picked) == {"changed": 2}
    items = api.ok(api.get("/v1/members/ana/contacts"))["items"]
    assert [c["email"] for c in items if c["selected"]] == ["p1@example.com", "p2@example.com"]
    bad = problem(
        api.post("/v1/members/ana/contacts/selection", {"emails": ["ok@example.com", "nope"]}),
        422,
        "invalid-address",
    )
    assert list(bad["errors"]) == ["emails[1]"]
    assert api.ok(api.http.delete("/v1/members/ana/contacts")) == {"deleted": 7}
    assert count(api.ctx, contacts) == 0
    assert api.ok(api.get("/v1/members/ana/contacts")) == {"items": [], "next_cursor": None}
    problem(api.http.delete("/v1/members/nobody/contacts"), 404, "member-not-found")
