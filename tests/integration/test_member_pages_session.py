"""Member pages: signing in with the platform's link, the session cookie's flags, the one
plain answer to every bad link or session, CSRF and origin checks that change nothing, and
signing out; over real HTTP, on both engines."""

from __future__ import annotations

import time
from datetime import timedelta
from http.cookies import SimpleCookie

import httpx
import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from live_app import live_site
from member_pages_support import (
    add_member,
    contact_ids,
    import_some,
    member_session,
    sign_in_link,
    signed_in,
)
from sqlalchemy import func, select

from conftest import T0
from courtois.services.context import Context
from courtois.services.sign_in_links import KEPT
from courtois.store.tables import sign_in_links_used
from courtois.tokens import (
    MEMBER_LINK_MAX_AGE_SECONDS,
    Scope,
    make_sign_in_token,
    make_token,
    read_sign_in_token,
)
from courtois.web.pages.member_session import COOKIE, MAX_AGE_SECONDS, SALT

EVERY_PAGE = {
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def _old(secret: bytes, salt: str, value: object, age: int) -> str:
    """`value` signed as if `age` seconds ago: how an old link or cookie looks."""

    class Then(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - age

    return URLSafeTimedSerializer(secret, salt=salt, signer=Then).dumps(value)


def _cookie(response: httpx.Response) -> SimpleCookie:
    jar: SimpleCookie = SimpleCookie()
    jar.load(response.headers["set-cookie"])
    return jar


def test_a_sign_in_link_opens_a_session_with_protective_flags(ctx: Context) -> None:
    add_member(ctx)
    with live_site(ctx) as site, httpx.Client(base_url=site.base_url) as http:
        response = http.get(sign_in_link(site, "ana"))
        assert response.status_code == 303
        assert response.headers["location"] == "/member/"
        for name, value in EVERY_PAGE.items():
            assert response.headers[name] == value
        morsel = _cookie(response)[COOKIE]
        assert morsel["httponly"] is True
        assert morsel["samesite"] == "lax"
        assert morsel["path"] == "/member"
        assert morsel["max-age"] == str(MAX_AGE_SECONDS) == "43200"
        assert not morsel["secure"]  # served over http here: a Secure cookie would never return
        page = http.get("/member/", headers={"Cookie": f"{COOKIE}={morsel.value}"})
        assert page.status_code == 200
        assert "Ana Lima" in page.text
        assert "<script" not in page.text.lower()
    # Member pages tell only their own origin where a form was posted from, so the browser
    # sends a real Origin (with no referrer at all it sends `Origin: null`).
    assert page.headers["referrer-policy"] == "same-origin"
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["content-security-policy"].startswith("default-src 'none';")
    assert "script-src" not in page.headers["content-security-policy"]


def test_the_cookie_is_secure_when_the_public_url_is_https(ctx: Context) -> None:
    add_member(ctx)
    with live_site(ctx, base_url="https://agora.test") as site, httpx.Client() as http:
        response = http.get(site.url(sign_in_link(site, "ana")))
        assert response.status_code == 303
        assert _cookie(response)[COOKIE]["secure"] is True


def test_every_bad_link_gets_the_same_plain_page(ctx: Context) -> None:
    add_member(ctx)
    secret = ctx.settings.secret
    good = make_sign_in_token(secret, "ana")
    link_id = read_sign_in_token(secret, good)[1]
    expired = _old(secret, "courtois.member", f"ana {link_id}", MEMBER_LINK_MAX_AGE_SECONDS + 5)
    used = make_sign_in_token(secret, "ana")
    bad = {
        "tampered": good[:-3] + ("aaa" if not good.endswith("aaa") else "bbb"),
        "other scope": make_token(secret, Scope.WHY, "ana"),
        "expired": expired,
        "no such member": make_sign_in_token(secret, "nobody"),
        "no link id": make_token(secret, Scope.MEMBER, "ana"),
        "used before": used,
        "garbage": "not-a-token",
    }
    with live_site(ctx) as site, httpx.Client(base_url=site.base_url) as http:
        assert http.get(f"/member/sign-in/{used}").status_code == 303
        http.cookies.clear()
        answers = {name: http.get(f"/member/sign-in/{token}") for name, token in bad.items()}
        # The same link signed just now works: only its age was wrong.
        fresh = http.get(f"/member/sign-in/{good}")
    assert fresh.status_code == 303
    bodies = {answer.text for answer in answers.values()}
    assert len(bodies) == 1, "the causes must not be told apart"
    for name, answer in answers.items():
        assert answer.status_code == 401, name
        assert COOKIE + '=""' in answer.headers.get("set-cookie", ""), name  # dropped
        for header, value in EVERY_PAGE.items():
            assert answer.headers[header] == value
    assert "Please sign in" in bodies.pop()


def test_a_sign_in_link_opens_one_session_once(ctx: Context) -> None:
    """A link seen by someone else (a shared computer's history) opens nothing once used;
    the ids of used links are kept only while a link could still be valid."""
    add_member(ctx)
    with live_site(ctx) as site:
        path = sign_in_link(site, "ana")
        with httpx.Client(base_url=site.base_url) as member:
            assert member.get(path).status_code == 303
            assert member.get("/member/").status_code == 200
        with httpx.Client(base_url=site.base_url) as stranger:
            again = stranger.get(path)
            assert again.status_code == 401
            assert COOKIE not in stranger.cookies
            assert stranger.get("/member/").status_code == 401
        # A new link from the platform still works.
        with httpx.Client(base_url=site.base_url) as member:
            assert member.get(sign_in_link(site, "ana")).status_code == 303
        assert _used_links(ctx) == 2
        # Each use forgets the links too old to be used anyway.
        site.clock.now = T0 + KEPT - timedelta(minutes=1)
        with httpx.Client(base_url=site.base_url) as member:
            assert member.get(sign_in_link(site, "ana")).status_code == 303
        assert _used_links(ctx) == 3
        site.clock.now = T0 + KEPT + timedelta(minutes=1)
        with httpx.Client(base_url=site.base_url) as member:
            assert member.get(sign_in_link(site, "ana")).status_code == 303
        assert _used_links(ctx) == 2


def _used_links(ctx: Context) -> int:
    with ctx.engine.connect() as connection:
        return int(
            connection.execute(select(func.count()).select_from(sign_in_links_used)).scalar_one()
        )


def test_pages_need_a_valid_session(ctx: Context) -> None:
    add_member(ctx)
    secret = ctx.settings.secret
    stale = _old(secret, SALT, {"m": "ana", "n": "x" * 24}, MAX_AGE_SECONDS + 5)
    forged = URLSafeTimedSerializer(b"another-secret-0123456789", salt=SALT).dumps(
        {"m": "ana", "n": "x" * 24}
    )
    young = _old(secret, SALT, {"m": "ana", "n": "x" * 24}, MAX_AGE_SECONDS - 60)
    with live_site(ctx) as site, httpx.Client(base_url=site.base_url) as http:
        for path in ("/member/", "/member/contacts", "/member/import", "/member/invite"):
            assert http.get(path).status_code == 401, path
        assert http.get("/member/export.json").status_code == 401
        assert http.get("/member/", headers={"Cookie": f"{COOKIE}={stale}"}).status_code == 401
        assert http.get("/member/", headers={"Cookie": f"{COOKIE}={forged}"}).status_code == 401
        assert http.get("/member/", headers={"Cookie": f"{COOKIE}={young}"}).status_code == 200


@pytest.mark.parametrize(
    "how",
    [
        "no token",
        "wrong token",
        "other session's token",
        "other origin",
        "null origin",
        "cross-site",
    ],
)
def test_a_post_without_this_sessions_token_or_from_elsewhere_changes_nothing(
    ctx: Context, how: str
) -> None:
    add_member(ctx)
    add_member(ctx, "bruno")
    import_some(ctx, "ana", 3)
    with signed_in(ctx) as ana, member_session(ana.site, "bruno") as bruno:
        token = ana.csrf()
        headers: dict[str, str] = {}
        data: dict[str, str] = {"csrf": token}
        if how == "no token":
            data = {}
        elif how == "wrong token":
            data = {"csrf": token[:-1] + ("0" if token[-1] != "0" else "1")}
        elif how == "other session's token":
            data = {"csrf": bruno.csrf()}
        elif how == "other origin":
            headers = {"Origin": "https://evil.example"}
        elif how == "null origin":  # a sandboxed frame or data: page elsewhere
            headers = {"Origin": "null"}
        else:
            headers = {"Sec-Fetch-Site": "cross-site"}
        refused = ana.http.post("/member/contacts/delete", data=data, headers=headers)
        assert refused.status_code == 403
        assert "Nothing was changed" in refused.text
        assert len(contact_ids(ctx, "ana")) == 3
        # The same form, as the page itself posts it, goes through.
        same_site = {"Origin": ana.site.base_url, "Sec-Fetch-Site": "same-origin"}
        done = ana.post("/member/contacts/delete", headers=same_site)
        assert done.status_code == 303
        assert contact_ids(ctx, "ana") == []


def test_signing_out_drops_the_cookie(ctx: Context) -> None:
    add_member(ctx)
    with signed_in(ctx) as ana:
        response = ana.post("/member/sign-out")
        assert response.status_code == 200
        assert "You are signed out" in response.text
        morsel = _cookie(response)[COOKIE]
        assert morsel.value == ""
        assert morsel["max-age"] == "0"
        assert morsel["path"] == "/member"
        assert ana.get("/member/").status_code == 401


def test_signing_out_ends_every_copy_of_the_session(ctx: Context) -> None:
    """The cookie copied elsewhere (another device, a shared computer's profile) stops too:
    neither a page nor a form with its token works after the member signed out; a new link
    opens a new session."""
    add_member(ctx)
    import_some(ctx, "ana", 3)
    with live_site(ctx, T0) as site:
        with member_session(site) as ana:
            copy = httpx.Client(base_url=site.base_url, follow_redirects=False, timeout=30)
            copy.cookies.set(COOKIE, ana.http.cookies[COOKIE], path="/member")
            token = ana.csrf()
            assert copy.get("/member/").status_code == 200
            assert ana.post("/member/sign-out").status_code == 200
            assert copy.get("/member/").status_code == 401
            deleting = copy.post("/member/contacts/delete", data={"csrf": token})
            assert deleting.status_code == 401
            copy.close()
        assert len(contact_ids(ctx, "ana")) == 3
        with member_session(site) as again:
            assert again.get("/member/").status_code == 200
