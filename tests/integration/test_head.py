"""HEAD is answered wherever GET is (RFC 9110, section 9.1: general-purpose servers support
it): the API, `/healthz`, `/metrics`, the recipient pages with real and forged tokens, and
the member and admin pages, each with the GET's status and headers and no body. Link
scanners send HEAD too, so a HEAD changes nothing, `/join` included (its GET accepts). Over
real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from member_pages_support import member_session
from pages_site import SENT_AT, invite_and_deliver
from security_support import Site, admin_session, served, snapshot
from support import add_members, invitation

from courtois.services.context import Context

BO = "bo@example.com"
FORGED = "eyJmb3JnZWQiOnRydWV9.forged.token"
# What may differ between two answers to the same request: the clock, a cookie's fresh
# nonce, and a length that follows the per-session CSRF token.
VOLATILE = {"date", "set-cookie", "content-length"}


@pytest.fixture
def site(ctx: Context) -> Iterator[Site]:
    with served(ctx, SENT_AT) as running:
        yield running


def assert_head_like_get(client: httpx.Client, path: str, status: int) -> httpx.Response:
    """The HEAD of `path` answers as its GET does, without a body."""
    got = client.get(path)
    head = client.head(path)
    assert got.status_code == status, (path, got.status_code, got.text[:300])
    assert (head.status_code, head.content) == (status, b""), (path, head.status_code)

    def stable(response: httpx.Response) -> dict[str, str]:
        return {k: v for k, v in response.headers.items() if k.lower() not in VOLATILE}

    assert stable(head) == stable(got), path
    return head


def test_the_api_health_and_metrics_answer_head_as_get(site: Site) -> None:
    add_members(site.ctx)
    before = snapshot(site.ctx)
    for path, status in (
        ("/v1/members/ana", 200),
        ("/v1/members/ana/contacts", 200),
        ("/v1/members/ana/invitations", 200),
        ("/v1/members/ana/export", 200),
        ("/v1/members/nobody", 404),
        ("/v1/members/ana/contacts?cursor=WzIxNDc0ODM2NDhd", 422),
        ("/healthz", 200),
        ("/metrics", 200),
        ("/openapi.json", 200),
    ):
        assert_head_like_get(site.api, path, status)
    head = site.api.head("/v1/members/ana")
    assert head.headers["content-type"] == "application/json"
    assert int(head.headers["content-length"]) == len(site.api.get("/v1/members/ana").content)
    with site.client() as stranger:
        refused = stranger.head("/v1/members/ana")
        assert (refused.status_code, refused.content) == (401, b"")
        assert refused.headers["www-authenticate"] == "Bearer"
    assert snapshot(site.ctx) == before


def test_a_method_not_allowed_names_head_beside_get(site: Site) -> None:
    """The 405's `Allow` lists what the path answers, HEAD now among it; a HEAD of a path
    that answers no GET is refused as its GET is."""
    wrong = site.api.put("/v1/members/ana/contacts")
    assert (wrong.status_code, wrong.headers["allow"]) == (405, "DELETE, GET, HEAD")
    posts_only = site.api.head("/v1/joined")
    assert (posts_only.status_code, posts_only.headers["allow"]) == (405, "POST")
    assert posts_only.content == b""


def test_recipient_pages_answer_head_and_it_changes_nothing(site: Site) -> None:
    add_members(site.ctx)
    (mail,) = invite_and_deliver(site.ctx, "ana", [BO])
    (invitation_id,) = mail.ids
    assert invitation(site.ctx, invitation_id).state == "sent"
    before = snapshot(site.ctx)
    with site.client() as scanner:
        for path, status in (
            (f"/u/{mail.tokens.unsubscribe}", 200),
            (f"/why/{mail.tokens.why}", 200),
            (f"/u/{FORGED}", 404),
            (f"/why/{FORGED}", 404),
            (f"/join/{FORGED}", 404),
            ("/welcome", 200),
            ("/", 200),
            ("/problems/invalid-cursor", 200),
            ("/no/such/page", 404),
        ):
            assert_head_like_get(scanner, path, status)
        # `/join`'s GET accepts: its HEAD says where the GET leads and accepts nothing.
        join = scanner.head(f"/join/{mail.tokens.join[0]}")
        assert (join.status_code, join.content) == (303, b"")
        assert f"invitation={invitation_id}" in join.headers["location"]
    assert snapshot(site.ctx) == before
    assert invitation(site.ctx, invitation_id).state == "sent"
    with site.client() as recipient:
        accepted = recipient.get(f"/join/{mail.tokens.join[0]}")
    assert accepted.headers["location"] == join.headers["location"]
    assert invitation(site.ctx, invitation_id).state == "accepted"


def test_member_and_admin_pages_answer_head_as_get(site: Site) -> None:
    add_members(site.ctx)
    with member_session(site.live) as ana:
        before = snapshot(site.ctx)
        for path in (
            "/member/",
            "/member/invite",
            "/member/import",
            "/member/contacts",
            "/member/export.json",
        ):
            assert_head_like_get(ana.http, path, 200)
        assert_head_like_get(ana.http, "/member", 303)
        assert snapshot(site.ctx) == before
    with site.client() as stranger:
        assert_head_like_get(stranger, "/member/", stranger.get("/member/").status_code)
        assert_head_like_get(stranger, "/admin/sign-in", 200)
    with admin_session(site) as (admin, _csrf):
        for path in (
            "/admin",
            "/admin/lookup",
            "/admin/ledger",
            "/admin/webhooks",
            "/admin/unknown",
        ):
            assert_head_like_get(admin, path, 200)
    assert snapshot(site.ctx) == before
