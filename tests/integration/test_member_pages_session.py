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
    follow_sign_in_link,
    import_some,
    member_session,
    sign_in_link,
    signed_in,
)
from sqlalchemy import func, select

from conftest import T0
from courtois.services.context import Context
from courtois.services.member_erasure import erase_member
from courtois.services.members import register_member
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

# What a browser sends with a form posted from one of this site's own pages.
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}

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
        response = follow_sign_in_link(http, sign_in_link(site, "ana"))
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
        response = follow_sign_in_link(http, site.url(sign_in_link(site, "ana")))
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
        assert follow_sign_in_link(http, f"/member/sign-in/{used}").status_code == 303
        http.cookies.clear()
        answers = {name: http.get(f"/member/sign-in/{token}") for name, token in bad.items()}
        posted = {
            name: http.post(f"/member/sign-in/{token}", headers=SAME_ORIGIN)
            for name, token in bad.items()
        }
        # The same link signed just now works: only its age was wrong.
        fresh = follow_sign_in_link(http, f"/member/sign-in/{good}")
    assert fresh.status_code == 303
    bodies = {answer.text for answer in [*answers.values(), *posted.values()]}
    assert len(bodies) == 1, "the causes must not be told apart"
    for name, answer in [*answers.items(), *posted.items()]:
        assert answer.status_code == 401, name
        assert "set-cookie" not in answer.headers, name  # a link says nothing of the session
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
            assert follow_sign_in_link(member, path).status_code == 303
            assert member.get("/member/").status_code == 200
        with httpx.Client(base_url=site.base_url) as stranger:
            assert stranger.post(path, headers=SAME_ORIGIN).status_code == 401
            again = stranger.get(path)
            assert again.status_code == 401
            assert COOKIE not in stranger.cookies
            assert stranger.get("/member/").status_code == 401
        # A new link from the platform still works.
        with httpx.Client(base_url=site.base_url) as member:
            assert follow_sign_in_link(member, sign_in_link(site, "ana")).status_code == 303
        assert _used_links(ctx) == 2
        # Each use forgets the links too old to be used anyway.
        site.clock.now = T0 + KEPT - timedelta(minutes=1)
        with httpx.Client(base_url=site.base_url) as member:
            assert follow_sign_in_link(member, sign_in_link(site, "ana")).status_code == 303
        assert _used_links(ctx) == 3
        site.clock.now = T0 + KEPT + timedelta(minutes=1)
        with httpx.Client(base_url=site.base_url) as member:
            assert follow_sign_in_link(member, sign_in_link(site, "ana")).status_code == 303
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
        refused = ana.http.post(
            "/member/contacts/delete", data={**data, "confirm": "yes"}, headers=headers
        )
        assert refused.status_code == 403
        assert "Nothing was changed" in refused.text
        assert len(contact_ids(ctx, "ana")) == 3
        # The same form, as the page itself posts it, goes through.
        same_site = {"Origin": ana.site.base_url, "Sec-Fetch-Site": "same-origin"}
        done = ana.post("/member/contacts/delete", {"confirm": "yes"}, headers=same_site)
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
            deleting = copy.post("/member/contacts/delete", data={"csrf": token, "confirm": "yes"})
            assert deleting.status_code == 401
            copy.close()
        assert len(contact_ids(ctx, "ana")) == 3
        with member_session(site) as again:
            assert again.get("/member/").status_code == 200


def test_erasing_the_member_ends_their_sessions_and_links(ctx: Context) -> None:
    """An open session, a form with its token and an unused sign-in link all stop once
    the member is erased; nothing of theirs is shown or changed."""
    add_member(ctx)
    import_some(ctx, "ana", 3)
    with live_site(ctx, T0) as site:
        unused = sign_in_link(site, "ana")
        with member_session(site) as ana:
            token = ana.csrf()
            erase_member(ctx, "ana", T0 + timedelta(minutes=1))
            assert ana.get("/member/").status_code == 401
            pasting = ana.post(
                "/member/import/paste",
                {"addresses": "new.one@example.org"},
                token=token,
                headers=SAME_ORIGIN,
            )
            assert pasting.status_code == 401
        with httpx.Client(base_url=site.base_url, follow_redirects=False) as http:
            assert follow_sign_in_link(http, unused).status_code == 401
    assert contact_ids(ctx, "ana") == []


def _add_bruno(ctx: Context) -> None:
    register_member(ctx, "bruno", "bruno@members.example", "Bruno Braz", "en", T0)


def test_opening_a_sign_in_link_only_asks_which_account_to_continue_as(ctx: Context) -> None:
    """The GET names the account plainly and changes nothing (no cookie, the link not used
    up); the page's button posts back with this origin and opens the session."""
    add_member(ctx)
    with live_site(ctx) as site, httpx.Client(base_url=site.base_url) as http:
        path = sign_in_link(site, "ana")
        shown = http.get(path)
        assert shown.status_code == 200
        assert "set-cookie" not in shown.headers
        assert "Continue as Ana Lima" in shown.text
        assert "ana@members.example" in shown.text
        assert f'<form method="post" action="{path}">' in shown.text
        # Its button must send a real Origin (with no referrer, browsers send `null`).
        assert shown.headers["referrer-policy"] == "same-origin"
        assert shown.headers["cache-control"] == "no-store"
        assert _used_links(ctx) == 0
        assert http.get("/member/").status_code == 401
        # Shown again, still nothing used: only the POST uses the link up.
        assert http.get(path).status_code == 200
        done = http.post(path, headers={"Origin": site.base_url, **SAME_ORIGIN})
        assert done.status_code == 303
        assert done.headers["location"] == "/member/"
        assert _used_links(ctx) == 1
        assert "Ana Lima" in http.get("/member/").text


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "none"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    ],
)
def test_another_sites_sign_in_link_cannot_replace_the_session(
    ctx: Context, headers: dict[str, str]
) -> None:
    """Login CSRF: another site sends Ana's browser to Bruno's own link. The page it lands on
    says which account the link is for and that Ana is signed in now; the sign-in posted
    from elsewhere is refused, the link stays unused and Ana stays herself."""
    add_member(ctx)
    _add_bruno(ctx)
    with signed_in(ctx) as ana:
        path = sign_in_link(ana.site, "bruno")
        before = ana.http.cookies[COOKIE]
        shown = ana.get(path, headers={"Sec-Fetch-Site": "cross-site"})
        assert shown.status_code == 200
        assert "Continue as Bruno Braz" in shown.text
        assert "signed in as Ana Lima now" in shown.text
        assert "set-cookie" not in shown.headers
        refused = ana.http.post(path, headers=headers)
        assert refused.status_code == 403
        assert "Nothing was changed" in refused.text
        assert "set-cookie" not in refused.headers
        assert ana.http.cookies[COOKIE] == before
        assert "Ana Lima" in ana.get("/member/").text
        assert _used_links(ctx) == 1  # Ana's own, Bruno's still unused
        # Pressed on the page itself, the button does switch accounts.
        switched = ana.http.post(path, headers={"Origin": ana.site.base_url, **SAME_ORIGIN})
        assert switched.status_code == 303
        assert "Bruno Braz" in ana.get("/member/").text


def test_a_sign_in_posted_by_a_script_without_browser_headers_passes(ctx: Context) -> None:
    """No Origin and no Sec-Fetch-Site: no browser steered by another site sends that."""
    add_member(ctx)
    with live_site(ctx) as site, httpx.Client(base_url=site.base_url) as http:
        assert http.post(sign_in_link(site, "ana")).status_code == 303
        assert http.get("/member/").status_code == 200


def test_a_bad_sign_in_link_leaves_the_session_alone(ctx: Context) -> None:
    """Logout CSRF: another site sends the browser to a bad, used or garbled link, or
    posts a member form the browser sends without its cookie; the session goes on."""
    add_member(ctx)
    with signed_in(ctx) as ana:
        used = sign_in_link(ana.site, "ana")
        with httpx.Client(base_url=ana.site.base_url) as other_device:
            assert follow_sign_in_link(other_device, used).status_code == 303
        cross = {"Sec-Fetch-Site": "cross-site"}
        answers = [
            ana.get("/member/sign-in/garbage", headers=cross),
            ana.get(used, headers=cross),
            ana.http.post("/member/sign-in/garbage", headers=SAME_ORIGIN),
            ana.http.post(used, headers=SAME_ORIGIN),
        ]
        for answer in answers:
            assert answer.status_code == 401
            assert "set-cookie" not in answer.headers
        assert ana.get("/member/").status_code == 200
        # A cross-site POST to a member form arrives without the SameSite=Lax cookie: it is
        # refused, and must not delete the cookie it never saw.
        with httpx.Client(base_url=ana.site.base_url) as elsewhere:
            answer = elsewhere.post("/member/sign-out", headers=cross)
            assert answer.status_code == 401
            assert "set-cookie" not in answer.headers
            # A cookie that did come, and is no good, is still dropped.
            stale = elsewhere.post(
                "/member/sign-out", headers={"Cookie": f"{COOKIE}=forged"}, data={"csrf": "x"}
            )
        assert stale.status_code == 401
        assert COOKIE + '=""' in stale.headers["set-cookie"]
        assert ana.get("/member/").status_code == 200


def test_the_sign_in_question_speaks_the_accounts_language(ctx: Context) -> None:
    """Every page after signing in is in the member's language; the question before it
    too, whatever the browser prefers."""
    add_member(ctx, locale="fr")
    with live_site(ctx) as site, httpx.Client(base_url=site.base_url) as http:
        shown = http.get(sign_in_link(site, "ana"), headers={"Accept-Language": "en-US"})
    assert shown.status_code == 200
    assert '<html lang="fr">' in shown.text
    assert "Continuer en tant qu'Ana Lima" in shown.text
