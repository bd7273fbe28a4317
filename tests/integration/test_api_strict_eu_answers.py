"""strict-eu through the host API: the platform sends no email, the member shares each
invitation themselves. Its answer says so without contradicting itself (status `sent`,
decision allowed, the strict-eu verdict still `deny` for the platform's own email), a
replay is the same answer, and `GET /v1/invitations/{id}` reads its decision alike."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from api_support import API_KEY
from live_app import LiveSite, strict_eu_site

from courtois.services.context import Context

BO = "bo@example.org"
NOTE = "Viens grimper avec nous : jeudi !"


@pytest.fixture
def site(ctx: Context) -> Iterator[LiveSite]:
    with strict_eu_site(ctx, api_key=API_KEY) as running:
        yield running


@pytest.fixture
def api(site: LiveSite) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=site.base_url, headers=headers, timeout=30) as client:
        assert client.post(
            "/v1/members",
            json={"id": "ana", "email": "ana@members.example", "name": "Ana Lima", "locale": "fr"},
        ).is_success
        yield client


def _invite(api: httpx.Client, key: str, **options: Any) -> tuple[httpx.Response, dict[str, Any]]:
    """Preview, then consent to it, with an Idempotency-Key: the answer and the body sent."""
    shown = api.post("/v1/members/ana/invitations/preview", json={"emails": [BO], **options})
    assert shown.status_code == 200, shown.text
    preview = shown.json()
    body = {
        "emails": [BO],
        **options,
        "preview_hash": preview["preview_hash"],
        "consent": {"text_shown": preview["consent_text"], "ip": "192.0.2.7", "user_agent": "t"},
    }
    answer = api.post("/v1/members/ana/invitations", json=body, headers={"Idempotency-Key": key})
    assert answer.status_code == 201, answer.text
    return answer, body


SHARE = ("share_link", "share_subject", "share_text")


def test_a_shared_invitation_reads_allowed_to_be_shared_and_a_replay_is_the_same(
    api: httpx.Client,
) -> None:
    answer, body = _invite(api, "first", note=NOTE, locale="fr")
    (item,) = answer.json()["invitations"]
    assert item["status"] == "sent"
    assert all(item[field] for field in SHARE)
    # Allowed: to be shared by the member. The platform's own email stays refused.
    assert (item["decision"]["allowed"], item["decision"]["outcome"]) == (True, "allow")
    verdicts = {v["rule"]: v["outcome"] for v in item["decision"]["verdicts"]}
    assert verdicts["strict-eu-no-email"] == "deny"

    again = api.post("/v1/members/ana/invitations", json=body, headers={"Idempotency-Key": "first"})
    assert (again.status_code, again.json()) == (201, answer.json())

    # The invitation read back says the same of the decision it keeps.
    detail = api.get(f"/v1/invitations/{item['id']}").json()
    (decided,) = detail["decisions"]
    assert (decided["allowed"], decided["outcome"]) == (True, "allow")
    assert decided["verdicts"] == item["decision"]["verdicts"]


def test_explain_answers_as_invite_would(api: httpx.Client) -> None:
    """The operator's explain said `allowed: false, outcome: deny` where `invite` answers
    allowed, to be shared by the member: it decides as `invite` and reads alike, each rule's
    full reason kept."""
    answer = api.post("/v1/members/ana/explain", json={"email": BO})
    assert answer.status_code == 200, answer.text
    explained = answer.json()
    assert (explained["allowed"], explained["outcome"]) == (True, "allow")
    by_rule = {v["rule"]: v["outcome"] for v in explained["verdicts"]}
    assert by_rule["strict-eu-no-email"] == "deny"
    invited, _ = _invite(api, "explain-then-invite")
    (item,) = invited.json()["invitations"]
    assert {k: item["decision"][k] for k in ("allowed", "outcome")} == {
        "allowed": explained["allowed"],
        "outcome": explained["outcome"],
    }
    # Once invited, the same address is refused by another rule too: then it reads deny.
    again = api.post("/v1/members/ana/explain", json={"email": BO}).json()
    assert (again["allowed"], again["outcome"]) == (False, "deny")
