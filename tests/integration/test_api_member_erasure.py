"""`DELETE /v1/members/{id}`: the member is erased before the answer, is then found nowhere,
and their id is not registered again; a repeat succeeds, a keyed repeat replays."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from api_support import Api, preview_and_invite, problem, running_api
from sqlalchemy import select
from support import count, rows

from courtois.services.audit import verify_ledger
from courtois.services.context import Context
from courtois.store.tables import idempotency_keys, members, messages

ZED = {"id": "zed", "email": "Zephyrine.Quillfeather@members.example", "name": "Zephyrine Q"}
NOTE = "Meet me by the lighthouse on Tuesday"


@pytest.fixture
def api(ctx: Context) -> Iterator[Api]:
    with running_api(ctx) as running:
        yield running


def delete(api: Api, member_id: str, key: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return api.http.delete(f"/v1/members/{member_id}", headers=headers)


def stored_answers(api: Api) -> list[str]:
    """Every stored answer, as text, with its scope."""
    with api.ctx.engine.connect() as connection:
        found = connection.execute(select(idempotency_keys.c.scope, idempotency_keys.c.response))
        return [f"{scope} {response}" for scope, response in found]


def test_the_member_is_erased_and_then_found_nowhere(api: Api) -> None:
    api.ok(api.post("/v1/members", ZED, key="register"))
    ana = {"id": "ana", "email": "ana@members.example", "name": "Ana Lima"}
    api.ok(api.post("/v1/members", ana, key="register-ana"))
    preview_and_invite(api, ["bo@example.org"], "zed", key="invite", note=NOTE, reminders=1)
    api.ok(api.post("/v1/members/zed/login-link", key="link"))
    assert any("Zephyrine" in answer for answer in stored_answers(api))
    now = api.clock.advance(minutes=5)

    erased = api.ok(delete(api, "zed"))

    assert erased == {
        "id": "zed",
        "erased_at": now.isoformat().replace("+00:00", "Z"),
        "invitations_withdrawn": 1,
        "emails_cancelled": 1,
        "consents_revoked": 1,
        "contacts_deleted": 0,
        "already_leaving": 0,
    }
    assert count(api.ctx, messages, messages.c.state == "scheduled") == 0
    for path in ("/v1/members/zed", "/v1/members/zed/export", "/v1/members/zed/contacts"):
        problem(api.get(path), 404, "member-not-found")
    refused = api.post("/v1/members/zed/invitations/preview", {"emails": ["cy@example.org"]})
    problem(refused, 404, "member-not-found")
    # The answers kept for the member's keyed requests are gone: the same registration,
    # repeated with its key, is answered anew (refused), not replayed with the address.
    assert [a for a in stored_answers(api) if "zed" in a.lower()] == []
    again = api.post("/v1/members", ZED, key="register")
    body = problem(again, 409, "member-erased")
    assert body["errors"] == {"id": "erased"}
    assert "idempotent-replayed" not in again.headers
    assert rows(api.ctx, members, members.c.id == "zed")[0].email == ""
    # Another member's registration, and its stored answer, stay.
    assert any("Ana Lima" in answer for answer in stored_answers(api))
    assert api.ok(api.get("/v1/members/ana"))["name"] == "Ana Lima"
    assert verify_ledger(api.ctx.engine).ok


def test_a_repeat_succeeds_and_a_keyed_repeat_replays_the_first_answer(api: Api) -> None:
    api.ok(api.post("/v1/members", ZED))
    preview_and_invite(api, ["bo@example.org", "cy@example.org"], "zed")
    first = delete(api, "zed", key="erase-1")
    assert first.json()["invitations_withdrawn"] == 2
    api.clock.advance(minutes=1)
    replayed = delete(api, "zed", key="erase-1")
    assert (replayed.status_code, replayed.json()) == (200, first.json())
    assert replayed.headers["idempotent-replayed"] == "true"
    repeated = api.ok(delete(api, "zed"))
    assert repeated == {
        **first.json(),
        "invitations_withdrawn": 0,
        "emails_cancelled": 0,
        "consents_revoked": 0,
    }
    assert verify_ledger(api.ctx.engine).ok


def test_an_unknown_member_is_a_problem_and_nothing_is_written(api: Api) -> None:
    api.ok(api.post("/v1/members", ZED))
    body = problem(delete(api, "nobody"), 404, "member-not-found")
    assert body["detail"] == "No such member."
    problem(delete(api, "no%20body"), 422, "invalid-request")
    assert rows(api.ctx, members)[0].erased_at is None


def test_the_document_describes_the_erasure(api: Api) -> None:
    document = api.ok(api.get("/openapi.json"))
    operation = document["paths"]["/v1/members/{member_id}"]["delete"]
    answered = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert answered == {"$ref": "#/components/schemas/MemberErased"}
    assert {"401", "404", "409", "422"} <= set(operation["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in operation["parameters"])
    fields = document["components"]["schemas"]["MemberErased"]["properties"]
    assert set(fields) == {
        "id",
        "erased_at",
        "invitations_withdrawn",
        "emails_cancelled",
        "consents_revoked",
        "contacts_deleted",
        "already_leaving",
    }
