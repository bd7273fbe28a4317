"""Token forgery, replay and scope confusion over real HTTP, on SQLite and PostgreSQL:
truncated tokens, a member's sign-in token on the recipient pages and the recipient
tokens as sign-in links, session cookies moved between the member and admin pages, one
member's session reaching for another's rows, a sign-in link used again once expired, and
recipient choices replayed. Each refusal changes nothing (every table's row count, the
ledger's head and the states changed in place are the same afterwards).

Proved elsewhere, not repeated here:
- forged (another key), tampered (payload, timestamp, signature), expired, other-scope
  (unsubscribe on /why and /join and every other pair), unknown-invitation and non-token
  links on /u, /why and /join all get one byte-identical 404, GET and POST, and change
  nothing: test_pages_tokens.test_every_bad_token_gets_the_same_plain_404;
- a tampered, other-scope (why), expired or unknown-member sign-in link gets one plain 401:
  test_member_pages_session.test_every_bad_link_gets_the_same_plain_page; a forged or stale
  session cookie: test_pages_need_a_valid_session;
- the one-click unsubscribe replayed answers the same 200 and adds no ledger entry:
  test_pages_unsubscribe.test_one_click_post_as_a_mailbox_provider_sends_it_stops_everything;
- another member's invitation and consent through the dashboard's forms:
  test_member_pages_dashboard.test_another_members_invitation_and_consent_are_out_of_reach.

The host API has one bearer key, the platform's, which speaks for all its members: there is
no per-member API scope to confuse (test_api_auth proves every /v1 route wants the key).
"""

from __future__ import annotations

import json
import time

import httpx
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from live_app import sqlite_only
from member_pages_support import follow_sign_in_link, member_session
from pages_site import invite_and_deliver
from security_support import make_world, served, snapshot
from support import add_members

from courtois.services.context import Context
from courtois.tokens import MEMBER_LINK_MAX_AGE_SECONDS, Scope, make_sign_in_token, make_token
from courtois.web.pages import admin_session as admin_cookie
from courtois.web.pages import member_session as member_cookie

BO = "bo@example.com"
RECIPIENT_PATHS = {Scope.UNSUBSCRIBE: "/u/", Scope.WHY: "/why/", Scope.JOIN: "/join/"}


def _stamped(secret: bytes, scope: Scope, value: str, at: int) -> str:
    """A token as `make_token` makes one, signed at the instant `at`."""

    class Then(TimestampSigner):
        def get_timestamp(self) -> int:
            return at

    return URLSafeTimedSerializer(secret, salt=f"courtois.{scope.value}", signer=Then).dumps(value)


def test_truncated_and_cross_scope_tokens_open_nothing(ctx: Context) -> None:
    add_members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])
    (invitation_id,) = mail.ids
    secret = ctx.settings.secret
    good = {
        Scope.UNSUBSCRIBE: mail.tokens.unsubscribe,
        Scope.WHY: mail.tokens.why,
        Scope.JOIN: mail.tokens.join[0],
    }
    member_token = make_sign_in_token(secret, "ana")
    # A member token naming the invitation id, as if the scopes shared a salt.
    member_for_invitation = make_token(secret, Scope.MEMBER, invitation_id)
    with served(ctx) as site, site.client() as outsider:
        before = snapshot(site.ctx)
        reference = outsider.get("/u/x")
        assert reference.status_code == 404
        recipient_tries = []
        for scope, path in RECIPIENT_PATHS.items():
            token = good[scope]
            recipient_tries += [
                path + token[:-1],
                path + token[: len(token) // 2],
                path + token.rsplit(".", 1)[0],  # the signature cut off
                path + token.split(".", 1)[0],  # the payload alone
                path + member_token,
                path + member_for_invitation,
            ]
        for path in recipient_tries:
            answers = [outsider.get(path)]
            if not path.startswith("/join/"):
                answers.append(outsider.post(path, data={"List-Unsubscribe": "One-Click"}))
            for answer in answers:
                assert answer.status_code == 404, path
                assert answer.content == reference.content, path
        # Recipient tokens, and truncated or re-keyed member tokens, are no sign-in link.
        sign_in_tries = [
            *good.values(),
            make_token(secret, Scope.UNSUBSCRIBE, "ana"),
            make_token(secret, Scope.WHY, "ana"),
            make_token(secret, Scope.JOIN, "ana"),
            make_sign_in_token(b"another-secret-0123456789", "ana"),
            make_token(secret, Scope.MEMBER, "ana"),  # a member, but no link id
            member_token[:-1],
            member_token.rsplit(".", 1)[0],
        ]
        refused = [outsider.get(f"/member/sign-in/{token}") for token in sign_in_tries]
        refused += [outsider.post(f"/member/sign-in/{token}") for token in sign_in_tries]
        assert {answer.status_code for answer in refused} == {401}
        assert len({answer.content for answer in refused}) == 1
        assert not outsider.cookies  # no session was opened
        assert snapshot(site.ctx) == before
        # The untouched tokens work, so the refusals were the tampering's doing.
        assert outsider.get(f"/why/{good[Scope.WHY]}").status_code == 200
        assert follow_sign_in_link(outsider, f"/member/sign-in/{member_token}").status_code == 303


def test_session_cookies_do_not_cross_between_pages_or_members(ctx: Context) -> None:
    world = make_world(ctx)
    with (
        served(ctx) as site,
        member_session(site.live, "ana") as ana,
        member_session(site.live, "bruno") as bruno,
    ):
        before = snapshot(site.ctx)
        member_value = ana.http.cookies[member_cookie.COOKIE]
        settings = site.ctx.settings
        admin_like = URLSafeTimedSerializer(settings.secret, salt=member_cookie.SALT).dumps(
            {"id": "x" * 32, "in": True, "key": "x"}
        )
        with site.client() as stranger:
            # A member's cookie under the admin cookie's name, and an admin-shaped value
            # signed for the member pages: neither opens the other's pages.
            stranger.cookies.set(admin_cookie.COOKIE, member_value, path="/admin")
            assert stranger.get("/admin").status_code == 303
            stranger.cookies.clear()
            stranger.cookies.set(member_cookie.COOKIE, admin_like, path="/member")
            assert stranger.get("/member/").status_code == 401
            # A recipient token as a session cookie.
            stranger.cookies.clear()
            stranger.cookies.set(
                member_cookie.COOKIE, make_token(settings.secret, Scope.MEMBER, "ana")
            )
            assert stranger.get("/member/").status_code == 401
        # Ana's session, Bruno's rows: his contacts in her forms, his data nowhere in hers.
        token = ana.csrf()
        theirs = [str(i) for i in world.contacts["bruno"]]
        chose = ana.post("/member/contacts", {"shown": theirs, "chosen": theirs}, token=token)
        assert chose.status_code == 303
        exported = json.loads(ana.get("/member/export.json").text)
        assert "bruno" not in json.dumps(exported).lower()
        assert "friend-" not in json.dumps(exported)  # Bruno's contacts
        for invitation in world.invitations["bruno"]:
            assert invitation not in json.dumps(exported)
        # Bruno's own session still sees his contacts untouched.
        assert "friend-0@example.net" in bruno.get("/member/contacts").text
        assert snapshot(site.ctx) == before


@sqlite_only
def test_a_sign_in_link_used_again_after_its_expiry_is_refused(ctx: Context) -> None:
    """The same link, valid for its first use, refused once its 15 minutes are past (the
    token's age is checked against the wall clock: the link is made one second short of
    its expiry, then used again two seconds later)."""
    add_members(ctx)
    secret = ctx.settings.secret
    made_at = int(time.time()) - MEMBER_LINK_MAX_AGE_SECONDS + 1
    link = _stamped(secret, Scope.MEMBER, "ana " + "L" * 24, made_at)
    with served(ctx) as site:
        with site.client() as first:
            assert follow_sign_in_link(first, f"/member/sign-in/{link}").status_code == 303
        before = snapshot(site.ctx)  # its use is recorded: a link opens one session
        time.sleep(2.2)
        with site.client() as again:
            answer = follow_sign_in_link(again, f"/member/sign-in/{link}")
            assert answer.status_code == 401
            assert "courtois_member" not in again.cookies
            assert again.get("/member/").status_code == 401
        assert snapshot(site.ctx) == before


def test_recipient_choices_replayed_change_nothing_more(ctx: Context) -> None:
    """Every /why choice posted again and again, then the one-click unsubscribe after it:
    the same answer, no second ledger entry, nothing else changed."""
    add_members(ctx)
    actions = ("forget", "stop-everyone", "decline")
    mails = invite_and_deliver(ctx, "ana", [f"{a}@example.org" for a in actions])
    assert len(mails) == len(actions)
    with served(ctx) as site, httpx.Client(base_url=site.base_url) as recipient:
        for action, mail in zip(actions, mails, strict=True):
            first = recipient.post(f"/why/{mail.tokens.why}", data={"action": action})
            assert first.status_code == 200, first.text
            after_first = snapshot(site.ctx)
            for _ in range(3):
                again = recipient.post(f"/why/{mail.tokens.why}", data={"action": action})
                assert (again.status_code, again.content) == (first.status_code, first.content)
                assert snapshot(site.ctx) == after_first, action
            one_click = recipient.post(
                f"/u/{mail.tokens.unsubscribe}", data={"List-Unsubscribe": "One-Click"}
            )
            assert one_click.status_code == 200
            if action != "decline":  # everything was stopped already: nothing to record
                assert snapshot(site.ctx) == after_first, action
