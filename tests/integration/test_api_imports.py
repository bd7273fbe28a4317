"""`POST /v1/members/{id}/imports`: JSON or a file upload; every record accounted for; a
file that is not an address book, a body too big (with or without a length) and a body of
another kind each refused with their own problem, and nothing stored."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from api_support import Api, add_member, problem, running_api
from sqlalchemy import update
from support import T0, count, rows

from courtois.services.context import Context
from courtois.services.locks import lock_recipients
from courtois.services.recipients import mark_joined, unsubscribe
from courtois.store.tables import contacts, recipients

GOOGLE_CSV = (
    "Name,Given Name,Family Name,E-mail 1 - Type,E-mail 1 - Value\r\n"
    "Bo Berg,Bo,Berg,* Home,bo@example.com\r\n"
    "Cy Chen,Cy,Chen,* Other,CY@Example.COM\r\n"
    "No Mail,No,Mail,,\r\n"
    "Cy Again,Cy,Again,Home,cy@example.com\r\n"
)
LIMIT = 4096
BOUNDARY = "courtois-test-boundary"


@pytest.fixture
def api(ctx: Context) -> Iterator[Api]:
    with running_api(ctx, import_max_bytes=LIMIT) as running:
        add_member(running)
        yield running


def upload(api: Api, content: bytes, **form: str) -> httpx.Response:
    files = {"file": ("book", content, "application/octet-stream")}
    return api.http.post("/v1/members/ana/imports", files=files, data=form)


def test_json_contacts_are_imported_unselected_with_every_record_accounted_for(
    api: Api,
) -> None:
    body = {
        "contacts": [
            {"email": "bo@example.com", "name": "Bo"},
            {"email": "BO@example.com", "name": "Bo again"},
            {"email": "not an address", "name": "?"},
            {"email": "ana@members.example", "name": "me"},
            {"email": "cy@example.com", "name": "Cy\r\nBcc: victim@evil.example"},
            {"email": "no-reply@shop.example", "name": "Shop"},
        ]
    }
    report = api.ok(api.post("/v1/members/ana/imports", body))
    assert (report["records"], report["imported"]) == (6, 2)
    assert (report["duplicates"], report["flagged"], report["rejected"]) == (1, 1, 2)
    assert report["rejected_records"][0]["where"] == "contacts[2]"
    assert report["rejected_records"][1] == {
        "where": "contacts[5]",
        "reason": "a role or no-reply mailbox, not a person",
    }
    assert report["flagged_records"] == [{"where": "contacts[3]", "reason": "your own address"}]
    assert report["duplicate_records"][0]["reason"] == "duplicate of contacts[0]"
    assert report["not_read"] == []  # nothing of the source left unread
    stored = {r.address: r for r in rows(api.ctx, contacts)}
    assert set(stored) == {"bo@example.com", "cy@example.com"}
    assert not any(r.selected for r in stored.values())
    # A name is data, never a header: its line break is gone, its text kept as text.
    assert stored["cy@example.com"].display_name == "Cy Bcc: victim@evil.example"


def test_a_csv_export_is_uploaded_and_read(api: Api) -> None:
    report = api.ok(upload(api, GOOGLE_CSV.encode(), format="csv"))
    assert (report["records"], report["imported"], report["duplicates"]) == (4, 2, 1)
    assert report["rejected_records"][0]["where"] == "line 4"
    assert count(api.ctx, contacts) == 2


@pytest.mark.parametrize(
    "content",
    [b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), b"", b"just some words\n"],
)
def test_a_file_that_is_not_an_address_book_is_refused_with_the_reason(
    api: Api, content: bytes
) -> None:
    body = problem(upload(api, content), 422, "unreadable-file")
    assert body["detail"]
    assert count(api.ctx, contacts) == 0


@pytest.mark.parametrize("file_format", ["vcard", "csv", "ldif"])
def test_a_file_holding_only_a_bom_is_unreadable_in_the_format_it_was_sent_as(
    api: Api, file_format: str
) -> None:
    body = problem(upload(api, b"\xef\xbb\xbf", format=file_format), 422, "unreadable-file")
    assert body["errors"] == {"format": file_format}
    assert count(api.ctx, contacts) == 0


@pytest.mark.parametrize("file_format", ["csv", None])
@pytest.mark.parametrize(
    ("content", "names"),
    [
        (b"ivan@mail.ru\nolga@example.org\n", ("", "")),
        (b"Ivan Petrov,ivan@mail.ru\nOlga,olga@example.org", ("Ivan Petrov", "Olga")),
    ],
    ids=["addresses", "names-and-addresses"],
)
def test_a_list_whose_first_address_speaks_of_mail_loses_nobody(
    api: Api, file_format: str | None, content: bytes, names: tuple[str, str]
) -> None:
    """ "ivan@mail.ru" on the first line is an address, not a header naming a column."""
    form = {"format": file_format} if file_format else {}
    report = api.ok(upload(api, content, **form))
    assert (report["records"], report["imported"]) == (2, 2)
    accounted = sum(report[k] for k in ("imported", "duplicates", "flagged", "rejected"))
    assert accounted == report["records"]
    stored = {r.address: r.display_name for r in rows(api.ctx, contacts)}
    assert stored == dict(zip(("ivan@mail.ru", "olga@example.org"), names, strict=True))


def test_a_wrong_format_field_or_a_missing_file_is_refused(api: Api) -> None:
    problem(upload(api, GOOGLE_CSV.encode(), format="xlsx"), 422, "invalid-upload")
    missing = api.http.post("/v1/members/ana/imports", data={"format": "csv"}, files={"x": b""})
    problem(missing, 422, "invalid-upload")
    assert count(api.ctx, contacts) == 0


def test_an_upload_declared_too_big_is_refused_before_it_is_read(api: Api) -> None:
    big = ("bo@example.com\r\n" * (LIMIT // 8)).encode()
    assert len(big) > LIMIT
    body = problem(upload(api, big), 413, "content-too-large")
    assert f"{LIMIT:,}" in body["detail"]
    assert count(api.ctx, contacts) == 0


def test_an_upload_of_unknown_length_is_cut_off_while_it_streams(api: Api) -> None:
    def endless() -> Iterator[bytes]:
        yield (
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=file; filename=a.csv\r\n"
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        line = b"someone@example.com\r\n" * 100
        for _ in range(200):  # about 420 KB, far past the limit and its framing allowance
            yield line
        yield f"\r\n--{BOUNDARY}--\r\n".encode()

    response = api.http.post(
        "/v1/members/ana/imports",
        content=endless(),
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert "content-length" not in response.request.headers
    assert f"{LIMIT:,} bytes" in problem(response, 413, "content-too-large")["detail"]
    assert count(api.ctx, contacts) == 0


def test_a_file_under_the_framing_allowance_but_over_the_limit_is_refused(api: Api) -> None:
    response = api.http.post(
        "/v1/members/ana/imports",
        content=iter([multipart(b"x@example.com\r\n" * 400)]),
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert f"{LIMIT:,} bytes" in problem(response, 413, "content-too-large")["detail"]


def test_a_json_body_too_big_is_refused(api: Api) -> None:
    many = {"contacts": [{"email": f"p{i}@example.com", "name": "P"} for i in range(200)]}
    refused = problem(api.post("/v1/members/ana/imports", many), 413, "content-too-large")
    assert f"{LIMIT:,} bytes" in refused["detail"]
    assert count(api.ctx, contacts) == 0


def test_other_media_types_and_bad_json_are_refused(api: Api) -> None:
    text = api.http.post(
        "/v1/members/ana/imports", content=b"bo@example.com", headers={"Content-Type": "text/csv"}
    )
    problem(text, 415, "unsupported-media-type")
    broken = api.http.post(
        "/v1/members/ana/imports",
        content=b'{"contacts": [',
        headers={"Content-Type": "application/json"},
    )
    problem(broken, 422, "invalid-request")
    extra = api.post("/v1/members/ana/imports", {"contacts": [], "selected": True})
    assert "selected" in problem(extra, 422, "invalid-request")["errors"]


def test_importing_for_an_unknown_member_is_a_404(api: Api) -> None:
    problem(
        api.post("/v1/members/nobody/imports", {"contacts": [{"email": "bo@example.com"}]}),
        404,
        "member-not-found",
    )
    response = api.http.post(
        "/v1/members/nobody/imports", files={"file": ("a.csv", GOOGLE_CSV.encode())}
    )
    problem(response, 404, "member-not-found")
    assert count(api.ctx, contacts) == 0


def multipart(content: bytes) -> bytes:
    """A multipart body with one file part."""
    return (
        (
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=file; filename=a.csv\r\n"
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


def test_an_import_tells_an_opt_out_and_a_bounce_alike_and_stores_neither(api: Api) -> None:
    """Opted out, suppressed after a bounce or a complaint: "unavailable", never why, and
    not stored again (a bounced address stored while an opted-out one was not told the two
    apart); a person who joined is "already a member", as an invitation would say."""
    ctx = api.ctx
    unsubscribe(ctx, ctx.digest_email("bo@example.com"), T0)
    mark_joined(ctx, ctx.digest_email("dee@example.com"), T0)
    with ctx.engine.begin() as connection:
        lock_recipients(connection, [ctx.digest_email("cy@example.com")])
        connection.execute(
            update(recipients)
            .where(recipients.c.digest == ctx.digest_email("cy@example.com"))
            .values(suppressed_at=T0, suppressed_reason="hard-bounce")
        )
    body = {
        "contacts": [
            {"email": "bo@example.com"},
            {"email": "cy@example.com"},
            {"email": "dee@example.com"},
            {"email": "eve@example.com"},
        ]
    }
    report = api.ok(api.post("/v1/members/ana/imports", body))
    assert report["flagged_records"] == [
        {"where": "contacts[0]", "reason": "unavailable"},
        {"where": "contacts[1]", "reason": "unavailable"},
        {"where": "contacts[2]", "reason": "already a member"},
    ]
    assert [r.address for r in rows(ctx, contacts)] == ["eve@example.com"]
