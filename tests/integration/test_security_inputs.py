"""Hostile input through every filter, id and free-text field, over real HTTP on SQLite and
PostgreSQL: SQL injection, forged cursors, NUL and oversized values, header injection into
the composed email, and bodies past their limits. Every answer is a page or an RFC 9457
problem with a 4xx status, never a 500, never a row of another member, and the database
(every table's row count and the ledger's head) is the same afterwards.

Proved elsewhere, not repeated here:
- a member name with CR/LF, LF, U+2028 or a tab is refused through the API and nothing is
  stored: test_api_members.test_a_name_that_would_inject_a_header_is_refused_...;
- an API import over `import_max_bytes`, declared, streamed without a length, or as JSON,
  is refused with 413: test_api_imports (test_an_upload_declared_too_big_..., test_an_upload
  _of_unknown_length_is_cut_off_..., test_a_json_body_too_big_is_refused);
- a member page upload over the limit is refused with 413 and nothing is stored:
  test_member_pages_import.test_a_file_that_is_no_address_book_is_refused_...;
- a limit out of bounds and a cursor that is not base64 JSON: test_api_contacts.
"""

from __future__ import annotations

import base64
import email
import email.policy
import json
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from member_pages_support import member_session, shown_ids
from security_support import (
    Site,
    World,
    admin_session,
    assert_problem,
    make_world,
    served,
    snapshot,
)
from smtp_server import FaultyHandler, smtp_server

from conftest import T0
from courtois.delivery.smtp import SmtpTransport, parse_smtp_url
from courtois.services.context import Context
from courtois.services.worker import run_pass
from courtois.store.tables import contacts, members
from courtois.web.body_limit import MAX_JSON_BODY

# What an attacker types into a filter, an id or a search box.
PAYLOADS = (
    "' OR 1=1 --",
    "' OR '1'='1",
    "%",
    "_",
    "\\",
    '"; DROP TABLE contacts; --',
    "1; DELETE FROM invitations",
    "ana' UNION SELECT * FROM members --",
    "\x00",
    "a\x00b",
    "²",
    "x" * 5000,
)
IMPORT_LIMIT = 4096
ISO = (T0 + timedelta(days=1)).isoformat()


def cursor(position: Any) -> str:
    """A cursor as this API encodes one, around any JSON at all: what a forger makes."""
    raw = json.dumps(position).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.fixture
def world(ctx: Context) -> World:
    return make_world(ctx)


@pytest.fixture
def site(ctx: Context, world: World) -> Iterator[Site]:
    with served(ctx, import_max_bytes=IMPORT_LIMIT) as running:
        yield running


def _refused_or_ana_only(response: httpx.Response, ana_ids: set[Any]) -> None:
    """A 4xx problem, or a page of Ana's own rows only."""
    assert response.status_code != 500, response.text
    if response.status_code == 200:
        items = response.json()["items"]
        assert {item["id"] for item in items} <= ana_ids, "rows of another member"
    else:
        assert_problem(response, response.status_code)
        assert 400 <= response.status_code < 500


def _api_list_filters_and_cursors(site: Site, world: World) -> None:
    """Every query parameter of the /v1 lists, and forged cursors of every shape."""
    before = snapshot(site.ctx)
    ana_contacts = set(world.contacts["ana"])
    ana_invitations = set(world.invitations["ana"])
    forged = [
        [10**30],
        [-1],
        [2**31],
        [2**63],
        [True],
        [1.5],
        ["1"],
        [None],
        {"id": 1},
        "' OR 1=1 --",
        [[1]],
        [ISO, "' OR 1=1 --"],
        [ISO, "a\x00b"],
        [ISO, "\x00"],
        ["' OR 1=1 --", "x"],
        ["2026-03-03T09:00:00", "x"],  # no time zone
        ["9999-12-31T23:59:59+14:00", "%"],
        # Instants that exist in their offset but not in UTC, where they are stored.
        ["9999-12-31T23:59:59-14:00", "z"],
        ["0001-01-01T00:00:00+14:00", "z"],
        [ISO, "x" * 400],
        [ISO, 1],
    ]
    requests: list[tuple[str, dict[str, str]]] = []
    for position in forged:
        requests.append(("/v1/members/ana/contacts", {"cursor": cursor(position)}))
        requests.append(("/v1/members/ana/invitations", {"cursor": cursor(position)}))
    for payload in PAYLOADS:
        for path in ("/v1/members/ana/contacts", "/v1/members/ana/invitations"):
            requests.append((path, {"cursor": payload}))
            requests.append((path, {"limit": payload}))
        requests.append(("/v1/members/ana/invitations", {"status": payload}))
        requests.append(("/v1/members/ana/invitations", {"status": "sent", "cursor": payload}))
    for path, params in requests:
        response = site.api.get(path, params=params)
        ids = ana_contacts if "contacts" in path else ana_invitations
        _refused_or_ana_only(response, ids)
        if "cursor" in params and response.status_code != 200:
            # A bad cursor alone is always the one problem; beside a bad filter, either.
            types = {"/problems/invalid-cursor"}
            if set(params) != {"cursor"}:
                types.add("/problems/invalid-request")
            assert response.json()["type"] in types, (params, response.text)
    # The cursors that parse to a position give Ana's rows at most: never a second copy,
    # never more than she has.
    whole = site.api.get(
        "/v1/members/ana/invitations", params={"cursor": cursor(["9999-12-31T23:59:59+14:00", "%"])}
    )
    assert sorted(item["id"] for item in whole.json()["items"]) == sorted(ana_invitations)
    assert snapshot(site.ctx) == before


def _api_ids_in_paths(site: Site, world: World) -> None:
    """Member, invitation and consent ids in URLs: a 404 or a 422 problem, nothing read of
    another member, nothing changed by the POSTs."""
    before = snapshot(site.ctx)
    for payload in (*PAYLOADS, world.invitations["bruno"][0] + "' OR 1=1 --"):
        encoded = quote(payload, safe="")
        for method, path in (
            ("GET", f"/v1/members/{encoded}"),
            ("GET", f"/v1/members/{encoded}/contacts"),
            ("GET", f"/v1/members/{encoded}/invitations"),
            ("GET", f"/v1/members/{encoded}/export"),
            ("GET", f"/v1/invitations/{encoded}"),
            ("GET", f"/v1/consents/{encoded}"),
            ("POST", f"/v1/invitations/{encoded}/withdraw"),
            ("POST", f"/v1/consents/{encoded}/revoke"),
            ("DELETE", f"/v1/members/{encoded}/contacts"),
            ("POST", f"/v1/members/{encoded}/login-link"),
        ):
            response = site.api.request(method, path)
            assert response.status_code in (404, 422), (method, path, response.text)
            assert_problem(response, response.status_code)
            assert "bruno" not in response.text.lower()
    assert snapshot(site.ctx) == before


def _api_bodies_with_nul_and_control_characters(site: Site, world: World) -> None:
    """Free-text fields of JSON bodies that reach a query or a row: refused with a 4xx
    problem, or cleaned where the design says so (contact names), never a 500."""
    before = snapshot(site.ctx)
    bad = "x\x00\r\nBcc: victim@evil.example"
    attempts: list[tuple[str, dict[str, Any]]] = [
        (
            "/v1/members",
            {"id": "zed", "email": "zed@members.example", "name": "Zed", "locale": bad},
        ),
        ("/v1/members", {"id": "zed", "email": f"zed{bad}@members.example", "name": "Zed"}),
        ("/v1/members", {"id": bad, "email": "zed@members.example", "name": "Zed"}),
        ("/v1/members/ana/invitations/preview", {"emails": ["q@example.org"], "note": "a\x00b"}),
        ("/v1/members/ana/invitations/preview", {"emails": ["q@example.org"], "note": "a\u2028b"}),
        ("/v1/members/ana/invitations/preview", {"emails": ["q@example.org"], "note": "a\x1b[2Jb"}),
        ("/v1/members/ana/invitations/preview", {"emails": ["q@example.org"], "locale": bad}),
        ("/v1/members/ana/invitations/preview", {"emails": [bad]}),
        ("/v1/members/ana/contacts/selection", {"emails": [f"a1@example.com{bad}"]}),
        ("/v1/members/ana/explain", {"email": bad}),
        ("/v1/joined", {"email": bad}),
        ("/v1/recipients/unsubscribe", {"email": "a1@example.com", "from_member": bad}),
        ("/v1/recipients/forget", {"email": f"\x00{bad}"}),
    ]
    for path, body in attempts:
        response = site.api.post(path, json=body)
        assert 400 <= response.status_code < 500, (path, response.text)
        assert_problem(response, response.status_code)
        assert "victim" not in response.text
    assert snapshot(site.ctx) == before


def _api_consent_metadata_with_nul_or_line_breaks(site: Site, world: World) -> None:
    """The consent's ip and user agent are stored as evidence: a NUL or a line break in them
    is refused (422) and nothing is recorded."""
    shown = site.api.post(
        "/v1/members/ana/invitations/preview", json={"emails": ["new@example.org"]}
    ).json()
    before = snapshot(site.ctx)
    for field in ("ip", "user_agent", "text_shown"):
        for value in ("\x00", "x\r\nBcc: victim@evil.example", "a\u2028b"):
            consent = {"text_shown": shown["consent_text"], "ip": "192.0.2.1", "user_agent": "t"}
            consent[field] = value if field != "text_shown" else shown["consent_text"] + value
            response = site.api.post(
                "/v1/members/ana/invitations",
                json={
                    "emails": ["new@example.org"],
                    "preview_hash": shown["preview_hash"],
                    "consent": consent,
                },
            )
            assert response.status_code in (409, 422), (field, value, response.text)
            assert_problem(response, response.status_code)
            assert snapshot(site.ctx) == before


def test_member_search_paging_and_ids(site: Site, world: World) -> None:
    """The member's contact search, its page number, the dashboard's cursors, and ids in
    the dashboard's and contact list's forms."""
    ana = set(world.contacts["ana"])
    with member_session(site.live, "ana") as browser:
        before = snapshot(site.ctx)  # signed in: the link's use is recorded, then nothing
        token = browser.csrf()
        for payload in PAYLOADS:
            found = browser.get("/member/contacts", params={"q": payload})
            assert found.status_code == 200, (payload, found.text[:300])
            # No payload is in any of Ana's contacts: a wildcard or an injected OR that
            # matched would list some. A NUL matches nothing, so NULs alone search nothing.
            expected = sorted(ana) if not payload.replace("\x00", "").strip() else []
            assert shown_ids(found.text) == expected, payload
            for params in ({"page": payload}, {"q": "person", "page": payload}):
                paged = browser.get("/member/contacts", params=params)
                assert paged.status_code == 200, (params, paged.text[:300])
                assert set(shown_ids(paged.text)) <= ana
            positioned = f"{T0.isoformat()}~{payload}"
            for first, second in ((payload, positioned), (positioned, payload)):
                params = {"before": first, "consents_before": second, "count": first}
                page = browser.get("/member/", params={**params, "done": payload})
                assert page.status_code == 200, params
                for theirs in world.invitations["bruno"]:
                    assert theirs not in page.text
            for path in (
                f"/member/invitations/{quote(payload, safe='')}/withdraw",
                f"/member/consents/{quote(payload, safe='')}/revoke",
            ):
                answer = browser.post(path, token=token)
                assert answer.status_code == 303, (path, answer.text[:300])
                assert answer.headers["location"].startswith("/member/?done=missing&seal=")
            chosen = browser.post(
                "/member/contacts",
                {"shown": [payload, *map(str, world.contacts["bruno"])], "chosen": payload},
                token=token,
            )
            assert chosen.status_code == 303
        # Whole numbers past any row id, and Bruno's contacts, change nothing either.
        for number in ("99999999999999999", str(2**31), "-1", "0", "1e3", "١٢"):
            chosen = browser.post(
                "/member/contacts", {"shown": number, "chosen": number}, token=token
            )
            assert chosen.status_code == 303
        search = browser.get("/member/contacts", params={"q": "friend"})
        assert shown_ids(search.text) == []  # Bruno's contacts are named "Friend n"
    assert snapshot(site.ctx) == before


def test_admin_lookup_ranges_and_resolutions(site: Site, world: World) -> None:
    """The admin's recipient lookup, the activity range and the unknown-email form."""
    before = snapshot(site.ctx)
    with admin_session(site) as (http, csrf):
        for payload in PAYLOADS:
            lookup = http.post("/admin/lookup", data={"csrf": csrf, "address": payload})
            assert lookup.status_code == 400, (payload, lookup.text[:300])
            assert "That is not an email address" in lookup.text
            for params in ({"from": payload}, {"from": "2026-03-01", "to": payload}):
                chart = http.get("/admin", params=params)
                assert chart.status_code == 400, (params, chart.text[:300])
            for fields in (
                {"one": f"sent:{payload}"},
                {"outcome": "failed", "message": payload},
                {"outcome": payload, "message": "x"},
            ):
                resolved = http.post("/admin/unknown", data={"csrf": csrf, **fields})
                assert resolved.status_code == 400, (fields, resolved.text[:300])
        # An address with a wildcard that would match others if it reached a LIKE.
        wildcard = http.post("/admin/lookup", data={"csrf": csrf, "address": "a%@example.com"})
        assert "Nothing is stored under this fingerprint" in wildcard.text
    assert snapshot(site.ctx) == before


def _header_block(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[0]


def test_injected_headers_never_reach_the_email(ctx: Context) -> None:
    """A member name full of address syntax and encoded words (refused now, as it shows an
    address, but stored before that was so), contact names and a note with CR/LF and a Bcc
    line: the email a real SMTP server receives has exactly its own headers, one
    recipient, and the platform's From."""
    handler = FaultyHandler()
    name = 'Ana "=?utf-8?q?Bcc=3A_x?=" <boss@victim.example>, Bcc: x@evil.example'
    with served(ctx, mail_from="invites@agora.test") as site:
        member = {"id": "ana", "email": "ana@members.example", "name": "Ana", "reply_to": True}
        assert site.api.post("/v1/members", json=member).status_code == 200
        for bad_name in (name, "Ana\r\nBcc: x@evil.example", "Ana\x00", "Ana\u2028Bcc: x"):
            refused = site.api.post("/v1/members", json={**member, "name": bad_name})
            assert_problem(refused, 422)
        with ctx.engine.begin() as connection:
            connection.execute(members.update().where(members.c.id == "ana").values(name=name))
        imported = site.api.post(
            "/v1/members/ana/imports",
            json={
                "contacts": [
                    {"email": "bo@example.org", "name": "Bo\r\nBcc: x@evil.example"},
                    {"email": "cy@example.org", "name": "Cy\x00\u2028X-Injected: 1"},
                ]
            },
        )
        assert imported.status_code == 200, imported.text
        with ctx.engine.connect() as connection:
            names = set(connection.execute(contacts.select()).mappings().all())
        stored = {row["display_name"] for row in names}
        assert all(not any(c in n for c in "\r\n\x00\u2028") for n in stored), stored
        note = "Hello\r\nBcc: victim@evil.example\r\nX-Injected: 1\n\nSee you"
        options = {"emails": ["bo@example.org"], "note": note}
        shown = site.api.post("/v1/members/ana/invitations/preview", json=options).json()
        invited = site.api.post(
            "/v1/members/ana/invitations",
            json={
                **options,
                "preview_hash": shown["preview_hash"],
                "consent": {"text_shown": shown["consent_text"]},
            },
        )
        assert invited.status_code == 201, invited.text
        served_ctx = site.ctx  # the settings the preview was made under
    with smtp_server(handler) as url:
        report = run_pass(
            served_ctx, T0 + timedelta(minutes=11), SmtpTransport(parse_smtp_url(url))
        )
    assert report.sent == 1
    ((recipients, raw),) = handler.received
    assert recipients == ["bo@example.org"]
    header_lines = _header_block(raw).split(b"\r\n")
    names_seen = [line.split(b":", 1)[0].lower() for line in header_lines if not line[:1].isspace()]
    assert b"bcc" not in names_seen
    assert b"x-injected" not in names_seen
    assert len(names_seen) == len(set(names_seen)) or names_seen.count(b"received") > 1
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    (sender,) = parsed["From"].addresses
    assert sender.addr_spec == "invites@agora.test"
    (to,) = parsed["To"].addresses
    assert to.addr_spec == "bo@example.org"
    (reply,) = parsed["Reply-To"].addresses
    assert reply.addr_spec == "ana@members.example"
    for header, value in parsed.items():
        assert not {"\r", "\n"} & set(str(value)), header
        # The name is shown as written in From, Reply-To and Subject, never as an address.
        shown_as_name = header in ("From", "Reply-To", "Subject")
        assert shown_as_name or "evil.example" not in str(value), header
    # The note's lines are in the body, as text.
    body = parsed.get_body(("plain",))
    assert body is not None
    assert "Bcc: victim@evil.example" in body.get_content()


def test_member_pages_free_text_with_control_characters(site: Site, world: World) -> None:
    """The invite form's note and language, and pasted contacts: a note with a NUL, an
    escape or a line separator is refused (the compose page, 422); pasted names are
    cleaned."""
    before = snapshot(site.ctx)
    with member_session(site.live, "ana") as browser:
        browser.post(
            "/member/contacts",
            {"shown": str(world.contacts["ana"][0]), "chosen": str(world.contacts["ana"][0])},
        )
        chosen = snapshot(site.ctx)
        for note in ("a\x00b", "a\x1bb", "a\u2028b", "a\u2029b"):
            answer = browser.post("/member/invite/preview", {"note": note})
            assert answer.status_code == 422, (note, answer.text[:300])
        for locale in ("en\r\nBcc: x", "\x00", "' OR 1=1 --"):
            answer = browser.post("/member/invite/preview", {"locale": locale})
            assert answer.status_code == 200, locale  # an unknown language: the member's own
        assert snapshot(site.ctx) == chosen
        pasted = browser.post(
            "/member/import/paste",
            {"addresses": "Evil\x00 Name <np@example.org>\nBcc\u2028Name <nq@example.org>"},
        )
        assert pasted.status_code == 200
    with site.ctx.engine.connect() as connection:
        names = connection.execute(
            contacts.select().where(contacts.c.address.in_(["np@example.org", "nq@example.org"]))
        ).all()
    assert len(names) == 2
    assert all(n.display_name.isprintable() for n in names)
    assert snapshot(site.ctx).rows["contacts"] == before.rows["contacts"] + 2


def _chunks(size: int) -> Iterator[bytes]:
    """A JSON body of `size` bytes, sent without a length (chunked)."""
    yield b'{"id": "zed", "email": "zed@members.example", "name": "'
    sent = 60
    while sent < size:
        yield b"x" * 65536
        sent += 65536
    yield b'"}'


def test_a_lone_surrogate_is_refused_as_text_and_changes_nothing(site: Site, world: World) -> None:
    """JSON may spell half of a UTF-16 pair on its own (`"\\ud800"`); no encoding writes
    it. In a name, note or locale it reached the database driver, the preview's hash or the
    error's own JSON and answered 500; it is a 422 naming the field, and nothing changes."""
    shown = site.api.post(
        "/v1/members/ana/invitations/preview", json={"emails": ["new@example.org"]}
    ).json()
    consent = {"text_shown": shown["consent_text"], "ip": "192.0.2.1", "user_agent": "t"}
    invite = {"emails": ["new@example.org"], "preview_hash": shown["preview_hash"]}
    before = snapshot(site.ctx)
    zed = {"id": "zed", "email": "zed@members.example", "name": "Zed"}
    attempts: list[tuple[str, dict[str, Any], str]] = [
        ("/v1/members", {**zed, "name": "Z\ud800"}, "name"),
        ("/v1/members", {**zed, "locale": "e\ud800"}, "locale"),
        ("/v1/members", {**zed, "id": "ana", "name": "Ana \udfff"}, "name"),  # an update
        (
            "/v1/members/ana/invitations/preview",
            {"emails": ["q@example.org"], "note": "hi \ud800"},
            "note",
        ),
        (
            "/v1/members/ana/invitations/preview",
            {"emails": ["q@example.org"], "locale": "e\ud800"},
            "locale",
        ),
        ("/v1/members/ana/invitations", {**invite, "consent": consent, "note": "\udc80"}, "note"),
    ]
    for number, (path, body, field) in enumerate(attempts):
        for key in (None, f"surrogate-{number}"):
            headers = {"Content-Type": "application/json"}
            if key:
                headers["Idempotency-Key"] = key
            # As JSON escapes it (httpx would write the character, which cannot be done).
            response = site.api.post(path, content=json.dumps(body), headers=headers)
            refused = assert_problem(response, 422)
            assert refused["type"] == "/problems/invalid-input", (path, body, refused)
            assert list(refused["errors"]) == [field], (path, refused)
    after = snapshot(site.ctx)
    # Each refusal under a key is kept, for a repeat to get it again; nothing else changed.
    kept = after.rows.pop("idempotency_keys") - before.rows.pop("idempotency_keys")
    assert kept == len(attempts)
    assert after == before


def test_an_opt_in_is_a_json_true_or_one_never_a_lookalike(site: Site, world: World) -> None:
    """`reminders` and `reply_to` were read loosely (`true`, `"1"`, `1.0`, `"yes"`, `"on"`
    became a reminder or a reply-to): an opt-in is exactly what the schema says. And an
    import of no contacts is refused as an empty file is, with no ledger entry."""
    before = snapshot(site.ctx)
    zed = {"id": "zed", "email": "zed@members.example", "name": "Zed"}
    emails = {"emails": ["q@example.org"]}
    attempts: list[tuple[str, dict[str, Any], str]] = [
        *[
            ("/v1/members/ana/invitations/preview", {**emails, "reminders": v}, "reminders")
            for v in (True, "1", 1.0)
        ],
        *[
            ("/v1/members/ana/explain", {"email": "q@example.org", "reminders": v}, "reminders")
            for v in (True, "1")
        ],
        *[("/v1/members", {**zed, "reply_to": v}, "reply_to") for v in ("yes", "on", "1", 1)],
        *[
            ("/v1/members/ana/contacts/selection", {**emails, "selected": v}, "selected")
            for v in ("no", 0)
        ],
        ("/v1/members/ana/imports", {"contacts": []}, "contacts"),
    ]
    for path, body, field in attempts:
        refused = assert_problem(site.api.post(path, json=body), 422)
        assert refused["type"] == "/problems/invalid-request", (path, body, refused)
        assert list(refused["errors"]) == [field], (path, body, refused)
    assert snapshot(site.ctx) == before
    taken = site.api.post("/v1/members/ana/invitations/preview", json={**emails, "reminders": 1})
    assert taken.status_code == 200, taken.text


def test_a_dashboard_cursor_of_no_instant_in_utc_shows_the_first_page(
    site: Site, world: World
) -> None:
    """A time at an offset that puts it past year 9999 or before year 1 in UTC was read as
    a cursor and failed as the query bound it (500): it is a link this page never gave."""
    with member_session(site.live, "ana") as browser:
        first = browser.get("/member/")
        assert first.status_code == 200
        for cursor in ("9999-12-31T23:59:59-23:59~x", "0001-01-01T00:00:00+23:59~x"):
            for name in ("before", "consents_before"):
                page = browser.get("/member/", params={name: cursor})
                assert page.status_code == 200, (name, cursor, page.text[:300])
                assert page.text.count("/withdraw") == first.text.count("/withdraw")


def _oversized_json_bodies(site: Site) -> None:
    """Past the API's body ceiling, declared or streamed: a 413 problem, the route never
    runs, nothing changes. A body just under it is read and judged on its content."""
    before = snapshot(site.ctx)
    big = b'{"id": "zed", "email": "zed@members.example", "name": "' + b"x" * MAX_JSON_BODY + b'"}'
    for path in (
        "/v1/members",
        "/v1/members/ana/invitations/preview",
        "/v1/members/ana/invitations",
        "/v1/members/ana/contacts/selection",
        "/v1/joined",
    ):
        declared = site.api.post(path, content=big, headers={"Content-Type": "application/json"})
        body = assert_problem(declared, 413)
        assert body["type"] == "/problems/content-too-large"
        streamed = site.api.post(
            path, content=_chunks(MAX_JSON_BODY + 1), headers={"Content-Type": "application/json"}
        )
        assert "content-length" not in streamed.request.headers
        assert_problem(streamed, 413)
    # Under the ceiling the body is read: a name too long is a 422 about the name.
    under = b'{"id": "zed", "email": "zed@members.example", "name": "' + b"x" * 1_000_000 + b'"}'
    answer = site.api.post(
        "/v1/members", content=under, headers={"Content-Type": "application/json"}
    )
    assert assert_problem(answer, 422)["errors"].keys() == {"name"}
    # A body that is not JSON is named as such, whatever it holds.
    member = b'{"id": "zed", "email": "zed@members.example", "name": "Zed"}'
    for media in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        wrong = site.api.post("/v1/members", content=member, headers={"Content-Type": media})
        assert assert_problem(wrong, 415)["type"] == "/problems/unsupported-media-type"
    assert snapshot(site.ctx) == before
    with site.ctx.engine.connect() as connection:
        assert connection.execute(members.select().where(members.c.id == "zed")).first() is None
    # JSON by another name is JSON.
    fine = site.api.post(
        "/v1/members", content=member, headers={"Content-Type": "application/merge-patch+json"}
    )
    assert fine.status_code in (200, 201), fine.text


def _oversized_member_forms(site: Site) -> None:
    """The member pages' forms past their bound, and an upload past `import_max_bytes`
    sent without a length: 413, nothing stored."""
    ctx = site.ctx
    with member_session(site.live, "ana") as browser:
        before = snapshot(ctx)
        token = browser.csrf()
        pasted = browser.http.post(
            "/member/import/paste",
            content=f"csrf={token}&addresses=".encode() + b"a%40example.org%0A" * 70_000,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert pasted.status_code == 413
        boundary = "xyzzy"

        def upload() -> Iterator[bytes]:
            yield (
                f'--{boundary}\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n{token}\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                'filename="book.vcf"\r\nContent-Type: text/vcard\r\n\r\n'
            ).encode()
            for _ in range(40):
                yield b"BEGIN:VCARD\r\nVERSION:3.0\r\nEMAIL:z@example.org\r\nEND:VCARD\r\n" * 100
            yield f"\r\n--{boundary}--\r\n".encode()

        streamed = browser.http.post(
            "/member/import/file",
            content=upload(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert "content-length" not in streamed.request.headers
        assert streamed.status_code == 413
        assert snapshot(ctx) == before


def test_the_api_refuses_hostile_input_and_changes_nothing(site: Site, world: World) -> None:
    """The /v1 lists' filters and forged cursors, ids in paths, and JSON fields with NUL or
    control characters."""
    _api_list_filters_and_cursors(site, world)
    _api_ids_in_paths(site, world)
    _api_bodies_with_nul_and_control_characters(site, world)
    _api_consent_metadata_with_nul_or_line_breaks(site, world)


def test_oversized_bodies_are_refused_with_413(site: Site) -> None:
    """JSON bodies past the API's ceiling, and member forms and uploads past theirs."""
    _oversized_json_bodies(site)
    _oversized_member_forms(site)
