"""`/v1/members`: create, update, read; names that would inject headers; sign-in links."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from api_support import Api, preview_and_invite, problem, running_api
from itsdangerous import URLSafeTimedSerializer
from support import count, mailed_before

from courtois.delivery.bounces import BouncedRecipient, BounceReport
from courtois.domain.errors import NotFound
from courtois.services.bounces import apply_bounce
from courtois.services.context import Context
from courtois.services.recipients import unsubscribe
from courtois.store.tables import members
from courtois.tokens import (
    MEMBER_LINK_MAX_AGE_SECONDS,
    Scope,
    make_token,
    read_sign_in_token,
    read_token,
)


@pytest.fixture
def api(ctx: Context) -> Iterator[Api]:
    with running_api(ctx) as running:
        yield running


def test_a_member_is_created_then_updated_then_read(api: Api) -> None:
    body = {"id": "ana", "email": "Ana@Members.Example", "name": "Ana", "locale": "fr"}
    created = api.ok(api.post("/v1/members", body))
    assert created == {
        "id": "ana",
        "email": "Ana@members.example",
        "name": "Ana",
        "locale": "fr",
        "reply_to": False,
    }
    updated = api.ok(api.post("/v1/members", {**body, "name": "Ana Lima", "reply_to": True}))
    assert (updated["name"], updated["reply_to"]) == ("Ana Lima", True)
    assert api.ok(api.get("/v1/members/ana")) == updated
    assert count(api.ctx, members) == 1


@pytest.mark.parametrize(
    "name",
    ["Ana\r\nBcc: victim@evil.example", "Ana\nX-Injected: 1", "Ana\u2028Bcc: x", "Ana\tLima"],
)
def test_a_name_that_would_inject_a_header_is_refused_and_nothing_is_stored(
    api: Api, name: str
) -> None:
    body = problem(
        api.post("/v1/members", {"id": "ana", "email": "ana@members.example", "name": name}),
        422,
        "invalid-input",
    )
    assert body["errors"] == {"name": "control characters"}
    assert count(api.ctx, members) == 0


@pytest.mark.parametrize(
    ("name", "problem_key"),
    [
        ("Ana\x85Lima", "control characters"),  # C1 next line
        ("\u202eamiL anA", "control characters"),  # right-to-left override
        ("Ana \u2066Lima\u2069", "control characters"),  # isolate
        ("\u200b", "empty"),  # zero-width space: nothing to show in From or Subject
        ("\u2060\ufeff \u00a0", "empty"),
        ("Re: your invoice", "reply prefix"),
        ("FWD:Ana", "reply prefix"),
        ("aw : Ana", "reply prefix"),
        ("Re[2]: Ana", "reply prefix"),
        # A first invitation would read as a reminder, or as a reply, however written.
        ("Reminder: Ana Lima", "reminder prefix"),
        ("Rappel : Ana Lima", "reminder prefix"),
        ("R\u0435: Ana Lima", "reply prefix"),  # Cyrillic е
        ("RE\uff1aAna", "reply prefix"),  # fullwidth colon
        ("\uff32\uff45: Ana", "reply prefix"),  # fullwidth letters
        # From would show an address the email does not come from.
        ('Ana "The Boss" \\ Lima, <ceo@bank.example>', "address"),
        ("ceo@bank.example", "address"),
        # Dots that look like a full stop between the domain's labels.
        ("support@paypal\ua4f8com", "address"),  # Lisu letter tone mya ti
        ("support@paypal\u00b7com", "address"),  # middle dot
        ("support@paypal\u0701com", "address"),  # Syriac supralinear full stop
    ],
)
def test_a_name_that_would_disguise_the_email_is_refused(
    api: Api, name: str, problem_key: str
) -> None:
    body = problem(
        api.post("/v1/members", {"id": "ana", "email": "ana@members.example", "name": name}),
        422,
        "invalid-input",
    )
    assert body["errors"] == {"name": problem_key}
    assert SAID.get(problem_key, "The name") in body["detail"]
    assert count(api.ctx, members) == 0


# What the refusal says, for the refusals a member may not expect.
SAID = {
    "reminder prefix": "must not start like a reminder",
    "reply prefix": "must not start like a reply",
    "address": "must not contain an email address",
}


@pytest.mark.parametrize(
    ("name", "kept"),
    [
        ("Réa Lima", "Réa Lima"),
        ("Renée", "Renée"),
        ("Tr\u00e2n", "Tr\u00e2n"),
        ("Ana (Re)", "Ana (Re)"),
        ("Ana @ Home", "Ana @ Home"),
        ("Gal·la Puig", "Gal·la Puig"),  # a middle dot that shows no address
        ("ジョン・スミス", "ジョン・スミス"),
        ("RAPPEL Jean", "RAPPEL Jean"),
        ("👩\u200d💻 Ana", "👩\u200d💻 Ana"),  # the joiner makes one emoji: kept
        # Characters that show nothing are dropped, and the answer says what was kept.
        ("عائشة\u200f", "عائشة"),
        ("Ana\u200f Lima\u200b", "Ana Lima"),
    ],
)
def test_names_near_those_refusals_are_kept(api: Api, name: str, kept: str) -> None:
    body = {"id": "ana", "email": "ana@members.example", "name": name}
    assert api.ok(api.post("/v1/members", body))["name"] == kept
    assert api.ok(api.get("/v1/members/ana"))["name"] == kept


def test_bad_fields_are_refused_one_by_one(api: Api) -> None:
    refused = problem(
        api.post(
            "/v1/members",
            {"id": "-bad id", "email": "ana@members.example", "name": "Ana", "extra": 1},
        ),
        422,
        "invalid-request",
    )
    assert set(refused["errors"]) == {"id", "extra"}
    bad_address = problem(
        api.post("/v1/members", {"id": "ana", "email": "lima@@members.example", "name": "Ana"}),
        422,
        "invalid-address",
    )
    assert "lima" not in str(bad_address)
    problem(
        api.post("/v1/members", {"id": "ana", "email": "a@b.example", "name": "A", "locale": "de"}),
        422,
        "invalid-input",
    )
    assert count(api.ctx, members) == 0


@pytest.mark.parametrize(
    "email", ["a\u0000b@example.org", "", " ", "lima@@members.example", "a" * 250 + "@b.example"]
)
def test_a_bad_member_address_names_the_email_field(api: Api, email: str) -> None:
    body = {"id": "ana", "email": email, "name": "Ana"}
    refused = problem(api.post("/v1/members", body), 422, "invalid-address")
    assert list(refused["errors"]) == ["email"]
    assert count(api.ctx, members) == 0


@pytest.mark.parametrize(
    ("field", "values", "kind"),
    [
        # Past 120 visible characters, past the bound on what is sent, and far past it.
        ("name", ["N" * 121, "N" * 140, "N" * 141, "N" * 100_000], "invalid-input"),
        ("name", ["", " "], "invalid-input"),
        ("locale", ["de", "x", "", "d" * 16, "d" * 17, "d" * 100_000], "invalid-input"),
        ("email", ["", "a" * 250 + "@b.example", "a" * 100_000 + "@b.example"], "invalid-address"),
    ],
)
def test_one_error_is_one_problem_type_whatever_the_length(
    api: Api, field: str, values: list[str], kind: str
) -> None:
    """A member name of 121 to 140 characters was `invalid-input` and one of 141 or more
    `invalid-request`, a bound of the schema's standing in front of the domain's check:
    the same error is now the same type, naming the same field, at any length."""
    for value in values:
        body = {"id": "ana", "email": "ana@members.example", "name": "Ana", field: value}
        refused = problem(api.post("/v1/members", body), 422, kind)
        assert list(refused["errors"]) == [field], (len(value), refused)
        assert len(refused["detail"]) < 200
    assert count(api.ctx, members) == 0


def test_a_long_locale_of_a_supported_language_is_taken(api: Api) -> None:
    body = {
        "id": "ana",
        "email": "ana@members.example",
        "name": "Ana",
        "locale": "fr-CA-u-ca-gregory",
    }
    assert api.ok(api.post("/v1/members", body))["locale"] == "fr"


def test_an_unknown_member_is_a_404_that_reveals_nothing(api: Api) -> None:
    answers = [
        api.get("/v1/members/nobody"),
        api.get("/v1/members/someone@else.example"),
        api.post("/v1/members/nobody/login-link"),
        api.get("/v1/members/nobody/contacts"),
        api.get("/v1/members/nobody/invitations"),
        api.get("/v1/members/nobody/export"),
    ]
    bodies = [problem(answer, 404, "member-not-found") for answer in answers]
    assert all(body == bodies[0] for body in bodies)
    assert bodies[0]["detail"] == "No such member."
    assert "nobody" not in str(bodies)
    assert "someone" not in str(bodies)


def test_a_sign_in_link_names_the_member_for_a_short_while(api: Api) -> None:
    api.ok(api.post("/v1/members", {"id": "ana", "email": "ana@members.example", "name": "A"}))
    link = api.ok(api.post("/v1/members/ana/login-link"))
    prefix = "https://agora.test/member/sign-in/"
    assert link["url"].startswith(prefix)
    token = link["url"].removeprefix(prefix)
    secret = api.ctx.settings.secret
    member, link_id = read_sign_in_token(secret, token, MEMBER_LINK_MAX_AGE_SECONDS)
    assert member == "ana"
    # Each link is one of a kind, even two made in the same second: it can be used once.
    again = api.ok(api.post("/v1/members/ana/login-link"))["url"].removeprefix(prefix)
    assert read_sign_in_token(secret, again)[1] != link_id
    # Good for signing in only: not an unsubscribe or join link, and not for long.
    with pytest.raises(NotFound):
        read_token(secret, Scope.UNSUBSCRIBE, token)
    with pytest.raises(NotFound):
        read_token(secret, Scope.JOIN, token)
    old = URLSafeTimedSerializer(secret, salt="courtois.member")
    expired = old.dumps("ana")
    with pytest.raises(NotFound):
        read_token(secret, Scope.MEMBER, expired, max_age=-1)
    assert make_token(secret, Scope.MEMBER, "ana") != make_token(secret, Scope.WHY, "ana")


def test_the_export_never_tells_why_a_recipient_is_unavailable(api: Api) -> None:
    """The member's ledger entries come as the member may read them (invariant 11): a
    decision without the admins' reasons, an opt-out and a bounce as one verdict; a
    suppression (who complained, who bounced) is not theirs to read."""
    api.ok(api.post("/v1/members", {"id": "ana", "email": "ana@members.example", "name": "Ana"}))
    unsubscribe(api.ctx, api.ctx.digest_email("gone@example.org"), api.clock.now)
    mailed_before(api.ctx, "dead@example.org", api.clock.now)
    bounce = BounceReport(
        "t", "hard_bounce", (BouncedRecipient("dead@example.org", "5.1.1", True),)
    )
    apply_bounce(api.ctx, bounce, api.clock.now)
    preview_and_invite(api, ["gone@example.org", "dead@example.org", "fine@example.org"])
    exported = api.ok(api.get("/v1/members/ana/export"))
    text = json.dumps(exported)
    for private in ("not-unsubscribed", "not-suppressed", "reasons", "unsubscribed from"):
        assert private not in text, private
    decided = [e for e in exported["ledger"] if e["event"] == "decision"]
    assert len(decided) == 3
    assert all(e["redacted"] is True for e in decided)
    outcomes = sorted(e["payload"]["rules"]["recipient-available"] for e in decided)
    assert outcomes == ["allow", "deny", "deny"]
    assert {e["event"] for e in exported["ledger"]} >= {"member.registered", "consent.given"}
