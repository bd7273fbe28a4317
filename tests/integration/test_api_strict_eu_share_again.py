"""strict-eu: the link, subject and text of an invitation the member sends themselves are
given again by `GET /v1/invitations/{id}` and on the member's dashboard while it is open
(sent, not expired), after the POST's answer is gone with its Idempotency-Key. The text
is the POST's, but for its tokens, signed anew (a token carries the second it was signed),
and the new links act on the same invitation. Nothing is given once the invitation is
closed, for one the platform emailed itself, under a revoked consent, or once the text
would no longer be the one the member consented to. Over real HTTP, on both engines."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta
from html import unescape
from typing import Any

import httpx
import pytest
from api_support import API_KEY
from live_app import LiveSite, strict_eu_site
from member_pages_support import member_session
from pages_site import invite_and_deliver
from sqlalchemy import select
from support import add_members, without_kept_words

from courtois.services.context import Context
from courtois.store.tables import recipients

BO = "bo@example.org"
NOTE = "Viens grimper avec nous : jeudi !"
SHARE = ("share_link", "share_subject", "share_text")
NOTHING = [None, None, None]
TOKEN = re.compile(r"/(why|u|join)/([A-Za-z0-9_.-]+)")


@pytest.fixture
def site(ctx: Context) -> Iterator[LiveSite]:
    with strict_eu_site(ctx, api_key=API_KEY) as running:
        yield running


@pytest.fixture
def api(site: LiveSite) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=site.base_url, headers=headers, timeout=30) as client:
        for member_id, name, locale in (("ana", "Ana Lima", "fr"), ("ben", "Ben Hale", "en")):
            member = {"id": member_id, "email": f"{member_id}@members.example", "name": name}
            assert client.post("/v1/members", json={**member, "locale": locale}).is_success
        yield client


def _invite(api: httpx.Client, member_id: str = "ana", **options: Any) -> dict[str, Any]:
    """Preview, then consent to it, with an Idempotency-Key: the answer's invitation."""
    base = f"/v1/members/{member_id}/invitations"
    shown = api.post(f"{base}/preview", json={"emails": [BO], **options})
    assert shown.status_code == 200, shown.text
    preview = shown.json()
    body = {
        "emails": [BO],
        **options,
        "preview_hash": preview["preview_hash"],
        "consent": {"text_shown": preview["consent_text"], "ip": "192.0.2.7", "user_agent": "t"},
    }
    answer = api.post(base, json=body, headers={"Idempotency-Key": f"key-{member_id}"})
    assert answer.status_code == 201, answer.text
    (item,) = answer.json()["invitations"]
    assert item["status"] == "sent"
    assert all(item[field] for field in SHARE)
    return dict(item)


def _shared(api: httpx.Client, invitation_id: str) -> list[Any]:
    detail = api.get(f"/v1/invitations/{invitation_id}")
    assert detail.status_code == 200, detail.text
    return [detail.json()[field] for field in SHARE]


def _tokens(text: str) -> dict[str, str]:
    """Each kind of link in the text (why, u, join) and its token; one token per kind."""
    found: dict[str, set[str]] = {}
    for kind, token in TOKEN.findall(text):
        found.setdefault(kind, set()).add(token)
    assert all(len(tokens) == 1 for tokens in found.values()), found
    return {kind: tokens.pop() for kind, tokens in found.items()}


def _untokened(text: str) -> str:
    return TOKEN.sub(lambda found: f"/{found.group(1)}/TOKEN", text)


def _same_but_tokens(again: list[Any], first: dict[str, Any]) -> None:
    """The GET's link, subject and text are the POST's, with fresh tokens in the links."""
    link, subject, text = again
    assert subject == first["share_subject"]
    assert _untokened(text) == _untokened(first["share_text"])
    assert _untokened(link) == _untokened(first["share_link"])
    # Every line but the links is the POST's, word for word.
    lines = list(zip(text.splitlines(), first["share_text"].splitlines(), strict=True))
    assert all(new == old for new, old in lines if not TOKEN.search(old))
    assert _tokens(text).keys() == _tokens(first["share_text"]).keys() == {"why", "u", "join"}
    assert link == f"{first['share_link'].rsplit('/join/', 1)[0]}/join/{_tokens(text)['join']}"


def test_the_text_is_given_again_with_links_that_act_on_the_invitation(
    site: LiveSite, api: httpx.Client
) -> None:
    item = _invite(api, note=NOTE, locale="fr")
    assert NOTE in item["share_text"]
    # Two days later the POST's answer is gone with its key: the GET gives the text again.
    site.clock.now += timedelta(days=2)
    # A token carries the (wall-clock) second it was signed: past it, each is signed anew.
    time.sleep(1.1)
    again = _shared(api, item["id"])
    _same_but_tokens(again, item)
    tokens = _tokens(again[2])
    assert not set(tokens.values()) & set(_tokens(item["share_text"]).values())
    with httpx.Client(base_url=site.base_url, timeout=30, follow_redirects=False) as browser:
        # The "why" link opens this invitation's page, and offers its choices.
        why = browser.get(f"/why/{tokens['why']}")
        assert why.status_code == 200
        assert "Ana Lima" in why.text
        assert 'name="action" value="decline"' in why.text
        # The personal link accepts it.
        joined = browser.get(f"/join/{tokens['join']}")
        assert joined.status_code in (302, 303, 307), joined.text
        assert api.get(f"/v1/invitations/{item['id']}").json()["status"] == "accepted"
        # The stop link unsubscribes in one click.
        stopped = browser.post(f"/u/{tokens['u']}", data={"List-Unsubscribe": "One-Click"})
        assert stopped.status_code == 200, stopped.text
    with site.ctx.engine.connect() as connection:
        unsubscribed_at = connection.execute(
            select(recipients.c.unsubscribed_at).where(
                recipients.c.digest == site.ctx.digest_email(BO)
            )
        ).scalar_one()
    assert unsubscribed_at == site.clock.now
    # Accepted, it is no longer the member's to send.
    assert _shared(api, item["id"]) == NOTHING


def test_nothing_is_given_once_the_invitation_expired(site: LiveSite, api: httpx.Client) -> None:
    item = _invite(api, note=NOTE)
    expires_at = api.get(f"/v1/invitations/{item['id']}").json()["expires_at"]
    site.clock.now = site.clock.now.fromisoformat(expires_at) - timedelta(seconds=1)
    _same_but_tokens(_shared(api, item["id"]), item)
    site.clock.now += timedelta(seconds=1)
    assert _shared(api, item["id"]) == NOTHING


def test_nothing_is_given_once_the_invitation_is_withdrawn(
    site: LiveSite, api: httpx.Client
) -> None:
    item = _invite(api)
    site.clock.now += timedelta(hours=1)
    withdrawn = api.post(f"/v1/invitations/{item['id']}/withdraw")
    assert withdrawn.status_code == 200, withdrawn.text
    assert _shared(api, item["id"]) == NOTHING


def test_nothing_is_given_under_a_revoked_consent(site: LiveSite, api: httpx.Client) -> None:
    item = _invite(api)
    consent_id = api.get(f"/v1/invitations/{item['id']}").json()["consent_id"]
    site.clock.now += timedelta(hours=1)
    revoked = api.post(f"/v1/consents/{consent_id}/revoke")
    assert revoked.is_success, revoked.text
    assert _shared(api, item["id"]) == NOTHING


def test_the_text_kept_is_given_as_consented_to_whatever_changed(
    site: LiveSite, api: httpx.Client
) -> None:
    """The consent kept the words previewed: renamed since, the member is still given the
    text they consented to, naming them as it did."""
    item = _invite(api, note=NOTE)
    site.clock.now += timedelta(seconds=2)
    member = {"id": "ana", "email": "ana@members.example", "locale": "fr"}
    assert api.post("/v1/members", json={**member, "name": "Ana Lima-Souza"}).is_success
    again = _shared(api, item["id"])
    _same_but_tokens(again, item)
    assert "Lima-Souza" not in again[2]


def test_nothing_is_given_once_it_would_not_be_the_text_consented_to(
    ctx: Context, site: LiveSite, api: httpx.Client
) -> None:
    """A consent that kept no words (given before schema 0017): the member renamed
    themselves, the text rebuilt would name them otherwise than the one they previewed and
    consented to, so none is given; named as before, it is again."""
    item = _invite(api, note=NOTE)
    without_kept_words(ctx)
    site.clock.now += timedelta(seconds=2)
    _same_but_tokens(_shared(api, item["id"]), item)
    member = {"id": "ana", "email": "ana@members.example", "locale": "fr"}
    assert api.post("/v1/members", json={**member, "name": "Ana Lima-Souza"}).is_success
    assert _shared(api, item["id"]) == NOTHING
    assert api.post("/v1/members", json={**member, "name": "Ana Lima"}).is_success
    _same_but_tokens(_shared(api, item["id"]), item)


def test_nothing_is_given_for_an_invitation_the_platform_emailed(ctx: Context) -> None:
    """Sent by the platform's own email before the profile became strict-eu: the member
    has nothing to send."""
    add_members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])
    (invitation_id,) = mail.ids
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with (
        strict_eu_site(ctx, api_key=API_KEY) as site,
        httpx.Client(base_url=site.base_url, headers=headers, timeout=30) as api,
    ):
        site.clock.now += timedelta(days=1)
        assert api.get(f"/v1/invitations/{invitation_id}").json()["status"] == "sent"
        assert _shared(api, invitation_id) == NOTHING


def _dashboard_share(site: LiveSite, member_id: str, invitation_id: str) -> tuple[str, ...]:
    """The subject, text and link the member's dashboard shows beside the invitation, and
    the labels of the page."""
    with member_session(site, member_id) as member:
        page = member.get("/member/").text
    text = re.search(rf'<textarea id="share-{invitation_id}"[^>]*>(.*?)</textarea>', page, re.S)
    subject = re.search(rf'<input type="text" id="subject-{invitation_id}" value="([^"]*)"', page)
    link = re.search(r"<code>([^<]*/join/[^<]*)</code>", page)
    assert text is not None, page
    assert subject is not None, page
    assert link is not None, page
    assert "readonly" in text.group(0)
    return unescape(subject.group(1)), unescape(text.group(1)), unescape(link.group(1)), page


@pytest.mark.parametrize(
    ("member_id", "words"),
    [
        (
            "ben",
            [
                "Subject of the email you send",
                "Text to send from your own mailbox",
                "to send yourself, with your personal link: <code>",
            ],
        ),
        (
            "ana",
            [
                "Objet de l'e-mail que vous envoyez",
                "Texte à envoyer depuis votre propre messagerie",
                "à envoyer vous-même, avec votre lien personnel\u00a0: <code>",
            ],
        ),
    ],
)
def test_the_dashboard_shows_the_text_while_the_invitation_is_open(
    site: LiveSite, api: httpx.Client, member_id: str, words: list[str]
) -> None:
    item = _invite(api, member_id, note="See you Thursday")
    site.clock.now += timedelta(days=2)
    subject, text, link, page = _dashboard_share(site, member_id, item["id"])
    for said in words:
        assert said in unescape(page)
    _same_but_tokens([link, subject, text], item)
    # The link in the status column is the one in the text.
    assert link.rsplit("/join/", 1)[1] == _tokens(text)["join"]
    # Expired: no text any more.
    expires_at = api.get(f"/v1/invitations/{item['id']}").json()["expires_at"]
    site.clock.now = site.clock.now.fromisoformat(expires_at)
    with member_session(site, member_id) as member:
        closed = member.get("/member/").text
    assert f'id="share-{item["id"]}"' not in closed
    assert "<textarea" not in closed
