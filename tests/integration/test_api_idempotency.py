"""Idempotency-Key on every POST: the same key and body get the first answer and change
nothing; the same key with another body, or while the first request runs, is refused."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from api_support import API_KEY, Api, add_member, preview_and_invite, problem, running_api
from support import EVERY_TABLE, all_stored_text, count, counts

from courtois.services.context import Context
from courtois.services.idempotency import api_scope
from courtois.store.tables import consents, contacts, idempotency_keys, invitations, ledger


@pytest.fixture
def api(ctx: Context) -> Iterator[Api]:
    with running_api(ctx) as running:
        add_member(running)
        yield running


def invite_body(api: Api, emails: list[str]) -> dict[str, object]:
    shown = api.ok(api.post("/v1/members/ana/invitations/preview", {"emails": emails}))
    return {
        "emails": emails,
        "preview_hash": shown["preview_hash"],
        "consent": {"text_shown": shown["consent_text"]},
    }


def test_a_repeated_invitation_returns_the_first_answer_and_writes_nothing(api: Api) -> None:
    body = invite_body(api, ["bo@example.org", "cy@example.org"])
    first = api.post("/v1/members/ana/invitations", body, key="order-1")
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    written = counts(api.ctx, EVERY_TABLE)
    api.clock.advance(minutes=3)
    again = api.post("/v1/members/ana/invitations", body, key="order-1")
    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["idempotent-replayed"] == "true"
    assert counts(api.ctx, EVERY_TABLE) == written
    other = invite_body(api, ["bo@example.org"])
    reused = problem(
        api.post("/v1/members/ana/invitations", other, key="order-1"),
        409,
        "idempotency-key-reused",
    )
    assert "Idempotency-Key" in reused["errors"]
    assert counts(api.ctx, EVERY_TABLE) == written
    fresh = api.post("/v1/members/ana/invitations", other, key="order-2")
    assert fresh.status_code == 201


def test_a_repeat_after_the_members_language_changed_gets_the_first_answer(api: Api) -> None:
    """Lea (French) invites with a key; her language is then English, so the consent
    sentence a new preview would give is English. Her platform retries the same request:
    it was recorded, and gets its first answer, not consent-mismatch. Also when this
    layer's copy of the key is gone (released by an error after the invitation was
    recorded): `invite` itself answers a repeat before checking it against what it would
    send now, and still refuses the key with other words."""
    lea = {"id": "lea", "email": "lea@members.example", "name": "Léa", "locale": "fr"}
    api.ok(api.post("/v1/members", lea))
    emails = ["bo@example.org"]
    shown = api.ok(
        api.post("/v1/members/lea/invitations/preview", {"emails": emails, "locale": "fr"})
    )
    body = {
        "emails": emails,
        "locale": "fr",
        "preview_hash": shown["preview_hash"],
        "consent": {"text_shown": shown["consent_text"]},
    }
    path = "/v1/members/lea/invitations"
    first = api.post(path, body, key="k1")
    assert first.status_code == 201, first.text
    api.ok(api.post("/v1/members", {**lea, "locale": "en"}))
    written = counts(api.ctx, EVERY_TABLE)
    api.clock.advance(minutes=3)
    again = api.post(path, body, key="k1")
    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["idempotent-replayed"] == "true"
    with api.ctx.engine.begin() as connection:
        connection.execute(
            idempotency_keys.delete().where(idempotency_keys.c.scope == api_scope("POST", path))
        )
    retried = api.post(path, body, key="k1")
    assert (retried.status_code, retried.json()) == (201, first.json())
    assert retried.headers["idempotent-replayed"] == "true"
    with api.ctx.engine.begin() as connection:
        connection.execute(
            idempotency_keys.delete().where(idempotency_keys.c.scope == api_scope("POST", path))
        )
    other = api.post(path, {**body, "note": "Viens !"}, key="k1")
    problem(other, 409, "idempotency-key-reused")
    assert counts(api.ctx, EVERY_TABLE) == written


def test_repeated_imports_answer_the_first_report_json_or_file(api: Api) -> None:
    book = {"contacts": [{"email": "bo@example.org"}, {"email": "cy@example.org"}]}
    first = api.ok(api.post("/v1/members/ana/imports", book, key="import-1"))
    assert first["imported"] == 2
    assert api.ok(api.post("/v1/members/ana/imports", book, key="import-1")) == first
    # Without the key the same import is a new one: nothing new, two duplicates.
    assert api.ok(api.post("/v1/members/ana/imports", book))["duplicates"] == 2
    csv = b"email\r\ndee@example.org\r\n"
    files = {"file": ("a.csv", csv, "text/csv")}
    headers = {"Idempotency-Key": "file-1"}
    uploaded = api.ok(api.http.post("/v1/members/ana/imports", files=files, headers=headers))
    repeated = api.http.post("/v1/members/ana/imports", files=files, headers=headers)
    assert repeated.headers["idempotent-replayed"] == "true"
    assert repeated.json() == uploaded
    changed = {"file": ("a.csv", csv + b"eve@example.org\r\n", "text/csv")}
    problem(
        api.http.post("/v1/members/ana/imports", files=changed, headers=headers),
        409,
        "idempotency-key-reused",
    )
    assert count(api.ctx, contacts) == 3


def test_refusals_are_answers_too_and_a_done_withdrawal_is_done_once(api: Api) -> None:
    answer = preview_and_invite(api, ["bo@example.org"])
    invitation_id = answer["invitations"][0]["id"]
    path = f"/v1/invitations/{invitation_id}/withdraw"
    assert api.ok(api.post(path, key="w-1"))["status"] == "withdrawn"
    entries = count(api.ctx, ledger)
    assert api.ok(api.post(path, key="w-1"))["status"] == "withdrawn"
    problem(api.post(path, key="w-2"), 409, "invitation-closed")
    replayed = api.post(path, key="w-2")
    assert replayed.headers["idempotent-replayed"] == "true"
    problem(replayed, 409, "invitation-closed")
    assert count(api.ctx, ledger) == entries


def test_every_post_replays(api: Api) -> None:
    answer = preview_and_invite(api, ["bo@example.org", "cy@example.org"])
    consent_id = answer["consent_id"]
    posts: list[tuple[str, object]] = [
        ("/v1/members", {"id": "bruno", "email": "bruno@members.example", "name": "Bruno"}),
        ("/v1/members/ana/login-link", None),
        ("/v1/members/ana/imports", {"contacts": [{"email": "dee@example.org"}]}),
        ("/v1/members/ana/contacts/selection", {"emails": ["dee@example.org"]}),
        ("/v1/members/ana/invitations/preview", {"emails": ["dee@example.org"]}),
        ("/v1/members/ana/explain", {"email": "dee@example.org"}),
        (f"/v1/consents/{consent_id}/revoke", None),
        ("/v1/joined", {"email": "cy@example.org"}),
        ("/v1/recipients/unsubscribe", {"email": "bo@example.org"}),
        ("/v1/recipients/forget", {"email": "eve@example.org"}),
    ]
    for path, body in posts:
        first = api.post(path, body, key=f"k-{path}")
        assert first.status_code == 200, (path, first.text)
        written = counts(api.ctx, EVERY_TABLE)
        api.clock.advance(seconds=30)
        again = api.post(path, body, key=f"k-{path}")
        assert (again.status_code, again.json()) == (200, first.json()), path
        assert again.headers["idempotent-replayed"] == "true", path
        assert counts(api.ctx, EVERY_TABLE) == written, path


def test_a_key_still_in_use_is_refused_until_its_request_is_presumed_dead(api: Api) -> None:
    body = invite_body(api, ["bo@example.org"])
    path = "/v1/members/ana/invitations"
    with api.ctx.engine.begin() as connection:
        connection.execute(
            idempotency_keys.insert().values(
                scope=api_scope("POST", path),
                key="busy",
                request_hash=_hash_of(api, body),
                response={"status": 0},
                created_at=api.clock.now,
            )
        )
    busy = api.post(path, body, key="busy")
    problem(busy, 409, "idempotency-key-in-use")
    assert busy.headers["retry-after"] == "1"
    assert count(api.ctx, consents) == 0
    api.clock.advance(minutes=2)
    assert api.post(path, body, key="busy").status_code == 201
    assert count(api.ctx, consents) == 1


def _hash_of(api: Api, body: dict[str, object]) -> str:
    from courtois.web.api.invitations import InviteIn
    from courtois.web.idempotency import fingerprint

    return fingerprint(api.ctx, InviteIn.model_validate(body).model_dump(mode="json"))


def test_racing_repeats_create_one_consent(api: Api) -> None:
    body = invite_body(api, ["bo@example.org", "cy@example.org"])
    answers: list[httpx.Response] = []
    start = threading.Barrier(8)

    def post() -> None:
        with httpx.Client(
            base_url=api.base_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60
        ) as client:
            start.wait()
            answers.append(
                client.post(
                    "/v1/members/ana/invitations", json=body, headers={"Idempotency-Key": "race"}
                )
            )

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert count(api.ctx, consents) == 1
    assert count(api.ctx, invitations) == 2
    created = [a.json() for a in answers if a.status_code == 201]
    assert created
    assert all(answer == created[0] for answer in created)
    assert {a.status_code for a in answers} <= {201, 409}
    for refused in (a for a in answers if a.status_code == 409):
        assert refused.json()["type"] == "/problems/idempotency-key-in-use"


def test_keys_are_per_route_and_bounded(api: Api) -> None:
    one = api.post("/v1/joined", {"email": "bo@example.org"}, key="shared")
    two = api.post("/v1/recipients/forget", {"email": "bo@example.org"}, key="shared")
    assert (one.status_code, two.status_code) == (200, 200)
    problem(api.post("/v1/joined", {"email": "a@b.example"}, key="k" * 201), 422, "invalid-request")
    problem(api.post("/v1/joined", {"email": "a@b.example"}, key=""), 422, "invalid-request")


def test_forgetting_an_address_removes_the_stored_answers_that_quote_it(api: Api) -> None:
    preview_and_invite(api, ["bo@example.org", "cy@example.org"], key="with-bo")
    assert "bo@example.org" in all_stored_text(api.ctx)
    api.ok(api.post("/v1/recipients/forget", {"email": "bo@example.org"}))
    assert "bo@example.org" not in all_stored_text(api.ctx)
    # The web layer's copy of the answer went with the service's.
    with api.ctx.engine.connect() as connection:
        stored = connection.execute(idempotency_keys.select()).all()
    assert all("bo@example.org" not in str(row.response) for row in stored)


@pytest.mark.parametrize("stop", ["forget", "unsubscribe"])
def test_a_repeat_after_the_recipient_stopped_replays_without_their_address(
    api: Api, stop: str
) -> None:
    """Erasing the address from a stored answer keeps the answer: the repeat gets it back
    (minus that address), and nothing is invited a second time (invariant 8)."""
    body = invite_body(api, ["bo@example.org", "cy@example.org"])
    first = api.post("/v1/members/ana/invitations", body, key="with-bo")
    assert first.status_code == 201
    api.ok(api.post(f"/v1/recipients/{stop}", {"email": "bo@example.org"}))
    written = counts(api.ctx, EVERY_TABLE)
    api.clock.advance(minutes=2)  # past the reservation's lease: no takeover runs it again
    again = api.post("/v1/members/ana/invitations", body, key="with-bo")
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert counts(api.ctx, EVERY_TABLE) == written
    expected = first.json()
    for item in expected["invitations"]:
        if item["email"] == "bo@example.org":
            item["email"] = None
    assert again.json() == expected
    assert "bo@example.org" not in again.text
    assert "cy@example.org" in again.text


def test_an_answer_about_someone_already_forgotten_is_kept_without_them(api: Api) -> None:
    """Forgotten first, invited after: the answer names the address the member typed, and
    the copy kept for repeats does not (it would be the only one left)."""
    api.ok(api.post("/v1/recipients/forget", {"email": "bo@example.org"}))
    body = invite_body(api, ["bo@example.org", "cy@example.org"])
    first = api.post("/v1/members/ana/invitations", body, key="after-forget")
    assert first.status_code == 201
    assert "bo@example.org" in first.text
    assert "bo@example.org" not in all_stored_text(api.ctx)
    again = api.post("/v1/members/ana/invitations", body, key="after-forget")
    emails = sorted(str(item["email"]) for item in again.json()["invitations"])
    assert emails == ["None", "cy@example.org"]


def test_answers_are_kept_a_day(api: Api) -> None:
    from courtois.services.housekeeping import purge_expired_data

    api.post("/v1/joined", {"email": "bo@example.org"}, key="old")
    assert count(api.ctx, idempotency_keys) == 1
    purge_expired_data(api.ctx, api.clock.now + timedelta(hours=25))
    assert count(api.ctx, idempotency_keys) == 0
