"""Invitations through the API: preview, consent with the preview's hash, every decision
shown, pages of invitations, withdraw, revoke, and the refusals each with its own type."""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from api_support import Api, add_member, preview_and_invite, problem, running_api
from sqlalchemy import insert
from support import (
    EVERY_TABLE,
    MEMBER_RULE_CODES,
    WRITTEN_BY_INVITE,
    counts,
    left_in_doubt,
    rows,
)

from courtois.delivery.transport import MemoryTransport
from courtois.domain.addresses import parse_address
from courtois.domain.ids import new_id
from courtois.services.admin_unknown import resolve_unknown
from courtois.services.context import Context
from courtois.services.worker import run_pass
from courtois.store.tables import contacts
from courtois.web.api.common import UUID_PATTERN


@pytest.fixture
def api(ctx: Context) -> Iterator[Api]:
    with running_api(ctx) as running:
        add_member(running)
        yield running


def test_the_preview_is_the_email_and_the_consent_sentence(api: Api) -> None:
    shown = api.ok(
        api.post(
            "/v1/members/ana/invitations/preview",
            {"emails": ["bo@example.org", "BO@example.org", "cy@example.org"], "reminders": 1},
        )
    )
    assert shown["subject"] == "Ana Lima invites you to join Agora"
    assert "Ana Lima" in shown["html"]
    assert "2 people" in shown["consent_text"]
    assert "reminder" in shown["consent_text"]
    assert len(shown["preview_hash"]) == 64
    assert [f["subject"] for f in shown["follow_ups"]] != []
    french = api.ok(
        api.post(
            "/v1/members/ana/invitations/preview", {"emails": ["bo@example.org"], "locale": "fr"}
        )
    )
    assert french["locale"] == "fr"
    assert french["preview_hash"] != shown["preview_hash"]


@pytest.mark.parametrize(
    ("member_locale", "email_locale", "consent_words", "email_words"),
    [
        ("en", "fr", "I ask Agora to send this invitation", "vous invite"),
        ("fr", "en", "Je demande à Agora d'envoyer cette invitation", "invites you"),
    ],
)
def test_the_consent_sentence_is_in_the_members_language_whatever_the_emails(
    api: Api, member_locale: str, email_locale: str, consent_words: str, email_words: str
) -> None:
    """The member agrees to what they read: the sentence is in their language, the email in
    the recipients'; that sentence is the one the invitation takes and the consent keeps."""
    member = {"id": "mo", "email": "mo@members.example", "name": "Mo Sy", "locale": member_locale}
    api.ok(api.post("/v1/members", member))
    body = {"emails": ["bo@example.org", "cy@example.org"], "locale": email_locale}
    shown = api.ok(api.post("/v1/members/mo/invitations/preview", body))
    assert shown["locale"] == email_locale
    assert email_words in shown["subject"]
    assert shown["consent_text"].startswith(consent_words)
    consent = {"text_shown": shown["consent_text"], "ip": "192.0.2.7", "user_agent": "t"}
    invite = {**body, "preview_hash": shown["preview_hash"], "consent": consent}
    answer = api.ok(api.post("/v1/members/mo/invitations", invite), 201)
    stored = api.ok(api.get(f"/v1/consents/{answer['consent_id']}"))
    assert stored["text_shown"] == shown["consent_text"]
    assert stored["locale"] == email_locale


def test_invite_answers_each_decision_with_every_rule(api: Api) -> None:
    answer = preview_and_invite(api, ["bo@example.org", "cy@example.org"])
    assert len(answer["invitations"]) == 2
    for item in answer["invitations"]:
        assert item["status"] == "scheduled"
        assert item["decision"]["allowed"] is True
        assert [v["rule"] for v in item["decision"]["verdicts"]] == MEMBER_RULE_CODES
        assert item["share_link"] is None
    one = answer["invitations"][0]
    detail = api.ok(api.get(f"/v1/invitations/{one['id']}"))
    assert (detail["member_id"], detail["consent_id"]) == ("ana", answer["consent_id"])
    assert detail["email"] == one["email"]
    assert [m["status"] for m in detail["messages"]] == ["scheduled"]
    (decision,) = detail["decisions"]
    assert decision["stage"] == "queue"
    assert decision["verdicts"] == one["decision"]["verdicts"]
    consent = api.ok(api.get(f"/v1/consents/{answer['consent_id']}"))
    assert consent["recipients"] == 2
    assert sorted(consent["invitation_ids"]) == sorted(i["id"] for i in answer["invitations"])


def test_a_stale_preview_or_another_consent_text_is_refused_and_nothing_written(
    api: Api,
) -> None:
    before = counts(api.ctx, WRITTEN_BY_INVITE)
    shown = api.ok(api.post("/v1/members/ana/invitations/preview", {"emails": ["bo@example.org"]}))
    consent = {"text_shown": shown["consent_text"]}
    stale = {"emails": ["bo@example.org"], "preview_hash": "0" * 64, "consent": consent}
    problem(api.post("/v1/members/ana/invitations", stale), 409, "stale-preview")
    # The hash of a message without the note is not consent to a message with one.
    noted = {**stale, "note": "hi", "preview_hash": shown["preview_hash"]}
    problem(api.post("/v1/members/ana/invitations", noted), 409, "stale-preview")
    other = {**stale, "preview_hash": shown["preview_hash"], "consent": {"text_shown": "Yes"}}
    problem(api.post("/v1/members/ana/invitations", other), 409, "consent-mismatch")
    assert counts(api.ctx, WRITTEN_BY_INVITE) == before


def test_bad_addresses_are_named_by_position_never_echoed(api: Api) -> None:
    emails = ["bo@example.org", "secret-person@@example.org", "", "cy@example.org"]
    consented = {"emails": emails, "preview_hash": "x", "consent": {"text_shown": "x"}}
    for path, body in (
        ("/v1/members/ana/invitations/preview", {"emails": emails}),
        ("/v1/members/ana/invitations", consented),
    ):
        refused = problem(api.post(path, body), 422, "invalid-address")
        assert set(refused["errors"]) == {"emails[1]", "emails[2]"}
        assert "secret-person" not in str(refused)


@pytest.mark.parametrize(
    ("field", "values"),
    [
        # Past the domain's 1,000 characters, past the schema's old 2,000, and far past.
        ("note", ["n" * 1001, "n" * 2000, "n" * 2001, "n" * 100_000]),
        ("locale", ["de", "d" * 16, "d" * 17, "d" * 100_000]),
    ],
)
def test_a_preview_field_is_one_problem_type_whatever_its_length(
    api: Api, field: str, values: list[str]
) -> None:
    for value in values:
        body = {"emails": ["bo@example.org"], field: value}
        refused = problem(
            api.post("/v1/members/ana/invitations/preview", body), 422, "invalid-input"
        )
        assert list(refused["errors"]) == [field], (len(value), refused)


@pytest.mark.parametrize("email", ["", " ", "a" * 250 + "@b.example", "a" * 400 + "@b.example"])
def test_an_address_of_any_length_is_one_problem_naming_the_field(api: Api, email: str) -> None:
    """An empty or overlong address was `invalid-request` where a blank or merely too long
    one was `invalid-address`: one error, one type."""
    for path, body in (
        ("/v1/joined", {"email": email}),
        ("/v1/recipients/unsubscribe", {"email": email}),
        ("/v1/recipients/forget", {"email": email}),
        ("/v1/members/ana/explain", {"email": email}),
    ):
        refused = problem(api.post(path, body), 422, "invalid-address")
        assert refused["errors"].keys() == {"email"}, (path, refused)


def test_role_and_no_reply_mailboxes_are_not_invited(api: Api) -> None:
    emails = ["bo@example.org", "postmaster@example.org", "noreply+42@example.org"]
    consented = {"emails": emails, "preview_hash": "x", "consent": {"text_shown": "x"}}
    before = counts(api.ctx, WRITTEN_BY_INVITE)
    for path, body in (
        ("/v1/members/ana/invitations/preview", {"emails": emails}),
        ("/v1/members/ana/invitations", consented),
    ):
        refused = problem(api.post(path, body), 422, "invalid-address")
        assert refused["errors"] == {
            "emails[1]": "a role or no-reply mailbox, not a person",
            "emails[2]": "a role or no-reply mailbox, not a person",
        }
    assert counts(api.ctx, WRITTEN_BY_INVITE) == before


def test_pages_of_invitations_newest_first_and_by_status(api: Api) -> None:
    first = preview_and_invite(api, ["a@example.org", "b@example.org"])
    api.clock.advance(minutes=1)
    second = preview_and_invite(api, ["c@example.org", "d@example.org", "e@example.org"])
    newest = sorted((i["id"] for i in second["invitations"]), reverse=True)
    oldest = sorted((i["id"] for i in first["invitations"]), reverse=True)
    seen, cursor = [], None
    while True:
        params: dict[str, str | int] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.ok(api.get("/v1/members/ana/invitations", params=params))
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == newest + oldest
    api.ok(api.post(f"/v1/invitations/{newest[0]}/withdraw"))
    withdrawn = api.ok(api.get("/v1/members/ana/invitations", params={"status": "withdrawn"}))
    assert [i["id"] for i in withdrawn["items"]] == [newest[0]]
    both = api.get(
        "/v1/members/ana/invitations", params=[("status", "withdrawn"), ("status", "scheduled")]
    )
    assert len(api.ok(both)["items"]) == 5
    problem(
        api.get("/v1/members/ana/invitations", params={"status": "lost"}), 422, "invalid-request"
    )


def test_withdraw_then_withdraw_again_and_unknown_ids(api: Api) -> None:
    answer = preview_and_invite(api, ["bo@example.org"])
    invitation_id = answer["invitations"][0]["id"]
    withdrawn = api.ok(api.post(f"/v1/invitations/{invitation_id}/withdraw"))
    assert withdrawn == {"id": invitation_id, "status": "withdrawn"}
    again = problem(api.post(f"/v1/invitations/{invitation_id}/withdraw"), 409, "invitation-closed")
    assert "withdrawn" in again["detail"]
    for path in ("/v1/invitations/nope/withdraw", "/v1/invitations/nope"):
        response = api.post(path) if path.endswith("withdraw") else api.get(path)
        body = problem(response, 404, "invitation-not-found")
        assert body["detail"] == "No such invitation."


def test_an_email_in_doubt_is_said_so_and_its_invitation_is_not_withdrawn(api: Api) -> None:
    """A worker killed while handing Bo's and Cy's emails to the mail server leaves them
    `unknown`: they may be in the inbox, join link and all. The invitation, list and
    export say so (`message_status`), and a withdrawal is refused (409) with nothing
    changed, as while the email is being sent. Once an admin settles each, the usual
    states apply: sent can be withdrawn; not delivered is closed."""
    answer = preview_and_invite(api, ["bo@example.org", "cy@example.org", "dy@example.org"])
    ids = {item["email"]: item["id"] for item in answer["invitations"]}
    bo, cy, dy = ids["bo@example.org"], ids["cy@example.org"], ids["dy@example.org"]
    later = api.clock.advance(minutes=30)
    bo_email, cy_email = left_in_doubt(api.ctx, bo, later), left_in_doubt(api.ctx, cy, later)
    detail = api.ok(api.get(f"/v1/invitations/{bo}"))
    assert (detail["status"], detail["message_status"], detail["sent_at"]) == (
        "scheduled",
        "unknown",
        None,
    )
    assert [m["status"] for m in detail["messages"]] == ["unknown"]
    listed = api.ok(api.get("/v1/members/ana/invitations"))["items"]
    assert {i["id"]: i["message_status"] for i in listed} == {
        bo: "unknown",
        cy: "unknown",
        dy: "scheduled",
    }
    exported = api.ok(api.get("/v1/members/ana/export"))["invitations"]
    assert {i["id"]: i["message_status"] for i in exported} == {
        bo: "unknown",
        cy: "unknown",
        dy: "scheduled",
    }
    before = counts(api.ctx, EVERY_TABLE)
    refused = problem(api.post(f"/v1/invitations/{bo}/withdraw"), 409, "invitation-in-doubt")
    assert "may already have left" in refused["detail"]
    assert counts(api.ctx, EVERY_TABLE) == before
    assert api.ok(api.get(f"/v1/invitations/{bo}")) == detail
    document = api.ok(api.get("/openapi.json"))
    kinds = document["components"]["schemas"]["ProblemDetails"]["properties"]["type"]["enum"]
    assert "/problems/invitation-in-doubt" in kinds
    summary = document["components"]["schemas"]["InvitationSummary"]["properties"]
    assert "unknown" in summary["message_status"]["description"]
    # The admin found Bo's delivered and Cy's not.
    resolve_unknown(api.ctx, [bo_email], "sent", later)
    resolve_unknown(api.ctx, [cy_email], "failed", later)
    settled = api.ok(api.get(f"/v1/invitations/{bo}"))
    assert (settled["status"], settled["message_status"]) == ("sent", "sent")
    closed = api.ok(api.get(f"/v1/invitations/{cy}"))
    assert (closed["status"], closed["message_status"]) == ("bounced", "failed")
    withdrawn = api.ok(api.post(f"/v1/invitations/{bo}/withdraw"))
    assert withdrawn == {"id": bo, "status": "withdrawn"}
    problem(api.post(f"/v1/invitations/{cy}/withdraw"), 409, "invitation-closed")


def test_revoking_a_consent_leaves_an_invitation_in_doubt_to_the_admin(api: Api) -> None:
    """Revoking withdraws what has not left; an invitation whose email may have left is
    not said withdrawn (its recipient may hold the link): it is counted as already
    leaving, and becomes sent, with no reminder, or not delivered when an admin says."""
    answer = preview_and_invite(api, ["bo@example.org", "cy@example.org"], reminders=1)
    ids = {item["email"]: item["id"] for item in answer["invitations"]}
    later = api.clock.advance(minutes=30)
    message_id = left_in_doubt(api.ctx, ids["bo@example.org"], later)
    revoked = api.ok(api.post(f"/v1/consents/{answer['consent_id']}/revoke"))
    assert revoked == {
        "id": answer["consent_id"],
        "withdrawn": 1,
        "reminders_cancelled": 0,
        "already_leaving": 1,
    }
    bo = api.ok(api.get(f"/v1/invitations/{ids['bo@example.org']}"))
    assert (bo["status"], bo["message_status"]) == ("scheduled", "unknown")
    cy = api.ok(api.get(f"/v1/invitations/{ids['cy@example.org']}"))
    assert (cy["status"], cy["message_status"]) == ("withdrawn", "cancelled")
    resolve_unknown(api.ctx, [message_id], "sent", later)
    bo = api.ok(api.get(f"/v1/invitations/{ids['bo@example.org']}"))
    assert (bo["status"], bo["message_status"]) == ("sent", "sent")
    # The consent being revoked, no reminder follows the email the admin says arrived.
    assert [m["kind"] for m in bo["messages"]] == ["invitation"]
    transport = MemoryTransport()
    run_pass(api.ctx, later + timedelta(days=20), transport)
    assert transport.sent == []


def test_ids_outside_the_documented_form_are_answered_as_unknown_ids(api: Api) -> None:
    """The document gives the form of the ids courtois makes; every id it makes has that
    form, and a value of another form is answered exactly as an unknown id is (404, the
    same problem), so the answer tells nothing about why nothing was found."""
    answer = preview_and_invite(api, ["bo@example.org"])
    made = [answer["consent_id"], *(i["id"] for i in answer["invitations"])]
    made += [new_id() for _ in range(200)] + [str(uuid.uuid4()) for _ in range(200)]
    form = re.compile(UUID_PATTERN)
    assert all(form.fullmatch(i) for i in made)
    paths = api.ok(api.get("/openapi.json"))["paths"]
    for path, name in (
        ("/v1/invitations/{invitation_id}", "invitation_id"),
        ("/v1/invitations/{invitation_id}/withdraw", "invitation_id"),
        ("/v1/consents/{consent_id}", "consent_id"),
        ("/v1/consents/{consent_id}/revoke", "consent_id"),
    ):
        for operation in paths[path].values():
            (parameter,) = (p for p in operation["parameters"] if p["name"] == name)
            assert parameter["schema"]["pattern"] == UUID_PATTERN

    def answers(kind: str, path: str) -> list[dict[str, Any]]:
        action = "/withdraw" if kind == "invitation" else "/revoke"
        asked = (api.get(path), api.post(path + action))
        return [problem(response, 404, f"{kind}-not-found") for response in asked]

    unknown = str(uuid.uuid4())
    for kind, path in (("invitation", "/v1/invitations/"), ("consent", "/v1/consents/")):
        expected = answers(kind, path + unknown)
        for other in (
            "nope",
            "zz-zz",
            "0" * 37,
            "g" * 64,
            "g" * 65,
            "a" * 2000,
            "1%20OR%201=1",
            "%C3%A9",
        ):
            assert answers(kind, path + other) == expected, other


def test_revoking_a_consent_stops_what_is_unsent_once(api: Api) -> None:
    answer = preview_and_invite(api, ["bo@example.org", "cy@example.org"], reminders=1)
    consent_id = answer["consent_id"]
    revoked = api.ok(api.post(f"/v1/consents/{consent_id}/revoke"))
    assert revoked == {
        "id": consent_id,
        "withdrawn": 2,
        "reminders_cancelled": 0,
        "already_leaving": 0,
    }
    statuses = {
        api.ok(api.get(f"/v1/invitations/{i['id']}"))["status"] for i in answer["invitations"]
    }
    assert statuses == {"withdrawn"}
    assert api.ok(api.get(f"/v1/consents/{consent_id}"))["revoked_at"] is not None
    problem(api.post(f"/v1/consents/{consent_id}/revoke"), 409, "consent-revoked")
    problem(api.post("/v1/consents/nope/revoke"), 404, "consent-not-found")
    problem(api.get("/v1/consents/nope"), 404, "consent-not-found")


def test_unsubscribe_forget_and_explain_give_the_cli_answers(api: Api) -> None:
    answer = preview_and_invite(api, ["bo@example.org", "cy@example.org"])
    ids = {i["email"]: i["id"] for i in answer["invitations"]}
    stop = api.post("/v1/recipients/unsubscribe", {"email": "Bo@example.org", "from_member": "ana"})
    # The CLI's counts: closing the invitation cancelled its email along with it.
    assert api.ok(stop) == {"blocked": 1, "cancelled": 0, "already_leaving": 0}
    assert api.ok(api.get(f"/v1/invitations/{ids['bo@example.org']}"))["status"] == "blocked"
    problem(
        api.post("/v1/recipients/unsubscribe", {"email": "bo@example.org", "from_member": "zed"}),
        404,
        "member-not-found",
    )
    explained = api.ok(api.post("/v1/members/ana/explain", {"email": "bo@example.org"}))
    assert explained["allowed"] is False
    blocking = [v for v in explained["verdicts"] if v["outcome"] == "deny"]
    assert blocking
    assert all(v["reason"] for v in blocking)
    forgotten = api.ok(api.post("/v1/recipients/forget", {"email": "cy@example.org"}))
    assert forgotten == {"blocked": 1, "declined": 0, "contacts": 0}
    detail = api.ok(api.get(f"/v1/invitations/{ids['cy@example.org']}"))
    assert (detail["status"], detail["email"]) == ("blocked", None)


def test_strict_eu_answers_a_link_and_a_text_for_the_member_to_send(ctx: Context) -> None:
    policy = dataclasses.replace(ctx.settings.policy, profile="strict-eu")
    with running_api(ctx, policy=policy) as api:
        add_member(api)
        answer = preview_and_invite(api, ["bo@example.org"])
    (item,) = answer["invitations"]
    assert item["status"] == "sent"
    assert item["share_link"].startswith("https://agora.test/join/")
    assert "Ana Lima" in item["share_text"]


def test_strict_eu_answers_the_subject_previewed_in_the_recipients_language(
    ctx: Context,
) -> None:
    """The member sends an email of their own: the answer gives its subject with its text,
    the preview's (which the consent's hash covers), in the recipient's language; the
    document lists it."""
    policy = dataclasses.replace(ctx.settings.policy, profile="strict-eu")
    with running_api(ctx, policy=policy) as api:
        add_member(api)
        document = api.ok(api.get("/openapi.json"))
        for locale, subject in (
            ("en", "Ana Lima invites you to join Agora"),
            ("fr", "Ana Lima vous invite à rejoindre Agora"),
        ):
            emails = [f"bo-{locale}@example.org"]
            shown = api.ok(
                api.post(
                    "/v1/members/ana/invitations/preview", {"emails": emails, "locale": locale}
                )
            )
            assert shown["subject"] == subject
            answer = preview_and_invite(api, emails, locale=locale)
            (item,) = answer["invitations"]
            assert item["share_subject"] == subject
    properties = document["components"]["schemas"]["InvitationOut"]["properties"]
    assert {"share_link", "share_subject", "share_text"} <= set(properties)
    assert properties["share_subject"]["description"]


KIND = "strict-eu-no-reminders"


def test_strict_eu_refuses_a_reminder_on_preview_and_on_invite(ctx: Context) -> None:
    """No email exists under strict-eu, so no reminder can follow one: asking for it is a
    422 with its own type, not a preview promising one and a 201 that drops it."""
    policy = dataclasses.replace(ctx.settings.policy, profile="strict-eu")
    with running_api(ctx, policy=policy) as api:
        add_member(api)
        before = counts(api.ctx)
        body = {"emails": ["k1@example.net"], "reminders": 1}
        refused = problem(api.post("/v1/members/ana/invitations/preview", body), 422, KIND)
        assert refused["errors"] == {"reminders": "none under strict-eu"}
        shown = api.ok(api.post("/v1/members/ana/invitations/preview", {**body, "reminders": 0}))
        assert shown["follow_ups"] == []
        assert "reminder" not in shown["consent_text"]
        consent = {"text_shown": shown["consent_text"]}
        invite = {**body, "preview_hash": shown["preview_hash"], "consent": consent}
        problem(api.post("/v1/members/ana/invitations", invite), 422, KIND)
        assert counts(api.ctx) == before
        # Without one, the same words are consented to and the text is the one previewed.
        answer = api.ok(api.post("/v1/members/ana/invitations", {**invite, "reminders": 0}), 201)
    (item,) = answer["invitations"]
    assert item["status"] == "sent"
    assert "asked Agora to send" not in " ".join(item["share_text"].split())
    assert "This is the only email" not in item["share_text"]


def test_strict_eu_explain_refuses_a_reminder_as_preview_does(ctx: Context) -> None:
    """The operator's explanation of a would-be invitation never describes a reminder that
    could not exist: the same 422 and type as preview and invite."""
    policy = dataclasses.replace(ctx.settings.policy, profile="strict-eu")
    with running_api(ctx, policy=policy) as api:
        add_member(api)
        body = {"email": "k1@example.net", "reminders": 1}
        refused = problem(api.post("/v1/members/ana/explain", body), 422, KIND)
        assert refused["errors"] == {"reminders": "none under strict-eu"}
        explained = api.ok(api.post("/v1/members/ana/explain", {**body, "reminders": 0}))
    # Without the reminder it is explained as `invite` answers it: allowed, to be shared by
    # the member, the platform's own email refused by strict-eu.
    assert (explained["allowed"], explained["outcome"]) == (True, "allow")
    assert {v["rule"]: v["outcome"] for v in explained["verdicts"]}["strict-eu-no-email"] == "deny"


OVER_CAP = "reminder-over-cap"


def test_a_policy_allowing_no_reminder_refuses_one_with_its_own_type(ctx: Context) -> None:
    """`reminder_cap = 0`: a reminder asked for on preview, invite or explain is a 422 of
    its own type, naming the cap, with nothing written."""
    policy = dataclasses.replace(ctx.settings.policy, reminder_cap=0)
    with running_api(ctx, policy=policy) as api:
        add_member(api)
        before = counts(api.ctx)
        body = {"emails": ["k1@example.net"], "reminders": 1}
        refused = problem(api.post("/v1/members/ana/invitations/preview", body), 422, OVER_CAP)
        assert refused["errors"] == {"reminders": "at most 0"}
        assert "reminder_cap" in refused["detail"]
        shown = api.ok(api.post("/v1/members/ana/invitations/preview", {**body, "reminders": 0}))
        consent = {"text_shown": shown["consent_text"]}
        invite = {**body, "preview_hash": shown["preview_hash"], "consent": consent}
        problem(api.post("/v1/members/ana/invitations", invite), 422, OVER_CAP)
        explain = {"email": "k1@example.net", "reminders": 1}
        problem(api.post("/v1/members/ana/explain", explain), 422, OVER_CAP)
        assert counts(api.ctx) == before
        answer = api.ok(api.post("/v1/members/ana/invitations", {**invite, "reminders": 0}), 201)
    assert [item["status"] for item in answer["invitations"]] == ["scheduled"]


def test_a_note_or_consent_evidence_that_would_read_reversed_is_refused(api: Api) -> None:
    """A direction override or isolate in the note would make words or a link in an email
    sent in the platform's name read reversed: refused on preview and on invite, as in a
    member's name. The consent's ip and user agent, evidence shown to admins, refuse them
    and the direction marks too. Nothing is written."""
    emails = ["bo@example.org"]
    shown = api.ok(api.post("/v1/members/ana/invitations/preview", {"emails": emails}))
    consent = {"text_shown": shown["consent_text"], "ip": "192.0.2.7", "user_agent": "t"}
    invite = {"emails": emails, "preview_hash": shown["preview_hash"], "consent": consent}
    before = counts(api.ctx, WRITTEN_BY_INVITE)
    for note in ("\u202eevil", "see \u202egro.live\u202c", "Ana \u2067x\u2069", "\u202ax"):
        for path, body in (
            ("/v1/members/ana/invitations/preview", {"emails": emails, "note": note}),
            ("/v1/members/ana/invitations", {**invite, "note": note}),
        ):
            refused = problem(api.post(path, body), 422, "invalid-input")
            assert refused["errors"] == {"note": "control characters"}
            assert "direction overrides" in refused["detail"]
    for field, value in (
        ("ip", "\u202e4.3.2.1"),
        ("ip", "192.0.2.7\u2066"),
        ("user_agent", "UA\u200e"),
        ("user_agent", "Mozilla/5.0 \u202eevil"),
        ("user_agent", "\u061cUA"),
    ):
        refused = problem(
            api.post(
                "/v1/members/ana/invitations",
                {**invite, "consent": {**consent, field: value}},
            ),
            422,
            "invalid-request",
        )
        assert set(refused["errors"]) == {f"consent.{field}"}
        assert value not in str(refused)
    assert counts(api.ctx, WRITTEN_BY_INVITE) == before
    # Right-to-left text keeps its marks, and the same request without the override goes.
    rtl = "\u05e9\u05dc\u05d5\u05dd!\u200f"
    answer = preview_and_invite(api, emails, note=rtl)
    stored = api.ok(api.get(f"/v1/consents/{answer['consent_id']}"))
    assert (stored["ip"], stored["user_agent"]) == ("192.0.2.7", "t")


def test_a_local_part_past_64_octets_is_refused_wherever_an_address_comes_in(
    api: Api,
) -> None:
    """RFC 5321 caps the part before the @ at 64 octets: such an address is refused as a
    member's, rejected with the reason in an import's report, and refused by position on
    preview and invite; nothing is written. A recipient's own request for one taken in
    before the cap (here a contact stored directly) still finds and forgets it."""
    long_one = "a" * 240 + "@example.org"
    at_limit = "b" * 64 + "@example.org"
    reason = "Not a valid email address: the part before the @-sign is longer than 64 bytes."
    member = {"id": "zed", "email": long_one, "name": "Zed"}
    refused = problem(api.post("/v1/members", member), 422, "invalid-address")
    assert long_one not in str(refused)
    problem(api.get("/v1/members/zed"), 404, "member-not-found")
    body = {"contacts": [{"email": long_one, "name": "Long"}, {"email": at_limit, "name": "B"}]}
    report = api.ok(api.post("/v1/members/ana/imports", body))
    assert (report["records"], report["imported"], report["rejected"]) == (2, 1, 1)
    assert report["rejected_records"] == [
        {"where": "contacts[0]", "reason": f"invalid address: {reason}"}
    ]
    assert [r.address for r in rows(api.ctx, contacts)] == [at_limit]
    emails = [at_limit, long_one, "Ana.Lima+" + "x" * 56 + "@Example.ORG"]
    consented = {"emails": emails, "preview_hash": "x", "consent": {"text_shown": "x"}}
    before = counts(api.ctx, WRITTEN_BY_INVITE)
    for path, invite in (
        ("/v1/members/ana/invitations/preview", {"emails": emails}),
        ("/v1/members/ana/invitations", consented),
    ):
        refused = problem(api.post(path, invite), 422, "invalid-address")
        assert refused["errors"] == {"emails[1]": reason, "emails[2]": reason}
    assert counts(api.ctx, WRITTEN_BY_INVITE) == before
    stored = parse_address(long_one, any_local_length=True)
    with api.ctx.engine.begin() as connection:
        connection.execute(
            insert(contacts).values(
                member_id="ana",
                recipient_digest=api.ctx.digest(stored),
                address=stored.normalized,
                display_name="Long",
                source="before",
                selected=False,
                imported_at=api.clock.now,
            )
        )
    forgotten = api.ok(api.post("/v1/recipients/forget", {"email": long_one.upper()}))
    assert forgotten["contacts"] == 1
    assert [r.address for r in rows(api.ctx, contacts)] == [at_limit]
