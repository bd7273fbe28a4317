"""Every state-changing POST of the member pages and the admin pages, over real HTTP on
SQLite and PostgreSQL, without a CSRF token, with another session's token, and with a
forged one: refused with 403, and the database (every table's row count and the ledger's
head) is the same afterwards. The same request with the session's own token goes through,
so the refusals are the token's doing.

The list of routes is read from the app: a new POST route without a row here fails the
test. Origin and Sec-Fetch-Site checks, and a tampered or re-keyed admin cookie, are proved
in test_member_pages_session and test_admin_pages.
"""

from __future__ import annotations

from typing import Any

import httpx
from member_pages_support import member_session
from security_support import World, admin_session, make_world, served, snapshot

from courtois.services.context import Context
from courtois.web.app import create_app

VCARD = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Zed\r\nEMAIL:zed@example.org\r\nEND:VCARD\r\n"


def _member_posts(world: World) -> dict[str, tuple[str, dict[str, Any]]]:
    """Route path -> (concrete URL, form fields that would change something)."""
    invitation, consent = world.invitations["ana"][0], world.consents["ana"]
    first = str(world.contacts["ana"][0])
    return {
        "/member/invitations/{invitation_id}/withdraw": (
            f"/member/invitations/{invitation}/withdraw",
            {},
        ),
        "/member/consents/{consent_id}/revoke": (f"/member/consents/{consent}/revoke", {}),
        "/member/stop": ("/member/stop", {}),
        "/member/contacts/delete": ("/member/contacts/delete", {"confirm": "yes"}),
        "/member/contacts": ("/member/contacts", {"shown": first, "chosen": first}),
        "/member/import/paste": ("/member/import/paste", {"addresses": "zed@example.org"}),
        "/member/import/file": ("/member/import/file", {}),
        "/member/invite/preview": ("/member/invite/preview", {"note": "hi"}),
        "/member/invite/send": (
            "/member/invite/send",
            {"consent": "yes", "key": "k" * 24, "choice": "x", "preview_hash": "x"},
        ),
        "/member/sign-out": ("/member/sign-out", {}),
    }


SIGN_IN_POST = "/member/sign-in/{token}"

ADMIN_POSTS = {
    "/admin/sign-in": {"key": "admin-key-0123456789abcdef"},
    "/admin/sign-out": {},
    "/admin/lookup": {"address": "a1@example.com"},
    "/admin/unknown": {"one": "sent:00000000-0000-0000-0000-000000000000"},
}


def _posts_of(ctx: Context, prefix: str) -> set[str]:
    """Every POST route of the app under `prefix` (routers included in routers too)."""
    found = set()
    routes = list(create_app(ctx).routes)
    while routes:
        route = routes.pop()
        included = getattr(route, "original_router", None)
        if included is not None:
            routes.extend(included.routes)
            continue
        path, methods = getattr(route, "path", ""), getattr(route, "methods", None) or ()
        if path.startswith(prefix) and "POST" in methods:
            found.add(path)
    return found


def _send(http: httpx.Client, url: str, fields: dict[str, Any]) -> httpx.Response:
    """Post the form as its page does: the import form as multipart with a file."""
    if url == "/member/import/file":
        return http.post(url, data=fields, files={"file": ("book.vcf", VCARD, "text/vcard")})
    return http.post(url, data=fields)


def test_member_page_posts_need_this_sessions_token(ctx: Context) -> None:
    world = make_world(ctx)
    posts = _member_posts(world)
    # Signing in has no session yet, hence no token to carry: its POST is held to this
    # origin instead (test_member_pages_session proves every refusal).
    expected = {*posts, SIGN_IN_POST}
    assert _posts_of(ctx, "/member") == expected, "a member POST route without a row here"
    with (
        served(ctx) as site,
        member_session(site.live, "ana") as ana,
        member_session(site.live, "bruno") as bruno,
    ):
        own, theirs = ana.csrf(), bruno.csrf()
        forged = "0" * len(own)
        before = snapshot(ctx)
        for route, (url, fields) in posts.items():
            for label, token in (("none", None), ("other", theirs), ("forged", forged)):
                sent = fields if token is None else {**fields, "csrf": token}
                answer = _send(ana.http, url, sent)
                assert answer.status_code == 403, (route, label, answer.status_code)
                assert "Nothing was changed" in answer.text, (route, label)
                assert snapshot(ctx) == before, (route, label)
        assert ana.get("/member/").status_code == 200  # sign-out was refused too
        # The session's own token goes through: each of these changes something.
        unchanged = []
        for route in (
            "/member/contacts",
            "/member/import/paste",
            "/member/import/file",
            "/member/invitations/{invitation_id}/withdraw",
            "/member/consents/{consent_id}/revoke",
            "/member/contacts/delete",
        ):
            url, fields = posts[route]
            done = _send(ana.http, url, {**fields, "csrf": own})
            assert done.status_code in (200, 303), (route, done.status_code)
            after = snapshot(ctx)
            if after == before:
                unchanged.append(route)
            before = after
        assert unchanged == []
        assert _send(ana.http, "/member/sign-out", {"csrf": own}).status_code == 200


def test_admin_page_posts_need_this_sessions_token(ctx: Context) -> None:
    make_world(ctx)
    assert _posts_of(ctx, "/admin") == set(ADMIN_POSTS), "an admin POST route without a row"
    with served(ctx) as site, admin_session(site) as (admin, own), admin_session(site) as other:
        theirs = other[1]
        before = snapshot(ctx)
        for url, fields in ADMIN_POSTS.items():
            for label, token in (("none", None), ("other", theirs), ("forged", "0" * 64)):
                sent = fields if token is None else {**fields, "csrf": token}
                answer = admin.post(url, data=sent)
                assert answer.status_code == 403, (url, label, answer.status_code)
                assert snapshot(ctx) == before, (url, label)
        assert admin.get("/admin").status_code == 200  # still signed in: sign-out refused
        # The sign-in form refuses a token with no session behind it.
        with site.client() as stranger:
            answer = stranger.post(
                "/admin/sign-in", data={**ADMIN_POSTS["/admin/sign-in"], "csrf": own}
            )
            assert answer.status_code == 403
            assert stranger.get("/admin").status_code == 303
        # The session's own token goes through.
        looked = admin.post("/admin/lookup", data={"csrf": own, "address": "a1@example.com"})
        assert looked.status_code == 200
        out = admin.post("/admin/sign-out", data={"csrf": own})
        assert out.status_code == 303
        assert admin.get("/admin").status_code == 303
